"""CLD: contrastive (InfoNCE) distillation between student and teacher stage features."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from aclnet_kd.errors import AclnetError

from ._numerics import float32_region, upcast


def grace_info_nce(anchor: Tensor, positive: Tensor, tau: float, eps: float = 1e-12,
                   rows: slice | None = None) -> Tensor:
    r"""GRACE's one-directional InfoNCE, per sample (shape ``(B,)``, or the length of ``rows``).

    With e(x, y) = exp(cos(x, y) / tau), anchor a_i and positive b_i (rows of ``anchor`` /
    ``positive``), the negatives are every other row of both views:

        l_i = -log( e(a_i, b_i) / (sum_j e(a_i, a_j) + sum_j e(a_i, b_j) - e(a_i, a_i)) )

    Computed as a log-sum-exp with the self pair masked out (the same value as subtracting it,
    without cancellation). Rows are L2-normalised with ``eps``, so an all-zero row has cosine 0
    with everything instead of NaN. Runs in float32 whatever the input dtype.

    ``rows`` selects the anchors whose losses are returned (all by default); every row of both
    views stays a negative. DDP uses it: each rank passes the gathered global batch and its own rows.
    """
    with float32_region(anchor):
        a = F.normalize(upcast(anchor), dim=1, eps=eps)
        b = F.normalize(upcast(positive), dim=1, eps=eps)
        rows = slice(0, a.shape[0]) if rows is None else rows
        positions = torch.arange(a.shape[0], device=a.device)
        self_pair = positions[rows, None] == positions[None, :]  # (rows, B): anchor i's own column
        sim_aa = a[rows] @ a.t() / tau
        sim_ab = a[rows] @ b.t() / tau
        sim_aa = sim_aa.masked_fill(self_pair, float("-inf"))
        log_denominator = torch.logsumexp(torch.cat([sim_aa, sim_ab], dim=1), dim=1)
        return log_denominator - sim_ab[self_pair]


class CLD(nn.Module):
    r"""Contrastive Learning Distillation for one stage (ACLNet-KD, the "CLD" loss).

    Two descriptor kinds of student feature S and teacher feature T (both ``(B, C, H, W)``):

    - channel descriptors: spatial mean, ``(B, C)``;
    - spatial descriptors: one 1x1 conv C -> 1 (with bias, the SAME conv for S and T),
      flattened to ``(B, H*W)``.

    For each kind, GRACE's InfoNCE (:func:`grace_info_nce`) in both directions, over the batch:

        L = mean_i 0.5 * [ l(s^c, t^c)_i + l(t^c, s^c)_i + l(s^hw, t^hw)_i + l(t^hw, s^hw)_i ]

    with temperature ``tau`` (0.5 in the release). The other samples of the batch are the
    negatives, so the batch must hold at least 2 samples.

    Under DDP (``gather_across_ranks`` and an initialised process group of N > 1 ranks) the
    descriptors are gathered over the ranks, so each rank's anchors see the N x B - 1 negatives of
    the global batch, as in the release's single process; each rank returns the mean over its own
    anchors, and the mean over ranks is the global mean.

    The 1x1 conv is this module's own parameter: the release never optimises it (random init).

    References: Zhu et al., "Deep Graph Contrastive Representation Learning" (GRACE), ICML
    Workshop 2020; ACLNet-KD release, ``distillation_loss/KD_middle.py`` (class ``CLD``).
    """

    def __init__(self, channels: int, tau: float = 0.5, gather_across_ranks: bool = False) -> None:
        super().__init__()
        self.gather_across_ranks = bool(gather_across_ranks)
        if tau <= 0:
            raise AclnetError(f"kd.tau must be > 0, got {tau}")
        self.tau = float(tau)
        self.spatial_descriptor = nn.Conv2d(channels, 1, kernel_size=1)

    def forward(self, student: Tensor, teacher: Tensor) -> Tensor:
        if student.shape != teacher.shape:
            raise ValueError(f"CLD: student {tuple(student.shape)} and teacher {tuple(teacher.shape)} differ")
        descriptors = [upcast(student).mean(dim=(2, 3)), upcast(teacher).mean(dim=(2, 3)),
                       self.spatial_descriptor(student).flatten(1), self.spatial_descriptor(teacher).flatten(1)]
        rows = None
        if self.gather_across_ranks and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            # The other ranks' samples are negatives too, as in one process on the global batch. This
            # all_gather is autograd-aware: each rank's rows receive the gradients of every rank's loss
            # (DDP then averages, which gives the global batch mean's gradient).
            from torch.distributed.nn.functional import all_gather

            local = student.shape[0]
            descriptors = [torch.cat(all_gather(d.contiguous()), dim=0) for d in descriptors]
            rows = slice(dist.get_rank() * local, (dist.get_rank() + 1) * local)
        if descriptors[0].shape[0] < 2:
            raise AclnetError(
                "CLD (kd.weights.cld > 0) contrasts the samples of a batch and needs batch size >= 2, "
                f"got {descriptors[0].shape[0]}: raise train.batch_size or set kd.weights.cld to 0"
            )
        s_channel, t_channel, s_spatial, t_spatial = descriptors
        per_sample = (
            grace_info_nce(s_channel, t_channel, self.tau, rows=rows)
            + grace_info_nce(t_channel, s_channel, self.tau, rows=rows)
            + grace_info_nce(s_spatial, t_spatial, self.tau, rows=rows)
            + grace_info_nce(t_spatial, s_spatial, self.tau, rows=rows)
        )
        return 0.5 * per_sample.mean()


class CLDTerm(nn.ModuleList):
    """The registered term ``cld``: one :class:`CLD` per level, summed over the stage features s1..s4."""

    def distill(self, student: dict[str, list[Tensor]], teacher: dict[str, list[Tensor]]) -> Tensor:
        return sum(m(s, t) for m, s, t in zip(self, student["stage_feats"], teacher["stage_feats"]))


def build_term(options: Mapping[str, Any], channels: tuple[int, ...]) -> CLDTerm:
    """Registry builder: options ``tau`` and ``gather_across_ranks``."""
    return CLDTerm(CLD(c, options["tau"], options["gather_across_ranks"]) for c in channels)
