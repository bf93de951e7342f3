"""AT: attention transfer on the stage features with the original weight beta = 1000."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from ._levels import check_levels
from .atd import attention_transfer_loss

AT_BETA = 1000.0  # the README of the authors' code: `--beta 1e+3`, multiplied in as is


class AttentionTransfer(nn.Module):
    r"""Activation-based attention transfer (Zagoruyko & Komodakis, ICLR 2017) on s1..s4.

    Consumes ``ACLNetOutput.stage_feats`` (:attr:`consumes`). For each stage feature F
    ``(B, C, H, W)`` the attention map is the channel mean of |F_c|^p, flattened and L2-normalised
    per sample (:func:`aclnet_kd.losses.atd.attention_map`; p = 2):

        Q(F) = v / ||v||_2,   v = mean_c |F_c|^p  in R^{H*W}
        L = beta * sum_i mean_{b, positions} (Q(S_i) - Q(T_i))^2,   beta = 1000

    This is the authors' code, not the paper's Eq. (2), which reads (beta/2) sum_j
    || Q_S^j/||Q_S^j|| - Q_T^j/||Q_T^j|| ||_2 (a norm, not squared, summed over samples):

    - the code (``utils.at`` / ``utils.at_loss`` and ``cifar.py`` of szagoruyko/attention-transfer at
      893df54) averages the SQUARED difference over the batch and the H*W positions, and adds
      ``opt.beta * sum(loss_groups)`` with ``--beta 1e+3`` from its README. There is no 1/2 in the
      code (no commit of that repository ever had ``beta / 2``), so the weight is 1000, not 500;
    - the paper's experiments section sets beta to 10^3 divided by the number of elements of the
      attention map and the batch size (from our reading of the paper; not re-checked against the
      PDF here), which is what the code's mean does;
    - the mean over channels (code) and the paper's sum give the same map after the L2
      normalisation.

    Each level is therefore at most ``beta * 2 / (H*W)`` (two unit vectors of non-negative entries
    are at most sqrt(2) apart). If a level's spatial sizes differ, the student's feature is resized
    bilinearly to the teacher's first (not the case in our models).

    The teacher's features are detached. No trainable parameters. Maps are computed in float32.

    torchdistill 1.1.5: ``ATLoss(mode="code")`` computes sum_pairs weight * (at(S) - at(T))^2.mean()
    with the same ``at``, i.e. exactly ``L / beta`` here with beta left to the caller's weight; its
    ``mode="paper"`` is the non-squared norm of Eq. (2) divided by B. It reads its inputs from forward
    hooks by module path and does not resize, so we keep our own (cross-checked numerically, see
    docs/losses.md).

    Reference: Zagoruyko & Komodakis, "Paying More Attention to Attention: Improving the Performance
    of Convolutional Neural Networks via Attention Transfer", ICLR 2017; code
    github.com/szagoruyko/attention-transfer.

    Args:
        beta: the weight inside the term (1000 as in the authors' runs). The params weight
            multiplies on top of it.
        p: the power of |F_c| (2 in the paper's experiments).
    """

    consumes = "stage_feats"

    def __init__(self, beta: float = AT_BETA, p: float = 2.0) -> None:
        super().__init__()
        if not beta >= 0 or not p > 0:
            raise ValueError(f"AttentionTransfer: beta must be >= 0 and p > 0, got beta={beta!r}, p={p!r}")
        self.beta = float(beta)
        self.p = float(p)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, p={self.p}"

    def forward(self, student_feats: Sequence[Tensor], teacher_feats: Sequence[Tensor]) -> Tensor:
        check_levels("AttentionTransfer", student_feats, teacher_feats, "features")
        total = None
        for i, (s, t) in enumerate(zip(student_feats, teacher_feats)):
            if s.shape[0] != t.shape[0]:
                raise ValueError(f"AttentionTransfer: level {i}: batch sizes {s.shape[0]} and {t.shape[0]} differ")
            if s.shape[-2:] != t.shape[-2:]:
                s = F.interpolate(s, size=t.shape[-2:], mode="bilinear", align_corners=False)
            term = attention_transfer_loss(s, t.detach(), self.p)
            total = term if total is None else total + term
        return self.beta * total

    def distill(self, student: dict[str, list[Tensor]], teacher: dict[str, list[Tensor]]) -> Tensor:
        return self(student["stage_feats"], teacher["stage_feats"])


def build_term(options: Mapping[str, Any], channels: tuple[int, ...]) -> AttentionTransfer:
    """Registry builder: option ``at_beta`` (default the original 1000)."""
    return AttentionTransfer(float(options.get("at_beta", AT_BETA)))
