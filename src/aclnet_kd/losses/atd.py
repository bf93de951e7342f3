"""ATD: attention-projection distillation on the decoder features."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from ._numerics import float32_region, upcast


def attention_map(feature: Tensor, p: float = 2.0, eps: float = 1e-12) -> Tensor:
    r"""Zagoruyko & Komodakis' spatial attention: Q = mean_c |F_c|^p, flattened and L2-normalised.

    ``(B, C, H, W)`` -> ``(B, H*W)``, in float32 (``eps`` keeps an all-zero map at 0, not NaN).
    For p = 2 this is the release's ``f.pow(2).mean(1)``.
    """
    with float32_region(feature):
        q = upcast(feature).abs().pow(p).mean(1).flatten(1)
        return F.normalize(q, dim=1, eps=eps)


def attention_transfer_loss(student: Tensor, teacher: Tensor, p: float = 2.0) -> Tensor:
    r"""AT loss: mean over batch and positions of (Q_S - Q_T)^2 (:func:`attention_map`).

    Reference: Zagoruyko & Komodakis, "Paying More Attention to Attention: Improving the
    Performance of Convolutional Neural Networks via Attention Transfer", ICLR 2017.
    """
    return (attention_map(student, p) - attention_map(teacher, p)).pow(2).mean()


class ATD(nn.Module):
    r"""Attention-Transfer Distillation for one decoder level (ACLNet-KD "ATD").

    Each feature X ``(B, C, L)`` (L = H*W) goes through an external-attention style projection
    with k = 64 memory units (Guo et al., "Beyond Self-attention: External Attention using Two
    Linear Layers", 2021), then the AT loss of Zagoruyko & Komodakis (p = 2) compares the two:

        Z = W_k X                         (Conv1d C -> k, no bias)
        A = softmax over positions of Z,  then A / (1e-9 + sum over the k units of A)
        Y = W_back (Z * A) + X            (Conv1d k -> C, no bias, residual)
        L = AT(Y_S, Y_T)                  (:func:`attention_transfer_loss`)

    The release builds the value projection as a second conv whose weight tensor is W_k's, so the
    "value" is Z itself; we use W_k once. Student and teacher have their own W_k.

    ``teacher_fix`` selects the teacher branch:

    - False (the release): the teacher's softmax runs over the k units instead of over the
      positions (so the renormalisation is a no-op), and its back-projection is the STUDENT's
      W_back (the teacher's own one is built there but unused; here it is not built);
    - True (fixed): the teacher branch is the student's operator with its own weights: softmax
      over positions and its own W_back.

    The convs are this module's own parameters; the release never optimises them (random init).

    References: Zagoruyko & Komodakis, ICLR 2017 (AT loss); ACLNet-KD release,
    ``distillation_loss/KD_middle.py`` (``ATD``; it calls ``super()`` with a wrong class name,
    so it cannot run as released).
    """

    def __init__(self, channels: int, units: int = 64, teacher_fix: bool = False) -> None:
        super().__init__()
        self.teacher_fix = bool(teacher_fix)
        self.student_key = nn.Conv1d(channels, units, kernel_size=1, bias=False)
        self.student_back = nn.Conv1d(units, channels, kernel_size=1, bias=False)
        self.teacher_key = nn.Conv1d(channels, units, kernel_size=1, bias=False)
        self.teacher_back = nn.Conv1d(units, channels, kernel_size=1, bias=False) if self.teacher_fix else None

    @staticmethod
    def _project(x: Tensor, key: nn.Conv1d, back: nn.Conv1d, softmax_over_positions: bool) -> Tensor:
        b, c, h, w = x.shape
        z = key(x.reshape(b, c, h * w))  # (B, k, L)
        with float32_region(z):
            attn = F.softmax(upcast(z), dim=2 if softmax_over_positions else 1)
            attn = attn / (1e-9 + attn.sum(dim=1, keepdim=True))  # double normalisation
        y = back((z * attn).to(z.dtype))
        return y.reshape(b, c, h, w) + x

    def forward(self, student: Tensor, teacher: Tensor) -> Tensor:
        if student.shape != teacher.shape:
            raise ValueError(f"ATD: student {tuple(student.shape)} and teacher {tuple(teacher.shape)} differ")
        y_s = self._project(student, self.student_key, self.student_back, softmax_over_positions=True)
        if self.teacher_fix:
            y_t = self._project(teacher, self.teacher_key, self.teacher_back, softmax_over_positions=True)
        else:
            y_t = self._project(teacher, self.teacher_key, self.student_back, softmax_over_positions=False)
        return attention_transfer_loss(y_s, y_t)


class ATDTerm(nn.ModuleList):
    """The registered term ``atd``: one :class:`ATD` per level, summed over the decoder features am1..am4."""

    def distill(self, student: dict[str, list[Tensor]], teacher: dict[str, list[Tensor]]) -> Tensor:
        return sum(m(s, t) for m, s, t in zip(self, student["decoder_feats"], teacher["decoder_feats"]))


def build_term(options: Mapping[str, Any], channels: tuple[int, ...]) -> ATDTerm:
    """Registry builder: option ``atd_teacher_fix``."""
    return ATDTerm(ATD(c, teacher_fix=options["atd_teacher_fix"]) for c in channels)
