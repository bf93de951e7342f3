"""ACLNet-T (RGB-D teacher) and ACLNet-S (RGB student) of ACLNet-KD, faithful to the authors' release.

Both share one decoder (facts.md §1)::

    s_i  = conv_concat_i(cat(rgb_i, depth_i))      teacher; the student fuses rgb_i with itself
    am4  = wf_4(s4)
    am_i = wf_i(up2(conv_cross_i(am_{i+1})) + s_i)   i = 3, 2, 1
    side_i = up(Head_i(am_i)) to the input size;    side_1 is the prediction

``wf_i`` is the WF channel attention (WF_V2 in the release): cosine-similarity affinity between channels,
``alph * (A X) + X`` with ``alph`` initialised to 0. Module names equal the release's, so an authors'
checkpoint loads with ``strict=True`` (the backbones drop their unused ImageNet classifiers on load).

The backbone is a config value: a Shunted variant (state_dict-compatible with the release; built without its
classifier and read through timm's ``forward_intermediates``) or any timm model with ``features_only=True``
support, whose stride 4/8/16/32 features are adapted to 64/128/256/512 channels by 1x1 convs.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import timm
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aclnet_kd.constants import LEVEL_CHANNELS
from aclnet_kd.errors import AclnetError
from aclnet_kd.models.shunted import SHUNTED_VARIANTS, load_pretrained

__all__ = ["ACLNetOutput", "ACLNet", "ACLNetTeacher", "ACLNetStudent", "WFAttention", "build_backbone"]

# LEVEL_CHANNELS (constants): the stage s1..s4 and decoder am1..am4 widths, which the KD losses share
STAGE_STRIDES = (4, 8, 16, 32)


class ACLNetOutput(NamedTuple):
    """Everything training and distillation need from one forward pass (train mode or ``return_all=True``).

    ``logits`` is ``side_logits[0]`` (Head1, the prediction). Every tuple is ordered stage 1 -> 4:
    ``side_logits`` 4 x (B, 1, H, W) at the input size; ``decoder_feats`` am1..am4 and ``stage_feats``
    s1..s4, both 64/128/256/512 channels at strides 4/8/16/32.
    """

    logits: Tensor
    side_logits: tuple[Tensor, Tensor, Tensor, Tensor]
    decoder_feats: tuple[Tensor, Tensor, Tensor, Tensor]
    stage_feats: tuple[Tensor, Tensor, Tensor, Tensor]


class ConvBNReLU(nn.Module):
    """1x1 conv (no bias) + BatchNorm + ReLU; the ``conv`` wrapper keeps the release's key names."""

    def __init__(self, in_chans: int, out_chans: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(in_chans, out_chans, 1, bias=False), nn.BatchNorm2d(out_chans),
                                  nn.ReLU(inplace=True))

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class SalHead(nn.Module):
    """Dropout2d(0.1) + 1x1 conv to one logit channel."""

    def __init__(self, in_chans: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Dropout2d(p=0.1), nn.Conv2d(in_chans, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class WFAttention(nn.Module):
    """WF channel self-attention (WF_V2 of the release).

    With X the (C, HW) feature of one image and n_c the L2 norm of channel c::

        A[c, c'] = <x_c, x_c'> / (n_c * n_c' + 1e-8)        (cosine similarity between channels)
        out      = alph * (A X) + X                          (alph: learnable scalar, starts at 0)

    The matrix products read the flattened input through its strides (no copy) and write the result in the
    input's memory layout (contiguous or channels_last); under bf16 autocast the output stays bf16.
    """

    def __init__(self) -> None:
        super().__init__()
        self.alph = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor) -> Tensor:
        flat = x.flatten(2)  # (B, C, HW)
        gram = torch.bmm(flat, flat.transpose(1, 2))  # (B, C, C)
        norms = torch.linalg.vector_norm(flat, dim=2)  # (B, C)
        affinity = gram / (norms.unsqueeze(2) * norms.unsqueeze(1) + 1e-8)
        if x.is_contiguous():
            mixed = torch.bmm(affinity, flat).view_as(x)
        else:  # channels_last: compute (A X)^T = X^T A^T so the result keeps the input's memory layout
            mixed = torch.bmm(flat.mT, affinity.mT).mT.unflatten(2, x.shape[-2:])
        # alph cast to the activation dtype so a bf16 autocast graph stays bf16
        return x + self.alph.to(x.dtype) * mixed


class TimmStages(nn.Module):
    """A timm ``features_only`` model cut to its stride 4/8/16/32 outputs, adapted to 64/128/256/512 ch."""

    def __init__(self, name: str, drop_path_rate: float = 0.0, pretrained: str | os.PathLike | None = None) -> None:
        super().__init__()
        kwargs = {"drop_path_rate": drop_path_rate} if drop_path_rate else {}
        try:
            if pretrained is None:
                self.body = timm.create_model(name, features_only=True, pretrained=False, **kwargs)
            else:
                # Validate and load the file strictly into the full classifier model (our loader, clear
                # errors), then let timm map those weights onto its feature-extractor wrapper.
                full = timm.create_model(name, pretrained=False, **kwargs)
                load_pretrained(full, pretrained, classifier=full.pretrained_cfg.get("classifier") or "head")
                self.body = timm.create_model(name, features_only=True, pretrained=True, **kwargs,
                                              pretrained_cfg_overlay={"state_dict": full.state_dict()})
        except (RuntimeError, KeyError, TypeError) as err:
            if isinstance(err, AclnetError):
                raise
            raise AclnetError(f"backbone {name!r}: timm cannot build it with features_only=True ({err})") from None
        reductions = self.body.feature_info.reduction()
        channels = self.body.feature_info.channels()
        if any(stride not in reductions for stride in STAGE_STRIDES):
            raise AclnetError(f"backbone {name!r}: needs features at strides {STAGE_STRIDES}, has {reductions}")
        self.keep = [reductions.index(stride) for stride in STAGE_STRIDES]
        self.adapt = nn.ModuleList(
            nn.Identity() if channels[i] == out else nn.Conv2d(channels[i], out, 1)
            for i, out in zip(self.keep, LEVEL_CHANNELS)
        )

    def forward_intermediates(self, x: Tensor, intermediates_only: bool = True) -> list[Tensor]:
        """The four adapted stage features; named as timm's API so ACLNet reads every backbone one way."""
        if not intermediates_only:
            raise ValueError("TimmStages gives the stage features only (intermediates_only=True)")
        feats = self.body(x)
        return [adapt(feats[i]) for i, adapt in zip(self.keep, self.adapt)]

    def forward(self, x: Tensor) -> list[Tensor]:
        return self.forward_intermediates(x)


def build_backbone(name: str, drop_path_rate: float = 0.0, pretrained: str | os.PathLike | None = None) -> nn.Module:
    """A module whose ``forward_intermediates(x, intermediates_only=True)`` maps (B, 3, H, W) to four NCHW
    features of 64/128/256/512 ch at strides 4/8/16/32."""
    if name in SHUNTED_VARIANTS:
        # Without its ImageNet classifier, so the state_dict keys are the release's; the weights file (if any)
        # is read and checked by timm's pretrained path with our filter (shunted.checkpoint_filter_fn).
        overlay = {"pretrained_cfg_overlay": {"file": os.fspath(pretrained)}} if pretrained is not None else {}
        return timm.create_model(name, pretrained=pretrained is not None, num_classes=0,
                                 drop_path_rate=drop_path_rate, **overlay)
    if name not in timm.list_models():
        raise AclnetError(f"unknown backbone {name!r}: use one of {sorted(SHUNTED_VARIANTS)} or a timm model name")
    return TimmStages(name, drop_path_rate, pretrained)


class ACLNet(nn.Module):
    """Shared fusion, decoder and heads. Use :class:`ACLNetTeacher` or :class:`ACLNetStudent`."""

    is_rgbd: bool = False

    def __init__(self, rgb: nn.Module, depth: nn.Module | None = None) -> None:
        super().__init__()
        # Registration order follows the release, so state_dict keys come out in its order too.
        self.rgb = rgb
        if depth is not None:
            self.depth = depth
        c1, c2, c3, c4 = LEVEL_CHANNELS
        self.Head1, self.Head2, self.Head3, self.Head4 = (SalHead(c) for c in LEVEL_CHANNELS)
        self.wf_1, self.wf_2, self.wf_3, self.wf_4 = (WFAttention() for _ in range(4))
        self.conv_cross_1 = ConvBNReLU(c2, c1)
        self.conv_cross_2 = ConvBNReLU(c3, c2)
        self.conv_cross_3 = ConvBNReLU(c4, c3)
        self.conv_concat_1, self.conv_concat_2, self.conv_concat_3, self.conv_concat_4 = (
            ConvBNReLU(2 * c, c) for c in LEVEL_CHANNELS
        )

    def _decode(self, pairs: list[tuple[Tensor, Tensor]], size: tuple[int, int], return_all: bool
                ) -> Tensor | ACLNetOutput:
        """Fuse the per-stage (rgb, other) feature pairs, decode top-down, and apply the heads."""
        concat = (self.conv_concat_1, self.conv_concat_2, self.conv_concat_3, self.conv_concat_4)
        s1, s2, s3, s4 = (fuse(torch.cat(pair, dim=1)) for fuse, pair in zip(concat, pairs))
        am4 = self.wf_4(s4)
        am3 = self.wf_3(_up_to(self.conv_cross_3(am4), s3) + s3)
        am2 = self.wf_2(_up_to(self.conv_cross_2(am3), s2) + s2)
        am1 = self.wf_1(_up_to(self.conv_cross_1(am2), s1) + s1)
        logits = _resize(self.Head1(am1), size)
        if not return_all:
            return logits  # eval: Heads 2-4 are not needed, so they are not computed
        sides = (logits, _resize(self.Head2(am2), size), _resize(self.Head3(am3), size),
                 _resize(self.Head4(am4), size))
        return ACLNetOutput(logits, sides, (am1, am2, am3, am4), (s1, s2, s3, s4))


class ACLNetTeacher(ACLNet):
    """ACLNet-T: two backbones (RGB, and depth repeated to 3 channels) fused per stage."""

    is_rgbd = True

    def forward(self, rgb: Tensor, depth: Tensor, *, return_all: bool | None = None) -> Tensor | ACLNetOutput:
        """rgb (B, 3, H, W), depth (B, 1, H, W), H and W divisible by 32 -> logits (B, 1, H, W) in eval mode,
        an :class:`ACLNetOutput` in train mode or with ``return_all=True``."""
        rgb_feats = self.rgb.forward_intermediates(rgb, intermediates_only=True)
        depth_feats = self.depth.forward_intermediates(depth.expand(-1, 3, -1, -1), intermediates_only=True)
        pairs = list(zip(rgb_feats, depth_feats))
        return self._decode(pairs, rgb.shape[-2:], self.training if return_all is None else return_all)


class ACLNetStudent(ACLNet):
    """ACLNet-S: one RGB backbone; each stage is fused with itself so the decoder equals the teacher's.

    It has no depth backbone and its forward takes no depth argument: passing one is a TypeError.
    """

    def forward(self, rgb: Tensor, *, return_all: bool | None = None) -> Tensor | ACLNetOutput:
        """rgb (B, 3, H, W), H and W divisible by 32 -> logits (B, 1, H, W) in eval mode,
        an :class:`ACLNetOutput` in train mode or with ``return_all=True``."""
        pairs = [(feat, feat) for feat in self.rgb.forward_intermediates(rgb, intermediates_only=True)]
        return self._decode(pairs, rgb.shape[-2:], self.training if return_all is None else return_all)


def _resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    # align_corners=True maps corners to corners, so the result depends only on the sizes: this equals the
    # release's nn.Upsample(scale_factor=2/4/8/16/32) whenever H and W are divisible by 32.
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)


def _up_to(x: Tensor, ref: Tensor) -> Tensor:
    return _resize(x, ref.shape[-2:])
