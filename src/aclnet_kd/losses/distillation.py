"""DistillationLoss: the weighted KD terms of a distilled student (ACLNet-S*: CLD + MGMD + ATD).

Which terms exist, what each reads and how it is built is the registry's (:mod:`.registry`); this module
builds the terms whose weight is > 0 and adds their weighted values.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from aclnet_kd.constants import LEVEL_CHANNELS
from aclnet_kd.errors import AclnetError

from .registry import GT_FIELD, KD_TERMS, REGISTRY, WEIGHT_KEYS, KDTerm

# `label` may sit beside the KD terms in params `kd.weights`; the trainer applies it to LabelLoss.
ACCEPTED_WEIGHT_KEYS = WEIGHT_KEYS
# Outputs with one tensor per feature level whose channels are LEVEL_CHANNELS (side_logits have 1 channel).
_LEVEL_FIELDS = ("stage_feats", "decoder_feats")


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


def build_term(term: KDTerm, options: Mapping[str, Any], channels: tuple[int, ...]) -> nn.Module:
    """The module of a registered term (its builder is imported here, on first use)."""
    module_name, _, function = term.builder.partition(":")
    return getattr(importlib.import_module(module_name), function)(options, channels)


class DistillationLoss(nn.Module):
    r"""The distillation terms of ACLNet-KD between a student and a (frozen) teacher.

        cld  = w_cld  * sum_{i=1..4} CLD_i(s_i^S, s_i^T)        on the fused stage features s1..s4
        mgmd = w_mgmd * MGMD(s_4^S, s_4^T)                      on stage 4
        atd  = w_atd  * sum_{i=1..4} ATD_i(am_i^S, am_i^T)      on the decoder features am1..am4

    (and any other term of the registry). ``forward`` returns ``{name: w_name * term}``; a term whose
    weight is 0 (or missing from ``weights``) is neither built nor computed, and its key is absent. Each
    built term is a child module named after it (state_dict keys ``cld.0...``, ``mgmd...``). The release
    uses all weights 1 and adds these to the label loss.

    The teacher's features are detached: no gradient reaches the teacher network. The KD modules'
    own parameters (the CLD 1x1 convs, MGMD branches and graphs, ATD projections) do receive
    gradients; whether they are optimised is the trainer's choice (:meth:`trainable_parameters`; params
    ``kd.train_kd_modules``: the release never gives them to its optimizer, so they stay at
    their random initialisation). The module starts in training mode, as in the release, where
    MGMD's BatchNorm therefore normalises with batch statistics.

    Args:
        weights: ``{"cld": w, "mgmd": w, "atd": w}`` (``"label"`` is accepted and ignored here).
        tau: CLD temperature (0.5 in the release).
        atd_teacher_fix: False = the release's ATD teacher branch, True = fixed (see :class:`ATD`).
        channels: channels of levels 1..4 (stage and decoder features share them).
        mgmd_pool_size: MGMD's fixed pooled side (8, the release's stage-4 size at 256 px).
        gather_across_ranks: under DDP, CLD's negatives come from every rank (see :class:`CLD`).
        options: further builder options of registered terms (merged over the ones above).
    """

    def __init__(
        self,
        weights: Mapping[str, float],
        tau: float = 0.5,
        atd_teacher_fix: bool = False,
        channels: Sequence[int] = LEVEL_CHANNELS,
        mgmd_pool_size: int = 8,
        gather_across_ranks: bool = False,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.weights = _check_weights(weights)
        self.channels = tuple(int(c) for c in channels)
        self.atd_teacher_fix = bool(atd_teacher_fix)
        self.options = {"tau": tau, "atd_teacher_fix": self.atd_teacher_fix, "mgmd_pool_size": mgmd_pool_size,
                        "gather_across_ranks": gather_across_ranks, **(options or {})}
        for name in KD_TERMS:  # registry order: fixes which random numbers initialise what. Off: None.
            active = self.weights[name] > 0
            setattr(self, name, build_term(REGISTRY[name], self.options, self.channels) if active else None)

    @property
    def active_terms(self) -> tuple[str, ...]:
        return tuple(name for name in KD_TERMS if self.weights[name] > 0)

    def trainable_parameters(self, train_kd_modules: bool) -> list[nn.Parameter]:
        """Set ``requires_grad`` of each term's own parameters and return those the optimizer steps: a
        ``switch`` term's when ``train_kd_modules`` (the release: never), an ``always`` term's always."""
        trained = []
        for name in self.active_terms:
            module = self.get_submodule(name)
            optimised = REGISTRY[name].optimised == "always" or train_kd_modules
            module.requires_grad_(optimised)
            trained += list(module.parameters()) if optimised else []
        return trained

    def _levels(self, output: Any, field: str, who: str) -> list[Tensor]:
        feats = getattr(output, field, None)
        if feats is None or len(feats) != len(self.channels):
            raise ValueError(f"DistillationLoss: {who} output needs `{field}` with {len(self.channels)} tensors")
        for i, (f, c) in enumerate(zip(feats, self.channels)):
            if field in _LEVEL_FIELDS and f.shape[1] != c:
                raise ValueError(f"DistillationLoss: {who} {field}[{i}] has {f.shape[1]} channels, expected {c}")
        return list(feats)

    def forward(self, student_out: Any, teacher_out: Any, gt: Tensor | None = None) -> dict[str, Tensor]:
        """``gt`` (B, 1, S, S): the batch's ground truth, needed only by a term that consumes it (CIRKD)."""
        terms = self.active_terms
        fields = [f for f in ("side_logits", *_LEVEL_FIELDS) if any(f in REGISTRY[n].consumes for n in terms)]
        student = {f: self._levels(student_out, f, "student") for f in fields}
        teacher = {f: [t.detach() for t in self._levels(teacher_out, f, "teacher")] for f in fields}
        needs_gt = [n for n in terms if GT_FIELD in REGISTRY[n].consumes]
        if needs_gt and gt is None:
            raise ValueError(f"DistillationLoss: {needs_gt} read the ground truth: pass gt")
        if needs_gt:
            student[GT_FIELD] = teacher[GT_FIELD] = [gt]
        return {name: self.weights[name] * self.get_submodule(name).distill(student, teacher) for name in terms}
