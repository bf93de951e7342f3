"""LabelLoss: hand-computed values, an independent numpy re-derivation, edge cases (gradcheck, zero logits and
bf16: test_contract.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from aclnet_kd.losses import LabelLoss


def release_label_loss_numpy(side_logits: list[np.ndarray], gt: np.ndarray, batch_sum: bool) -> float:
    """The release's formula written out: sigmoid, per-image mean BCE, BASNet IoU per image."""
    total = 0.0
    for logits in side_logits:
        p = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
        bce_per_image, iou_per_image = [], []
        for b in range(gt.shape[0]):
            g, q = gt[b].ravel(), p[b].ravel()
            bce_per_image.append(-np.mean(g * np.log(q) + (1 - g) * np.log(1 - q)))
            inter = np.sum(g * q)
            iou_per_image.append(1.0 - inter / (np.sum(g) + np.sum(q) - inter))
        total += (np.sum(bce_per_image) if batch_sum else np.mean(bce_per_image)) + np.mean(iou_per_image)
    return float(total)


def test_hand_computed_zero_logits():
    # p = 0.5 everywhere on a 2x2 map with one foreground pixel:
    # BCE = ln 2; IoU = 1 - 0.5 / (4 * 0.5 + 1 - 0.5) = 0.8; four side outputs.
    gt = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    sides = [torch.zeros(1, 1, 2, 2) for _ in range(4)]
    expected = 4 * (math.log(2) + 0.8)
    assert LabelLoss()(sides, gt).item() == pytest.approx(expected, rel=1e-6)
    # batch of two identical images: the release sums BCE over the batch, averages IoU
    gt2, sides2 = gt.repeat(2, 1, 1, 1), [s.repeat(2, 1, 1, 1) for s in sides]
    assert LabelLoss()(sides2, gt2).item() == pytest.approx(4 * (2 * math.log(2) + 0.8), rel=1e-6)
    assert LabelLoss("mean")(sides2, gt2).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("reduction", ["batch_sum", "mean"])
def test_matches_numpy_rederivation(reduction):
    rng = np.random.default_rng(0)
    gt = (rng.random((3, 1, 5, 6)) > 0.6).astype(np.float32)
    sides = [rng.normal(0, 2, size=gt.shape).astype(np.float32) for _ in range(4)]
    got = LabelLoss(reduction)([torch.from_numpy(s) for s in sides], torch.from_numpy(gt)).item()
    assert got == pytest.approx(release_label_loss_numpy(sides, gt, reduction == "batch_sum"), rel=1e-5)


def test_saturated_logits_stay_finite():
    gt = torch.zeros(2, 1, 4, 4)
    sides = [torch.full((2, 1, 4, 4), -200.0, requires_grad=True) for _ in range(4)]
    loss = LabelLoss()(sides, gt)
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(s.grad).all() for s in sides)


def test_bad_inputs():
    with pytest.raises(ValueError, match="bce_reduction"):
        LabelLoss("sum")
    with pytest.raises(ValueError, match="shape"):
        LabelLoss()([torch.zeros(1, 1, 4, 4)], torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="at least one"):
        LabelLoss()([], torch.zeros(1, 1, 4, 4))


def test_world_size_scales_the_batch_sum_only():
    # Under DDP each rank sums BCE over its half batch and the gradients are averaged: world_size=2 makes the
    # mean over the ranks the single-process sum over the global batch; IoU (a batch mean) is unchanged.
    torch.manual_seed(0)
    gt = (torch.rand(4, 1, 8, 8) > 0.5).float()
    sides = [torch.randn(4, 1, 8, 8) for _ in range(4)]
    for reduction in ("batch_sum", "mean"):
        single = LabelLoss(reduction)(sides, gt)
        ranks = [LabelLoss(reduction, world_size=2)([s[r * 2:r * 2 + 2] for s in sides], gt[r * 2:r * 2 + 2])
                 for r in range(2)]
        assert (0.5 * (ranks[0] + ranks[1])).item() == pytest.approx(single.item(), rel=1e-5), reduction
