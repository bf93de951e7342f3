"""CLD: GRACE InfoNCE by hand, a numpy re-derivation of the release's formula, edges (gradcheck, zero features
and bf16: the contract every registered term keeps, test_contract.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from aclnet_kd.errors import AclnetError
from aclnet_kd.losses import CLD, grace_info_nce


def semi_loss_numpy(z1: np.ndarray, z2: np.ndarray, tau: float) -> np.ndarray:
    """The release's semi_loss, term by term: exp-sums, then subtract the self pair."""
    def normalise(z):
        return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)

    a, b = normalise(z1.astype(np.float64)), normalise(z2.astype(np.float64))
    refl, between = np.exp(a @ a.T / tau), np.exp(a @ b.T / tau)
    return -np.log(np.diag(between) / (refl.sum(1) + between.sum(1) - np.diag(refl)))


def cld_numpy(student: np.ndarray, teacher: np.ndarray, weight: np.ndarray, bias: float, tau: float) -> float:
    s_c, t_c = student.mean(axis=(2, 3)), teacher.mean(axis=(2, 3))
    s_hw = np.einsum("c,bchw->bhw", weight, student).reshape(len(student), -1) + bias
    t_hw = np.einsum("c,bchw->bhw", weight, teacher).reshape(len(teacher), -1) + bias
    per_sample = (semi_loss_numpy(s_c, t_c, tau) + semi_loss_numpy(t_c, s_c, tau)
                  + semi_loss_numpy(s_hw, t_hw, tau) + semi_loss_numpy(t_hw, s_hw, tau))
    return float(0.5 * per_sample.mean())


def test_info_nce_hand_computed():
    # two orthogonal unit rows, positives equal to anchors, tau = 0.5:
    # e(a_i, b_i) = e^2, every other pair e^0 = 1, so l_i = -log(e^2 / (1 + e^2 + 1)).
    # The result (0.24) is a difference of two float32 numbers near 2.2 (one ulp = 2.4e-7), and the
    # vectorised exp/log kernels differ by CPU: allow ~8 ulps of those operands, absolute (measured on an
    # AMD EPYC: 5.7e-7; a relative 1e-6 of 0.24 was only ~1 ulp of them).
    a = torch.eye(2)
    expected = math.log(math.exp(2) + 2) - 2
    assert grace_info_nce(a, a.clone(), tau=0.5).tolist() == pytest.approx([expected, expected], abs=2e-6)


@pytest.mark.parametrize("tau", [0.5, 0.1])
def test_cld_matches_numpy_rederivation(tau):
    torch.manual_seed(0)
    module = CLD(channels=6, tau=tau)
    student, teacher = torch.randn(4, 6, 3, 5), torch.randn(4, 6, 3, 5)
    got = module(student, teacher).item()
    conv = module.spatial_descriptor
    expected = cld_numpy(student.numpy(), teacher.numpy(), conv.weight.detach().numpy().reshape(6),
                         conv.bias.item(), tau)
    assert got == pytest.approx(expected, rel=1e-5)


def test_identical_views_score_lower_than_unrelated():
    torch.manual_seed(1)
    module = CLD(channels=8)
    x = torch.randn(4, 8, 4, 4)
    assert module(x, x.clone()) < module(x, torch.randn(4, 8, 4, 4))


def test_batch_of_one_is_a_clear_error():
    with pytest.raises(AclnetError, match="batch size >= 2"):
        CLD(channels=4)(torch.randn(1, 4, 2, 2), torch.randn(1, 4, 2, 2))


def test_rows_select_anchors_and_keep_every_negative():
    # DDP: each rank computes its own anchors' losses over the gathered global batch; together they are the
    # single-process per-sample losses.
    torch.manual_seed(0)
    a, b = torch.randn(6, 5), torch.randn(6, 5)
    full = grace_info_nce(a, b, tau=0.5)
    parts = torch.cat([grace_info_nce(a, b, tau=0.5, rows=slice(r * 3, r * 3 + 3)) for r in range(2)])
    assert torch.equal(parts, full)
    assert not torch.allclose(grace_info_nce(a[:3], b[:3], tau=0.5), full[:3])  # fewer negatives: another loss
