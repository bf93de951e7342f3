"""AttentionTransfer: hand-derived maps and loss with beta = 1000, gradients, resizing, the bound."""

from __future__ import annotations

import math

import pytest
import torch

from aclnet_kd.losses.at import AT_BETA, AttentionTransfer


def hand_levels(requires_grad: bool = False) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Level 1 (1, 3, 2, 2): student energy at one position, teacher uniform.
    Level 2 (1, 1, 2, 2): student uniform (all 1), teacher F = [sqrt 3, 2, 0, 0]."""
    peaked = torch.zeros(1, 3, 2, 2)
    peaked[0, :, 0, 0] = 2.0
    student = [peaked, torch.ones(1, 1, 2, 2)]
    teacher = [torch.ones(1, 3, 2, 2), torch.tensor([math.sqrt(3.0), 2.0, 0.0, 0.0]).view(1, 1, 2, 2)]
    for t in student + teacher:
        t.requires_grad_(requires_grad)
    return student, teacher


# Q(F) = v / ||v||, v = mean_c F_c^2 over the 4 positions (row-major):
#   level 1: Q_S = [1, 0, 0, 0] (one-hot), Q_T = [1/2] * 4 -> (Q_S - Q_T)^2 = [1/4, 1/4, 1/4, 1/4], mean 1/4
#   level 2: Q_S = [1/2] * 4, v_T = [3, 4, 0, 0] -> Q_T = [3/5, 4/5, 0, 0]
#            -> differences [-0.1, -0.3, 0.5, 0.5], squares [0.01, 0.09, 0.25, 0.25], mean 0.15
# L = beta * (0.25 + 0.15) = 1000 * 0.4 = 400
AT_GOLDEN = 400.0


def test_at_hand_derived_with_beta_1000():
    assert AT_BETA == 1000.0
    student, teacher = hand_levels()
    assert AttentionTransfer()(student, teacher).item() == pytest.approx(AT_GOLDEN, rel=1e-5)
    assert AttentionTransfer(beta=1.0)(student, teacher).item() == pytest.approx(0.4, rel=1e-5)


def test_student_gradient_hand_derived_teacher_gets_none():
    # Level 2, student F = 1 everywhere on one channel: v = F^2, Q = v / ||v||, ||v|| = 2.
    # dL/dQ_j = beta * 2 (Q_S - Q_T)_j / 4;  dQ_j/dv_k = (delta_jk - Q_j Q_k) / ||v||;  dv_k/dF_k = 2 F_k = 2.
    # With g = dL/dQ = 500 * [-0.1, -0.3, 0.5, 0.5] and Q = [1/2] * 4: g.Q = 500 * 0.3 = 150,
    #   dL/dF_k = 2 * (g_k - Q_k * (g.Q)) / 2 = g_k - 75 = [-125, -225, 175, 175].
    student, teacher = hand_levels(requires_grad=True)
    AttentionTransfer()(student, teacher).backward()
    assert student[1].grad.flatten().tolist() == pytest.approx([-125.0, -225.0, 175.0, 175.0], rel=1e-5)
    assert all(t.grad is None for t in teacher)


def test_each_level_is_at_most_beta_times_two_over_hw():
    # Non-negative unit vectors are at most sqrt(2) apart: disjoint supports reach the bound.
    s, t = torch.zeros(2, 4, 4, 4), torch.zeros(2, 4, 4, 4)
    s[:, :, 0, 0], t[:, :, 3, 3] = 1.0, 1.0
    assert AttentionTransfer()([s], [t]).item() == pytest.approx(AT_BETA * 2 / 16, rel=1e-6)
    torch.manual_seed(0)
    x, y = torch.randn(3, 8, 4, 4), torch.randn(3, 8, 4, 4)
    assert 0 < AttentionTransfer()([x], [y]).item() <= AT_BETA * 2 / 16


def test_student_feature_is_resized_to_the_teacher():
    # a constant 1x1 student map resized to 2x2 is uniform: level 1 of the hand case with a uniform student
    # against Q_T = [3/5, 4/5, 0, 0] -> 1000 * 0.15
    _, teacher = hand_levels()
    got = AttentionTransfer()([torch.full((1, 1, 1, 1), 5.0)], [teacher[1]])
    assert got.item() == pytest.approx(150.0, rel=1e-5)


def test_scale_invariant_per_sample_and_zero_features_finite():
    torch.manual_seed(1)
    x = torch.randn(2, 5, 3, 3)
    assert AttentionTransfer()([x], [x * torch.tensor([3.0, 0.1]).view(2, 1, 1, 1)]).item() == pytest.approx(
        0.0, abs=1e-6)
    z = torch.zeros(2, 5, 3, 3, requires_grad=True)
    loss = AttentionTransfer()([z], [x])
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()


def test_bad_inputs():
    with pytest.raises(ValueError, match="beta"):
        AttentionTransfer(beta=-1.0)
    with pytest.raises(ValueError, match="as many"):
        AttentionTransfer()([torch.zeros(1, 1, 2, 2)], [])
    with pytest.raises(ValueError, match="batch sizes"):
        AttentionTransfer()([torch.zeros(1, 1, 2, 2)], [torch.zeros(2, 1, 2, 2)])
