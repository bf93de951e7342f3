"""CIRKD: pixel-to-region distillation against a memory bank of the teacher's region embeddings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._numerics import float32_region, upcast

NUM_REGIONS = 2  # classes of a saliency GT: background (0) and salient (1)
CIRKD_MEMORY = 256  # region embeddings kept per class (CIRKD: 2000 on Cityscapes; our train sets hold ~100 images)
CIRKD_TAU = 0.1  # similarity temperature (CIRKD's --contrast-temperature)
CIRKD_KD_TAU = 1.0  # distribution temperature (CIRKD's --contrast-kd-temperature)


def region_similarity_kd(student: Tensor, teacher: Tensor, memory: Tensor, tau: float = CIRKD_TAU,
                         kd_tau: float = CIRKD_KD_TAU) -> Tensor:
    r"""kd_tau^2 * mean over pixels of KL(softmax(t M^T / tau / kd_tau) || softmax(s M^T / tau / kd_tau)).

    ``student`` and ``teacher``: ``(P, D)`` L2-normalised pixel embeddings; ``memory``: ``(K, D)`` region
    embeddings. Each pixel's similarities to the K regions become a distribution; the student's is pulled
    towards the teacher's. Computed with log-softmaxes.
    """
    s_logits = upcast(student) @ upcast(memory).t() / (tau * kd_tau)
    t_logits = upcast(teacher) @ upcast(memory).t() / (tau * kd_tau)
    log_q, log_p = F.log_softmax(t_logits, dim=1), F.log_softmax(s_logits, dim=1)
    return kd_tau ** 2 * (log_q.exp() * (log_q - log_p)).sum(dim=1).mean()


class PixelRegionDistillation(nn.Module):
    r"""CIRKD's pixel-to-region distillation on the last decoder feature am1 (Yang et al., CVPR 2022).

    A memory bank holds, per class (background, salient), the last K L2-normalised region embeddings of
    the teacher: for each training image and each class present in its GT (nearest-resized to am1's
    size), the mean of the teacher's L2-normalised am1 vectors over the class's pixels, normalised again.
    Each step first enqueues the batch's regions (first in, first out, one pointer per class), then, for
    every pixel i with student embedding s_i = normalize(h(S)_i) and teacher embedding t_i =
    normalize(T_i), compares the pixel's similarities to all 2K stored regions m_k:

        L = kd_tau^2 / P * sum_i KL( softmax_k(t_i . m_k / (tau kd_tau)) || softmax_k(s_i . m_k / (tau kd_tau)) )

    with tau = 0.1, kd_tau = 1 (CIRKD's defaults) and P = B*H*W pixels. h is CIRKD's projection head
    (1x1 conv, BatchNorm, ReLU, 1x1 conv, no biases), trained with the student (``optimised="always"``):
    2C^2 + 2C = 8,320 parameters at C = 64. The bank starts as random unit vectors, as in CIRKD.

    **Negatives.** No InfoNCE: every stored region (both classes, images of earlier batches = "cross-image")
    is a reference point of the relational distribution; no positive is singled out. **Memory bank**:
    buffers ``region_queue`` ``(2, K, C)`` and ``region_ptr`` ``(2,)``, part of the module's state_dict, so
    ``last.pt`` (``kd_modules``) saves them and a resumed run continues the same bank. **Cost**: one
    ``(P, C) x (C, 2K)`` product per network, P = B*(S/4)^2; at 64 px, batch 6, K = 256 that is 1536 x 512
    similarities per side; the bank is 2*K*C floats (128 KiB at K = 256, C = 64).

    Differences from CIRKD (``losses/cirkd_memory.py`` of winycg/CIRKD, read, not copied): we use the whole
    bank instead of sampling ``region_contrast_size`` entries from it (K is small, and no RNG draw changes
    the training's random stream); K = 256 per class instead of 2000; the pixel-to-pixel memory term
    (CIRKD's other loss) is not included (Table III names this term after the pixel-to-region contrast).
    Under DDP (``gather_across_ranks``) the regions of every rank are enqueued, as in CIRKD.

    Args:
        channels: C of am1 (student and teacher: equal in ACLNet).
        memory_size: K, region embeddings kept per class.
        tau, kd_tau: the similarity and the distribution temperatures.
        gather_across_ranks: enqueue the regions of every rank (torch.distributed).
    """

    consumes = ("decoder_feats", "gt")

    def __init__(self, channels: int, memory_size: int = CIRKD_MEMORY, tau: float = CIRKD_TAU,
                 kd_tau: float = CIRKD_KD_TAU, gather_across_ranks: bool = False) -> None:
        super().__init__()
        if memory_size < 1 or not tau > 0 or not kd_tau > 0:
            raise ValueError(f"PixelRegionDistillation: memory_size >= 1, tau > 0, kd_tau > 0; got {memory_size}, "
                             f"{tau!r}, {kd_tau!r}")
        self.tau, self.kd_tau, self.gather = float(tau), float(kd_tau), bool(gather_across_ranks)
        self.head = nn.Sequential(nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels),
                                  nn.ReLU(inplace=True), nn.Conv2d(channels, channels, 1, bias=False))
        self.register_buffer("region_queue", F.normalize(torch.randn(NUM_REGIONS, memory_size, channels), dim=2))
        self.register_buffer("region_ptr", torch.zeros(NUM_REGIONS, dtype=torch.long))

    def extra_repr(self) -> str:
        return f"memory_size={self.region_queue.shape[1]}, tau={self.tau}, kd_tau={self.kd_tau}"

    @torch.no_grad()
    def enqueue(self, teacher: Tensor, labels: Tensor) -> None:
        """Push each image's per-class mean embedding (``teacher`` (B, C, HW) normalised, ``labels`` (B, HW))."""
        if self.gather and torch.distributed.is_available() and torch.distributed.is_initialized():
            teacher, labels = _all_gather(teacher), _all_gather(labels)
        size = self.region_queue.shape[1]
        for cls in range(NUM_REGIONS):
            mask = (labels == cls).to(teacher.dtype)  # (B, HW)
            count = mask.sum(dim=1)
            present = count > 0
            if not present.any():
                continue
            means = torch.einsum("bcp,bp->bc", teacher, mask)[present] / count[present, None]
            slots = (self.region_ptr[cls] + torch.arange(len(means), device=means.device)) % size
            self.region_queue[cls, slots] = F.normalize(means, dim=1).to(self.region_queue.dtype)
            self.region_ptr[cls] = (self.region_ptr[cls] + len(means)) % size

    def forward(self, student: Tensor, teacher: Tensor, gt: Tensor) -> Tensor:
        """``student``/``teacher``: am1 ``(B, C, H, W)``; ``gt``: ``(B, 1, S, S)`` in {0, 1}."""
        if student.shape != teacher.shape or student.shape[1] != self.region_queue.shape[2]:
            raise ValueError(f"PixelRegionDistillation: student {tuple(student.shape)} and teacher "
                             f"{tuple(teacher.shape)} must match, with {self.region_queue.shape[2]} channels")
        projected = self.head(student)
        b, c = teacher.shape[:2]
        labels = F.interpolate(gt.float(), size=teacher.shape[-2:], mode="nearest").reshape(b, -1).round().long()
        with float32_region(projected):
            s = F.normalize(upcast(projected).flatten(2), dim=1)  # (B, C, HW)
            t = F.normalize(upcast(teacher.detach()).flatten(2), dim=1)
            self.enqueue(t, labels)
            memory = self.region_queue.reshape(-1, c).clone()  # the bank changes in place next step
            return region_similarity_kd(s.transpose(1, 2).reshape(-1, c), t.transpose(1, 2).reshape(-1, c),
                                        memory, self.tau, self.kd_tau)

    def distill(self, student: dict[str, list[Tensor]], teacher: dict[str, list[Tensor]]) -> Tensor:
        return self(student["decoder_feats"][0], teacher["decoder_feats"][0], teacher["gt"][0])


def _all_gather(tensor: Tensor) -> Tensor:
    parts = [torch.empty_like(tensor) for _ in range(torch.distributed.get_world_size())]
    torch.distributed.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)


def build_term(options: Mapping[str, Any], channels: tuple[int, ...]) -> PixelRegionDistillation:
    """Registry builder on am1 (``channels[0]``): options ``cirkd_memory`` (K per class), ``cirkd_tau``,
    ``cirkd_kd_tau``; ``gather_across_ranks`` from the trainer (DDP)."""
    return PixelRegionDistillation(channels[0], int(options.get("cirkd_memory", CIRKD_MEMORY)),
                                   float(options.get("cirkd_tau", CIRKD_TAU)),
                                   float(options.get("cirkd_kd_tau", CIRKD_KD_TAU)),
                                   bool(options.get("gather_across_ranks", False)))
