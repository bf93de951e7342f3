"""CWD: channel-wise distillation (Shu et al., ICCV 2021) on the decoder features or the saliency logits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from ._levels import check_levels
from ._numerics import float32_region, upcast

CWD_INPUTS = ("decoder_feats", "side_logits")  # what the term may distil (option `cwd_on`)
CWD_TAU = 1.0  # the temperature of the CWD authors' and MMRazor's segmentation configs (tau=1 on logits)


def channel_wise_divergence(student: Tensor, teacher: Tensor, tau: float = CWD_TAU) -> Tensor:
    r"""tau^2 * mean over the B*C (sample, channel) rows of KL(phi(T_c / tau) || phi(S_c / tau)).

    phi is the softmax over the H*W positions of one channel of one sample, so each channel becomes a
    spatial distribution. ``student`` and ``teacher`` are ``(B, C, H, W)`` of equal shape; float32 result
    (float64 stays float64), computed from log-softmaxes so that saturated maps stay finite.
    """
    b, c = teacher.shape[:2]
    s = upcast(student).reshape(b * c, -1) / tau
    t = upcast(teacher).reshape(b * c, -1) / tau
    log_p_t, log_p_s = F.log_softmax(t, dim=1), F.log_softmax(s, dim=1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=1)  # one KL per (sample, channel)
    return tau ** 2 * kl.mean()


class ChannelWiseDistillation(nn.Module):
    r"""Channel-wise distillation, summed over the four levels of one model output.

    For each level, student map S and teacher map T ``(B, C, H, W)``, each channel c of each sample is
    turned into a distribution over its H*W positions by a softmax with temperature tau,

        phi(x_c)_i = exp(x_{c,i} / tau) / sum_j exp(x_{c,j} / tau),

    and the student's distribution is pulled towards the teacher's:

        L = sum_levels tau^2 / (B C) * sum_{b, c} sum_i phi(T_{b,c})_i log( phi(T_{b,c})_i / phi(S_{b,c})_i )

    (Shu, Liu, Gao, Yan & Shen, "Channel-wise Knowledge Distillation for Dense Prediction", ICCV 2021:
    KL(teacher || student) of each channel's spatial distribution, tau^2 times, averaged over
    the channels). The normalisation (sum over positions, mean over the B*C rows, times tau^2) is
    MMRazor's ``ChannelWiseDivergence`` (``mmrazor/models/losses/cwd.py``: the KL summed over all rows
    then divided by C*N, times tau^2), which we checked numerically (docs/losses.md "CWD").

    ``on`` picks the output:

    - ``"decoder_feats"`` (default, Table III): am1..am4, 64/128/256/512 channels at strides 4..32. The
      student's and the teacher's decoders have the same widths (``constants.LEVEL_CHANNELS``), so no
      connector (a 1x1 conv matching the widths) is needed.
    - ``"side_logits"``: the four 1-channel saliency logits at the input size. With one channel CWD is a
      spatial softmax over each map: it only sees where the salient mass is, not the background.

    If a level's spatial sizes differ, the student's map is resized bilinearly to the teacher's (not the
    case in our models). The teacher's tensors are detached; no trainable parameters; float32 inside
    autocast.

    Args:
        tau: the temperature (default 1).
        on: ``"decoder_feats"`` or ``"side_logits"``.
    """

    def __init__(self, tau: float = CWD_TAU, on: str = "decoder_feats") -> None:
        super().__init__()
        if not tau > 0:
            raise ValueError(f"ChannelWiseDistillation: tau must be > 0, got {tau!r}")
        if on not in CWD_INPUTS:
            raise ValueError(f"ChannelWiseDistillation: on must be one of {CWD_INPUTS}, got {on!r}")
        self.tau, self.consumes = float(tau), on

    def extra_repr(self) -> str:
        return f"tau={self.tau}, on={self.consumes!r}"

    def forward(self, student_maps: Sequence[Tensor], teacher_maps: Sequence[Tensor]) -> Tensor:
        check_levels("ChannelWiseDistillation", student_maps, teacher_maps, "maps")
        total = None
        for i, (s, t) in enumerate(zip(student_maps, teacher_maps)):
            if s.shape[:2] != t.shape[:2]:
                raise ValueError(f"ChannelWiseDistillation: level {i}: student {tuple(s.shape)} and teacher "
                                 f"{tuple(t.shape)} differ in batch or channels")
            if s.shape[-2:] != t.shape[-2:]:
                s = F.interpolate(s, size=t.shape[-2:], mode="bilinear", align_corners=False)
            with float32_region(s):
                term = channel_wise_divergence(s, t.detach(), self.tau)
            total = term if total is None else total + term
        return total

    def distill(self, student: dict[str, list[Tensor]], teacher: dict[str, list[Tensor]]) -> Tensor:
        return self(student[self.consumes], teacher[self.consumes])


def build_term(options: Mapping[str, Any], channels: tuple[int, ...]) -> ChannelWiseDistillation:
    """Registry builder: options ``cwd_tau`` (default 1) and ``cwd_on`` (decoder_feats | side_logits)."""
    return ChannelWiseDistillation(float(options.get("cwd_tau", CWD_TAU)), options.get("cwd_on", "decoder_feats"))
