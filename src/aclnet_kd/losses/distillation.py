"""DistillationLoss: the weighted KD terms of ACLNet-S* (CLD + MGMD + ATD)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from aclnet_kd.errors import AclnetError

from .atd import ATD
from .cld import CLD
from .mgmd import MGMD

KD_TERMS = ("cld", "mgmd", "atd")
# `label` may sit beside the KD terms in params `kd.weights`; the trainer applies it to LabelLoss.
ACCEPTED_WEIGHT_KEYS = ("label", *KD_TERMS)


def _check_weights(weights: Mapping[str, Any]) -> dict[str, float]:
    unknown = sorted(set(weights) - set(ACCEPTED_WEIGHT_KEYS))
    if unknown:
        raise AclnetError(f"kd.weights: unknown key(s) {unknown}; expected among {list(ACCEPTED_WEIGHT_KEYS)}")
    checked = {}
    for name in KD_TERMS:
        value = weights.get(name, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise AclnetError(f"kd.weights.{name} must be a number >= 0, got {value!r}")
        checked[name] = float(value)
    return checked


class DistillationLoss(nn.Module):
    r"""The distillation terms of ACLNet-KD between a student and a (frozen) teacher.

        cld  = w_cld  * sum_{i=1..4} CLD_i(s_i^S, s_i^T)        on the fused stage features s1..s4
        mgmd = w_mgmd * MGMD(s_4^S, s_4^T)                      on stage 4
        atd  = w_atd  * sum_{i=1..4} ATD_i(am_i^S, am_i^T)      on the decoder features am1..am4

    ``forward`` returns ``{"cld": ..., "mgmd": ..., "atd": ...}`` with the weights already applied;
    a term whose weight is 0 (or missing from ``weights``) is neither built nor computed, and
    its key is absent. The release uses all weights 1 and adds these to the label loss.

    The teacher's features are detached: no gradient reaches the teacher network. The KD modules'
    own parameters (the CLD 1x1 convs, MGMD branches and graphs, ATD projections) do receive
    gradients; whether they are optimised is the trainer's choice (params
    ``kd.train_kd_modules``; the release never gives them to its optimizer, so they stay at
    their random initialisation). The module starts in training mode, as in the release, where
    MGMD's BatchNorm therefore normalises with batch statistics.

    Args:
        weights: ``{"cld": w, "mgmd": w, "atd": w}`` (``"label"`` is accepted and ignored here).
        tau: CLD temperature (0.5 in the release).
        atd_teacher_fix: False = the release's ATD teacher branch, True = fixed (see :class:`ATD`).
        channels: channels of levels 1..4 (stage and decoder features share them).
        mgmd_pool_size: MGMD's fixed pooled side (8, the release's stage-4 size at 256 px).
        gather_across_ranks: under DDP, CLD's negatives come from every rank (see :class:`CLD`).
    """

    def __init__(
        self,
        weights: Mapping[str, float],
        tau: float = 0.5,
        atd_teacher_fix: bool = False,
        channels: Sequence[int] = (64, 128, 256, 512),
        mgmd_pool_size: int = 8,
        gather_across_ranks: bool = False,
    ) -> None:
        super().__init__()
        self.weights = _check_weights(weights)
        self.channels = tuple(int(c) for c in channels)
        self.atd_teacher_fix = bool(atd_teacher_fix)
        w = self.weights
        self.cld = nn.ModuleList(CLD(c, tau, gather_across_ranks) for c in self.channels) if w["cld"] > 0 else None
        self.mgmd = MGMD(self.channels[-1], mgmd_pool_size) if w["mgmd"] > 0 else None
        self.atd = (
            nn.ModuleList(ATD(c, teacher_fix=self.atd_teacher_fix) for c in self.channels) if w["atd"] > 0 else None
        )

    @property
    def active_terms(self) -> tuple[str, ...]:
        return tuple(name for name in KD_TERMS if self.weights[name] > 0)

    def _levels(self, output: Any, field: str, who: str) -> list[Tensor]:
        feats = getattr(output, field, None)
        if feats is None or len(feats) != len(self.channels):
            raise ValueError(f"DistillationLoss: {who} output needs `{field}` with {len(self.channels)} tensors")
        for i, (f, c) in enumerate(zip(feats, self.channels)):
            if f.shape[1] != c:
                raise ValueError(f"DistillationLoss: {who} {field}[{i}] has {f.shape[1]} channels, expected {c}")
        return list(feats)

    def forward(self, student_out: Any, teacher_out: Any) -> dict[str, Tensor]:
        losses: dict[str, Tensor] = {}
        if self.cld is not None or self.mgmd is not None:
            s_stage = self._levels(student_out, "stage_feats", "student")
            t_stage = [t.detach() for t in self._levels(teacher_out, "stage_feats", "teacher")]
            if self.cld is not None:
                losses["cld"] = self.weights["cld"] * sum(m(s, t) for m, s, t in zip(self.cld, s_stage, t_stage))
            if self.mgmd is not None:
                losses["mgmd"] = self.weights["mgmd"] * self.mgmd(s_stage[-1], t_stage[-1])
        if self.atd is not None:
            s_dec = self._levels(student_out, "decoder_feats", "student")
            t_dec = [t.detach() for t in self._levels(teacher_out, "decoder_feats", "teacher")]
            losses["atd"] = self.weights["atd"] * sum(m(s, t) for m, s, t in zip(self.atd, s_dec, t_dec))
        return losses
