"""FitNet: hint loss on the stage features through a trainable 1x1 conv adapter per stage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from aclnet_kd.constants import LEVEL_CHANNELS

from ._levels import check_levels
from ._numerics import float32_region, upcast


class FitNetHint(nn.Module):
    r"""FitNets hint loss on the fused stage features s1..s4, one 1x1 conv regressor per stage.

    Consumes ``ACLNetOutput.stage_feats`` (:attr:`consumes`). For stage i with student feature
    S_i ``(B, C^S_i, H, W)`` and teacher feature T_i ``(B, C^T_i, H, W)``:

        r_i(S_i) = W_i * S_i + b_i                     (1x1 conv C^S_i -> C^T_i, with bias)
        L = sum_i mean_{b, c, h, w} (r_i(S_i) - T_i)^2  (MSE over the B*C^T_i*H*W elements)

    In our models both networks' stage features have 64/128/256/512 channels (the fusion convs
    ``conv_concat_i`` fix them, whatever the backbone), so by default each regressor is C -> C:
    4,160 + 16,512 + 65,792 + 262,656 = 349,120 parameters. They start at PyTorch's default conv
    initialisation and are trained: the trainer must give them to the student's optimizer (Romero
    et al. train the regressor jointly with the student's lower layers). If a level's spatial size
    differs, the regressed student map is resized bilinearly to the teacher's (not the case for our
    models, whose two networks share strides).

    Romero et al. write the hint loss as (1/2) ||u_h - r(v_g)||^2, a sum over the elements. We
    average over the elements instead (MSE, as the issue and the usual implementations do): a
    constant factor per level, so the levels' scales do not grow with H*W*C. Their regressor is a
    convolution whose non-linearity matches the hint layer's; ours is linear (1x1 conv), the common
    choice for dense features.

    The teacher's features are detached: gradients reach the student's features and the adapters
    only. The squared error is computed in float32 (the conv runs in the autocast dtype).

    torchdistill (1.1.5) has no FitNet loss class: a FitNet there is a YAML recipe pairing its
    ``ConvReg`` adapter (conv + BatchNorm + ReLU, ``torchdistill.models.adaptation``), inserted into
    the student by module path, with ``torch.nn.MSELoss`` read from forward hooks. Its MSE is the
    same mean as ours; its adapter adds BatchNorm and ReLU. It does not fit our tensor lists without
    its hook-based training box, so we use our own.

    Reference: Romero, Ballas, Kahou, Chassang, Gatta & Bengio, "FitNets: Hints for Thin Deep
    Nets", ICLR 2015 (Eq. 2).

    Args:
        student_channels: C^S_1..C^S_4.
        teacher_channels: C^T_1..C^T_4 (default: equal to the student's).
    """

    consumes = "stage_feats"

    def __init__(self, student_channels: Sequence[int] = LEVEL_CHANNELS,
                 teacher_channels: Sequence[int] | None = None) -> None:
        super().__init__()
        self.student_channels = tuple(int(c) for c in student_channels)
        self.teacher_channels = self.student_channels if teacher_channels is None else tuple(
            int(c) for c in teacher_channels)
        if len(self.student_channels) != len(self.teacher_channels):
            raise ValueError(f"FitNetHint: {len(self.student_channels)} student and {len(self.teacher_channels)} "
                             "teacher channel counts; they must pair up per stage")
        self.adapters = nn.ModuleList(
            nn.Conv2d(cs, ct, kernel_size=1, bias=True) for cs, ct in zip(self.student_channels, self.teacher_channels)
        )

    def forward(self, student_feats: Sequence[Tensor], teacher_feats: Sequence[Tensor]) -> Tensor:
        check_levels("FitNetHint", student_feats, teacher_feats, "features", count=len(self.adapters))
        total = None
        for i, (adapter, s, t) in enumerate(zip(self.adapters, student_feats, teacher_feats)):
            if s.shape[1] != self.student_channels[i] or t.shape[1] != self.teacher_channels[i]:
                raise ValueError(f"FitNetHint: stage {i + 1}: expected {self.student_channels[i]} student and "
                                 f"{self.teacher_channels[i]} teacher channels, got {s.shape[1]} and {t.shape[1]}")
            hint = adapter(s)
            if hint.shape[-2:] != t.shape[-2:]:
                hint = F.interpolate(hint, size=t.shape[-2:], mode="bilinear", align_corners=False)
            with float32_region(hint):
                term = F.mse_loss(upcast(hint), upcast(t.detach()))
            total = term if total is None else total + term
        return total

    def distill(self, student: dict[str, list[Tensor]], teacher: dict[str, list[Tensor]]) -> Tensor:
        return self(student["stage_feats"], teacher["stage_feats"])


def build_term(options: Mapping[str, Any], channels: tuple[int, ...]) -> FitNetHint:
    """Registry builder: one 1x1 adapter per stage, ``channels`` -> ``channels`` (the teacher's fused stage
    features have the student's widths in ACLNet)."""
    return FitNetHint(channels, channels)
