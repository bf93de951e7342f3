"""FitNetHint: hand-derived hint loss and adapter gradients; the teacher gets no gradient."""

from __future__ import annotations

import pytest
import torch

from aclnet_kd.losses.fitnet import FitNetHint


def hand_module() -> FitNetHint:
    """Stage 1: 2 -> 1 channels, W = [1, -1], b = 0.5. Stage 2: 1 -> 2 channels, W = [2, 0]^T, b = [0, 1]."""
    module = FitNetHint(student_channels=(2, 1), teacher_channels=(1, 2))
    with torch.no_grad():
        module.adapters[0].weight.copy_(torch.tensor([1.0, -1.0]).view(1, 2, 1, 1))
        module.adapters[0].bias.copy_(torch.tensor([0.5]))
        module.adapters[1].weight.copy_(torch.tensor([2.0, 0.0]).view(2, 1, 1, 1))
        module.adapters[1].bias.copy_(torch.tensor([0.0, 1.0]))
    return module


def hand_features(requires_grad: bool = False) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    student = [torch.tensor([[[[1.0, 2.0]], [[3.0, 0.0]]]]),  # (1, 2, 1, 2): channel 0 = [1, 2], channel 1 = [3, 0]
               torch.tensor([[[[1.0]]]])]                      # (1, 1, 1, 1)
    teacher = [torch.tensor([[[[0.5, 0.5]]]]),                 # (1, 1, 1, 2)
               torch.tensor([[[[1.0]], [[1.0]]]])]             # (1, 2, 1, 1)
    for t in student + teacher:
        t.requires_grad_(requires_grad)
    return student, teacher


# Stage 1: r(S) = S_0 - S_1 + 0.5 = [1 - 3 + 0.5, 2 - 0 + 0.5] = [-1.5, 2.5]; minus T = [0.5, 0.5]
#          -> differences [-2, 2], MSE = (4 + 4) / 2 = 4.
# Stage 2: r(S) = [2 * 1 + 0, 0 * 1 + 1] = [2, 1]; minus T = [1, 1] -> differences [1, 0], MSE = 0.5.
# L = 4 + 0.5 = 4.5
FITNET_GOLDEN = 4.5
# Gradients of MSE = (1/N) sum d^2 with d = r(S) - T:  dL/dW_oc = (2/N) sum_px d_o S_c,  dL/db_o = (2/N) sum_px d_o
#   stage 1 (N = 2): dW = [(-2*1 + 2*2), (-2*3 + 2*0)] = [2, -6];  db = -2 + 2 = 0
#   stage 2 (N = 2): dW = [1*1, 0*1] = [1, 0];                     db = [1, 0]
#   student stage 1: dL/dS_c = (2/N) d W_c = [[-2, 2] * 1, [-2, 2] * -1] = [[-2, 2], [2, -2]]


def test_hint_loss_hand_derived():
    student, teacher = hand_features()
    assert hand_module()(student, teacher).item() == pytest.approx(FITNET_GOLDEN, rel=1e-5)


def test_adapter_and_student_gradients_hand_derived_teacher_gets_none():
    module = hand_module()
    student, teacher = hand_features(requires_grad=True)
    module(student, teacher).backward()
    a1, a2 = module.adapters
    assert a1.weight.grad.flatten().tolist() == pytest.approx([2.0, -6.0], rel=1e-5)
    assert a1.bias.grad.item() == pytest.approx(0.0, abs=1e-6)
    assert a2.weight.grad.flatten().tolist() == pytest.approx([1.0, 0.0], rel=1e-5, abs=1e-6)
    assert a2.bias.grad.tolist() == pytest.approx([1.0, 0.0], rel=1e-5, abs=1e-6)
    assert student[0].grad.flatten().tolist() == pytest.approx([-2.0, 2.0, 2.0, -2.0], rel=1e-5)
    assert all(t.grad is None for t in teacher)


def test_default_adapters_match_the_stage_channels():
    module = FitNetHint()
    assert [(a.in_channels, a.out_channels) for a in module.adapters] == [(64, 64), (128, 128), (256, 256),
                                                                          (512, 512)]
    # sum of C*C + C over C = 64, 128, 256, 512
    assert sum(p.numel() for p in module.parameters()) == 349_120
    feats = [torch.randn(2, c, 32 // 2 ** i, 32 // 2 ** i) for i, c in enumerate((64, 128, 256, 512))]
    loss = module(feats, [f + 1 for f in feats])
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


def test_student_map_is_resized_to_the_teacher():
    # 1x1 identity adapter (W = 1, b = 0): a constant 2x2 student map bilinearly resized to 4x4 stays constant
    module = FitNetHint(student_channels=(1,), teacher_channels=(1,))
    with torch.no_grad():
        module.adapters[0].weight.fill_(1.0)
        module.adapters[0].bias.zero_()
    loss = module([torch.full((1, 1, 2, 2), 3.0)], [torch.ones(1, 1, 4, 4)])
    assert loss.item() == pytest.approx(4.0, rel=1e-6)  # (3 - 1)^2


def test_bad_inputs():
    with pytest.raises(ValueError, match="pair up"):
        FitNetHint(student_channels=(1, 2), teacher_channels=(1,))
    module = FitNetHint(student_channels=(2,), teacher_channels=(3,))
    with pytest.raises(ValueError, match="stage 1: expected 2 student and 3 teacher"):
        module([torch.zeros(1, 2, 2, 2)], [torch.zeros(1, 2, 2, 2)])
    with pytest.raises(ValueError, match="needs 1"):
        module([], [])
