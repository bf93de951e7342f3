"""ResponseKD: hand-derived BCE / binary-KL values, their gradients, the teacher gets no gradient."""

from __future__ import annotations

import math

import pytest
import torch

from aclnet_kd.losses.response import ResponseKD, binary_kl_with_logits

LN3 = math.log(3.0)
R = math.sqrt(3.0) / (1.0 + math.sqrt(3.0))  # sigmoid(ln(3) / 2) = sqrt(3) / (1 + sqrt(3))


def two_sides(requires_grad: bool = False) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Side 1: two pixels, z_S = [0, ln 3], z_T = [ln 3, 0] (sigmoids 1/2, 3/4 and 3/4, 1/2).
    Side 2: z_S = z_T = 0 on two pixels (p = q = 1/2)."""
    student = [torch.tensor([[[[0.0, LN3]]]]), torch.zeros(1, 1, 1, 2)]
    teacher = [torch.tensor([[[[LN3, 0.0]]]]), torch.zeros(1, 1, 1, 2)]
    for t in student + teacher:
        t.requires_grad_(requires_grad)
    return student, teacher


# BCE(p, q) = -q ln p - (1 - q) ln(1 - p), averaged over the N = 2 pixels of a side, summed over sides:
#   side 1, pixel 1: p = 1/2, q = 3/4 -> ln 2                         = 0.6931471805599453
#   side 1, pixel 2: p = 3/4, q = 1/2 -> (ln(4/3) + ln 4) / 2 = ln(16/3) / 2 = 0.8369882167858358
#   side 2: p = q = 1/2 -> ln 2 per pixel
#   total = (ln 2 + ln(16/3) / 2) / 2 + ln 2 = 1.4582148792328359
BCE_GOLDEN = 1.4582148792328359
# KL at T = 1 is BCE - H(q): side 1: (ln 2 - H(3/4) + ln(16/3)/2 - ln 2) / 2, side 2: 0, with
#   H(3/4) = -(3/4) ln(3/4) - (1/4) ln(1/4) = 0.5623351446188083  -> total 0.13732653608351375
KL_T1_GOLDEN = 0.13732653608351375
# KL at T = 2: sigmoids of the halved logits are 1/2 and R = sqrt(3)/(1+sqrt(3)).
#   pixel 1: KL(R || 1/2) = ln 2 - H(R)                                 = 0.03634078287047357
#   pixel 2: KL(1/2 || R) = -ln 2 - ln(3)/4 + ln(1 + sqrt(3))           = 0.037252286015408226
#   total = T^2 * mean = 4 * (0.03634078287047357 + 0.037252286015408226) / 2 = 0.1471861377717636
KL_T2_GOLDEN = 0.1471861377717636


def test_bce_hand_derived():
    student, teacher = two_sides()
    assert ResponseKD()(student, teacher).item() == pytest.approx(BCE_GOLDEN, rel=1e-5)


@pytest.mark.parametrize(("temperature", "golden"), [(1.0, KL_T1_GOLDEN), (2.0, KL_T2_GOLDEN)])
def test_kl_hand_derived(temperature, golden):
    student, teacher = two_sides()
    assert ResponseKD("kl", temperature)(student, teacher).item() == pytest.approx(golden, rel=1e-5)


def test_closed_forms_of_the_comments():
    # the literals above, re-derived from their closed forms in float64
    h = lambda q: -q * math.log(q) - (1 - q) * math.log(1 - q)  # noqa: E731
    assert BCE_GOLDEN == pytest.approx((math.log(2) + math.log(16 / 3) / 2) / 2 + math.log(2), rel=1e-12)
    assert KL_T1_GOLDEN == pytest.approx((math.log(2) - h(0.75) + math.log(16 / 3) / 2 - math.log(2)) / 2,
                                         rel=1e-12)
    kl2 = (math.log(2) - h(R)) + (-math.log(2) - LN3 / 4 + math.log(1 + math.sqrt(3)))
    assert KL_T2_GOLDEN == pytest.approx(4 * kl2 / 2, rel=1e-12)


def test_gradients_hand_derived_and_teacher_gets_none():
    # d BCE / d z_S = (p - q) / N:  side 1: [(1/2 - 3/4) / 2, (3/4 - 1/2) / 2] = [-1/8, 1/8]; side 2: 0.
    student, teacher = two_sides(requires_grad=True)
    ResponseKD()(student, teacher).backward()
    assert student[0].grad.flatten().tolist() == pytest.approx([-0.125, 0.125], rel=1e-5)
    assert student[1].grad.abs().max().item() == 0.0
    assert all(t.grad is None for t in teacher)
    # d (T^2 KL_T) / d z_S = T (sigmoid(z_S/T) - sigmoid(z_T/T)) / N = [0.5 - R, R - 0.5] at T = 2
    student, teacher = two_sides(requires_grad=True)
    ResponseKD("kl", 2.0)(student, teacher).backward()
    assert student[0].grad.flatten().tolist() == pytest.approx([0.5 - R, R - 0.5], rel=1e-5)
    assert all(t.grad is None for t in teacher)


def test_kl_t1_equals_bce_minus_teacher_entropy_on_random_maps():
    torch.manual_seed(0)
    zs, zt = torch.randn(2, 1, 5, 6, dtype=torch.float64) * 3, torch.randn(2, 1, 5, 6, dtype=torch.float64) * 3
    q = zt.sigmoid()
    entropy = -(q * q.log() + (1 - q) * (1 - q).log()).mean()
    bce, kl = ResponseKD()([zs], [zt]), ResponseKD("kl")([zs], [zt])
    assert kl.item() == pytest.approx(bce.item() - entropy.item(), rel=1e-10)
    assert kl.item() > 0


def test_saturated_logits_stay_finite_and_zero_when_equal():
    z = torch.tensor([[[[-200.0, 200.0]]]])
    assert binary_kl_with_logits(z, z).abs().max().item() == 0.0
    assert torch.isfinite(ResponseKD("kl", 4.0)([z], [-z])).item()


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        ResponseKD("mse")
    with pytest.raises(ValueError, match="temperature"):
        ResponseKD("kl", 0.0)
    with pytest.raises(ValueError, match="mode='kl'"):
        ResponseKD("bce", 2.0)
    with pytest.raises(ValueError, match="level 0"):
        ResponseKD()([torch.zeros(1, 1, 2, 2)], [torch.zeros(1, 1, 4, 4)])
    with pytest.raises(ValueError, match="as many"):
        ResponseKD()([torch.zeros(1, 1, 2, 2)], [])
