"""Label (saliency) loss: BCE + IoU on every side output, as in BASNet and the ACLNet release."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._numerics import float32_region, upcast

BCE_REDUCTIONS = ("batch_sum", "mean")


class LabelLoss(nn.Module):
    r"""Sum over the side outputs k of BCE(sigmoid(z_k), g) + IoU(sigmoid(z_k), g).

    With p = sigmoid(z) and g in {0, 1}, per image b (sums over its pixels):

        BCE_b = mean_pixels[ -g log p - (1 - g) log(1 - p) ]
        IoU_b = 1 - sum(p g) / sum(p + g - p g)          (BASNet's IoU loss)

    IoU is averaged over the batch. BCE is reduced over the batch by ``bce_reduction``:

    - ``"batch_sum"`` (default, the release): sum_b BCE_b. The release's ``BCELOSS`` iterates
      over the batch and adds the per-image means, so its BCE grows with the batch size
      (x6 at the paper's batch 6) while its IoU term does not.
    - ``"mean"``: mean_b BCE_b, the usual ``nn.BCELoss``; independent of the batch size (at the
      paper's batch 6 it weighs BCE 1/6 of the release's sum: not the release's loss).

    Under DDP each rank sums over its own images and the gradients are averaged over the N ranks,
    which would weigh a batch sum 1/N of the single-process sum. ``world_size`` = N scales the
    per-rank sum by N, so the averaged gradient (and the logged mean over ranks) is the sum over
    the global batch, as one process computes it. The batch means (IoU, ``"mean"``) need no scaling.

    We take logits and use ``binary_cross_entropy_with_logits`` (stable for saturated logits;
    the release applies ``nn.BCELoss`` to sigmoid outputs, which clamps log at -100: the same value
    wherever |z| < ~36). Everything is computed in float32, also under autocast.

    References: Qin et al., "BASNet: Boundary-Aware Salient Object Detection", CVPR 2019
    (the BCE + IoU hybrid loss); ACLNet-KD release, ``train_RGBT_KD_2.py``.
    """

    def __init__(self, bce_reduction: str = "batch_sum", eps: float = 1e-6, world_size: int = 1) -> None:
        super().__init__()
        if bce_reduction not in BCE_REDUCTIONS:
            raise ValueError(f"bce_reduction must be one of {BCE_REDUCTIONS}, got {bce_reduction!r}")
        if world_size < 1:
            raise ValueError(f"world_size must be >= 1, got {world_size}")
        self.bce_reduction = bce_reduction
        self.world_size = int(world_size)
        self.eps = eps  # guards sum(p + g - p g) = 0, which needs p = 0 everywhere (saturated logits)

    def forward(self, side_logits: Sequence[Tensor], gt: Tensor) -> Tensor:
        if len(side_logits) == 0:
            raise ValueError("LabelLoss needs at least one side output")
        total = None
        with float32_region(gt):
            g = upcast(gt).flatten(1)
            for k, logits in enumerate(side_logits):
                if logits.shape != gt.shape:
                    raise ValueError(f"side output {k} has shape {tuple(logits.shape)}, gt has {tuple(gt.shape)}")
                z = upcast(logits).flatten(1)
                bce_per_image = F.binary_cross_entropy_with_logits(z, g, reduction="none").mean(1)
                if self.bce_reduction == "batch_sum":
                    bce = bce_per_image.sum() * self.world_size  # DDP averages: N x the local sum = the global sum
                else:
                    bce = bce_per_image.mean()
                p = torch.sigmoid(z)
                intersection = (p * g).sum(1)
                union = (p + g - p * g).sum(1).clamp_min(self.eps)
                iou = (1.0 - intersection / union).mean()
                term = bce + iou
                total = term if total is None else total + term
        return total
