"""Response KD: pixel-wise distillation of the teacher's saliency maps on every side output."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from ._levels import check_levels
from ._numerics import float32_region, upcast

RESPONSE_MODES = ("bce", "kl")


def _check_pairs(name: str, student: Sequence[Tensor], teacher: Sequence[Tensor]) -> None:
    """Same number of levels and the same shape per level, or a ValueError naming the level."""
    check_levels(name, student, teacher)
    for i, (s, t) in enumerate(zip(student, teacher)):
        if s.shape != t.shape:
            raise ValueError(f"{name}: level {i}: student {tuple(s.shape)} and teacher {tuple(t.shape)} differ")


def binary_kl_with_logits(student: Tensor, teacher: Tensor, temperature: float = 1.0) -> Tensor:
    r"""Per-pixel KL(Bernoulli(q) || Bernoulli(p)) with q = sigmoid(z_T / T), p = sigmoid(z_S / T).

        KL = q (log q - log p) + (1 - q) (log(1 - q) - log(1 - p))

    computed from log-sigmoids of the logits, so saturated logits stay finite. Elementwise, no
    reduction. At T = 1 it equals ``BCE(p, q) - H(q)``: the same gradient as the BCE variant.
    """
    zs, zt = student / temperature, teacher / temperature
    q = zt.sigmoid()
    return q * (F.logsigmoid(zt) - F.logsigmoid(zs)) + (1 - q) * (F.logsigmoid(-zt) - F.logsigmoid(-zs))


class ResponseKD(nn.Module):
    r"""Pixel-wise response distillation of the teacher's saliency maps, summed over the side outputs.

    Consumes ``ACLNetOutput.side_logits`` of both networks (4 x ``(B, 1, H, W)`` logits at the input
    size; :attr:`consumes`). With z^S_k, z^T_k the k-th side logits and N = B*H*W:

    - ``mode="bce"`` (default): BCE against the teacher's sigmoid, a soft target,

          L = sum_k (1/N) sum_pixels [ -q log p - (1 - q) log(1 - p) ],   p = sigmoid(z^S_k), q = sigmoid(z^T_k)

      Its minimum is the teacher's entropy H(q), not 0; its gradient is (p - q) / N per pixel.
    - ``mode="kl"``: the binary KL with temperature T of Hinton et al., scaled by T^2 so that the
      gradient's size does not depend on T (their Sec. 2),

          L = T^2 sum_k (1/N) sum_pixels KL(Bernoulli(q_T) || Bernoulli(p_T)),
          p_T = sigmoid(z^S_k / T),  q_T = sigmoid(z^T_k / T)

      (:func:`binary_kl_with_logits`); d L / d z^S = T (p_T - q_T) / N. At T = 1 it is the BCE
      variant minus H(q): the same gradient.

    Each pixel is a two-class problem (salient / background), which is how response KD is applied to
    dense prediction (Liu et al., "Structured Knowledge Distillation for Semantic Segmentation",
    CVPR 2019, pixel-wise term). The sum over the side outputs follows :class:`LabelLoss`, which sums
    its terms over the same four outputs.

    The teacher's logits are detached. No trainable parameters. The loss runs in float32 (also under
    autocast).

    torchdistill (1.1.5, ``torchdistill.losses.mid_level.KDLoss``) takes ``log_softmax`` /
    ``softmax`` over dim 1. On our one-channel logits that softmax is 1 everywhere and the loss is
    identically 0, so it does not fit as is. Fed the two-class logits ``cat([0, z], 1)``, its KL is
    our ``kl`` mode up to the reduction (its ``batchmean`` sums over pixels and divides by B, ours
    averages over pixels) and the T^2 factor (it applies T^2 only with a non-zero ``alpha``, which
    also adds a cross-entropy on class targets). It also reads its logits from forward hooks by
    module path. We therefore use our own; the numerical cross-check is in docs/losses.md.

    Reference: Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural Network", NIPS 2014
    Deep Learning Workshop (arXiv:1503.02531).

    Args:
        mode: ``"bce"`` or ``"kl"``.
        temperature: T of the ``kl`` mode (must be 1 with ``bce``, where it has no meaning).
    """

    consumes = "side_logits"

    def __init__(self, mode: str = "bce", temperature: float = 1.0) -> None:
        super().__init__()
        if mode not in RESPONSE_MODES:
            raise ValueError(f"ResponseKD: mode must be one of {RESPONSE_MODES}, got {mode!r}")
        if not temperature > 0:
            raise ValueError(f"ResponseKD: temperature must be > 0, got {temperature!r}")
        if mode == "bce" and temperature != 1.0:
            raise ValueError("ResponseKD: a temperature needs mode='kl' (the BCE variant has none)")
        self.mode = mode
        self.temperature = float(temperature)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, temperature={self.temperature}"

    def forward(self, student_sides: Sequence[Tensor], teacher_sides: Sequence[Tensor]) -> Tensor:
        _check_pairs("ResponseKD", student_sides, teacher_sides)
        total = None
        for s, t in zip(student_sides, teacher_sides):
            with float32_region(s):
                s32, t32 = upcast(s), upcast(t.detach())
                if self.mode == "bce":
                    term = F.binary_cross_entropy_with_logits(s32, t32.sigmoid())
                else:
                    term = self.temperature ** 2 * binary_kl_with_logits(s32, t32, self.temperature).mean()
            total = term if total is None else total + term
        return total

    def distill(self, student: dict[str, list[Tensor]], teacher: dict[str, list[Tensor]]) -> Tensor:
        return self(student["side_logits"], teacher["side_logits"])


def build_term(options: Mapping[str, Any], channels: tuple[int, ...]) -> ResponseKD:
    """Registry builder: options ``response_mode`` (bce | kl) and ``response_temperature`` (kl only)."""
    return ResponseKD(options.get("response_mode", "bce"), float(options.get("response_temperature", 1.0)))
