"""CWD: hand-derived values and gradients, zero at student == teacher, a float64 re-derivation, saturated maps,
options (gradcheck, zero features and bf16: test_contract.py)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from aclnet_kd.losses.cwd import CWD_INPUTS, ChannelWiseDistillation


def hand_level(tau: float, requires_grad: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, 2, 1, 2): channel 0 teacher [0, tau ln 3], student [0, 0]; channel 1 both [1, 2]."""
    teacher = torch.tensor([[[[0.0, tau * math.log(3.0)]], [[1.0, 2.0]]]])
    student = torch.tensor([[[[0.0, 0.0]], [[1.0, 2.0]]]], requires_grad=requires_grad)
    return student, teacher


# Channel 0: phi(T/tau) = softmax([0, ln 3]) = [1/4, 3/4], phi(S/tau) = [1/2, 1/2]
#   KL = 1/4 ln((1/4)/(1/2)) + 3/4 ln((3/4)/(1/2)) = -1/4 ln 2 + 3/4 (ln 3 - ln 2) = 3/4 ln 3 - ln 2.
# Channel 1: equal maps, KL = 0.  L = tau^2 * (KL_0 + KL_1) / (B C) = tau^2 (3/4 ln 3 - ln 2) / 2.
KL0 = 0.75 * math.log(3.0) - math.log(2.0)  # 0.130812035...


@pytest.mark.parametrize("tau", [1.0, 2.0])
def test_hand_derived_value(tau):
    student, teacher = hand_level(tau)
    got = ChannelWiseDistillation(tau)([student], [teacher]).item()
    assert got == pytest.approx(tau ** 2 * KL0 / 2, rel=1e-6)
    assert KL0 / 2 == pytest.approx(0.0654060179706, rel=1e-10)
    # two levels are summed
    assert ChannelWiseDistillation(tau)([student, student], [teacher, teacher]).item() == pytest.approx(
        tau ** 2 * KL0, rel=1e-6)


def test_hand_derived_gradient_and_teacher_gets_none():
    # d/dS [tau^2 KL(p_T || softmax(S / tau))] = tau (softmax(S / tau) - p_T), divided by B*C = 2:
    # channel 0 at tau = 2: 2 * ([1/2, 1/2] - [1/4, 3/4]) / 2 = [1/4, -1/4]; channel 1: 0.
    student, teacher = hand_level(2.0, requires_grad=True)
    teacher.requires_grad_(True)
    ChannelWiseDistillation(2.0)([student], [teacher]).backward()
    assert student.grad.flatten().tolist() == pytest.approx([0.25, -0.25, 0.0, 0.0], abs=1e-7)
    assert teacher.grad is None


def test_zero_when_student_equals_teacher_and_per_channel_shift_invariant():
    torch.manual_seed(0)
    t = torch.randn(3, 5, 4, 4)
    assert ChannelWiseDistillation()([t.clone()], [t]).item() == pytest.approx(0.0, abs=1e-6)
    shift = torch.randn(3, 5, 1, 1)  # a softmax does not see a constant per (sample, channel)
    assert ChannelWiseDistillation(4.0)([t + shift], [t]).item() == pytest.approx(0.0, abs=1e-6)
    assert ChannelWiseDistillation()([torch.randn(3, 5, 4, 4)], [t]).item() > 0


def reference_cwd(student: list[np.ndarray], teacher: list[np.ndarray], tau: float) -> float:
    """The published formula written out: per level, sample and channel, the spatial softmaxes and their KL;
    tau^2 times the mean over samples and channels; summed over the levels."""
    total = 0.0
    for s, t in zip(student, teacher):
        b, c = t.shape[:2]
        level = 0.0
        for i in range(b):
            for j in range(c):
                et, es = np.exp(t[i, j].ravel() / tau), np.exp(s[i, j].ravel() / tau)
                pt, ps = et / et.sum(), es / es.sum()
                level += float(np.sum(pt * np.log(pt / ps)))
        total += tau ** 2 * level / (b * c)
    return total


@pytest.mark.parametrize("tau", [1.0, 4.0])
def test_float64_cross_check_against_a_direct_rederivation(tau):
    rng = np.random.default_rng(3)
    shapes = [(2, 4, 8, 8), (2, 8, 4, 4), (2, 16, 2, 2)]
    s = [rng.normal(size=sh) for sh in shapes]
    t = [rng.normal(scale=2.0, size=sh) for sh in shapes]
    got = ChannelWiseDistillation(tau)([torch.from_numpy(a) for a in s], [torch.from_numpy(a) for a in t])
    assert got.dtype == torch.float64
    assert got.item() == pytest.approx(reference_cwd(s, t, tau), rel=1e-12)


def test_saturated_maps_finite():
    """(Gradients, zero features and bf16: the contract every registered term keeps, test_contract.py.)"""
    big = torch.zeros(1, 2, 2, 2, requires_grad=True)
    loss = ChannelWiseDistillation()([big * 1.0 + 1e4 * torch.eye(2).view(1, 1, 2, 2)], [-1e4 * torch.ones(1, 2, 2, 2)])
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(big.grad).all()


def test_resizes_the_student_and_refuses_bad_arguments():
    # a 1x1 student resized to 1x2 is constant: the hand case's channel 0 at tau = 1 alone (B*C = 1)
    _, teacher = hand_level(1.0)
    got = ChannelWiseDistillation()([torch.zeros(1, 1, 1, 1)], [teacher[:, :1]]).item()
    assert got == pytest.approx(KL0, rel=1e-6)
    with pytest.raises(ValueError, match="tau"):
        ChannelWiseDistillation(0.0)
    with pytest.raises(ValueError, match="on must be"):
        ChannelWiseDistillation(on="stage_feats")
    with pytest.raises(ValueError, match="channels"):
        ChannelWiseDistillation()([torch.zeros(1, 2, 2, 2)], [torch.zeros(1, 3, 2, 2)])


@pytest.mark.parametrize("on", CWD_INPUTS)
def test_registered_term_reads_the_chosen_output(on):
    from aclnet_kd.losses import DistillationLoss

    torch.manual_seed(4)
    channels = (4, 6, 8, 10)

    def out():
        feats = [torch.randn(2, c, 16 // 2 ** i, 16 // 2 ** i) for i, c in enumerate(channels)]
        return SimpleNamespace(side_logits=[torch.randn(2, 1, 16, 16) for _ in channels], stage_feats=feats,
                               decoder_feats=[f * 2 for f in feats])

    loss = DistillationLoss({"cwd": 2.0}, channels=channels, options={"cwd_tau": 4.0, "cwd_on": on})
    s, t = out(), out()
    expected = 2.0 * ChannelWiseDistillation(4.0)(getattr(s, on), getattr(t, on))
    assert loss(s, t)["cwd"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert loss.trainable_parameters(True) == []  # no parameters of its own


def test_schema_enum_is_the_modules():
    import yaml

    from aclnet_kd.config import SCHEMA

    options = yaml.safe_load(SCHEMA.read_text())["properties"]["kd"]["properties"]["options"]["properties"]
    assert tuple(options["cwd_on"]["enum"]) == CWD_INPUTS
