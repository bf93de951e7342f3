"""Models: the Shunted Transformer backbones (registered with timm), ACLNet-T and ACLNet-S, complexity.

    from aclnet_kd.models import build_model, ACLNetOutput
    teacher = build_model("aclnet_t")                     # two Shunted-B, RGB-D
    student = build_model("aclnet_s", backbone="resnet18")  # any timm features_only model works too

Importing this package registers ``shunted_t``, ``shunted_s`` and ``shunted_b`` in timm's registry.
"""

from __future__ import annotations

import os
from typing import Any

from aclnet_kd.constants import DEFAULT_BACKBONES, MODEL_NAMES, TEACHER_MODEL
from aclnet_kd.errors import AclnetError
from aclnet_kd.models.aclnet import ACLNet, ACLNetOutput, ACLNetStudent, ACLNetTeacher, build_backbone
from aclnet_kd.models.loading import load_model_checkpoint
from aclnet_kd.models.shunted import ShuntedTransformer, load_pretrained

__all__ = ["build_model", "MODEL_NAMES", "DEFAULT_BACKBONES", "ACLNet", "ACLNetOutput", "ACLNetTeacher",
           "ACLNetStudent", "ShuntedTransformer", "build_backbone", "load_model_checkpoint", "load_pretrained"]

_CFG_KEYS = ("backbone", "pretrained", "drop_path_rate")


def build_model(name: str, **cfg: Any) -> ACLNet:
    """Build ``aclnet_t`` (RGB-D teacher) or ``aclnet_s`` (RGB student).

    cfg: ``backbone`` (a Shunted variant or a timm model name; default shunted_b / shunted_t),
    ``pretrained`` (local ImageNet weights for the backbone, or None: nothing is ever downloaded; the
    teacher loads the same file into both backbones, as the release does), ``drop_path_rate`` (0.0).
    Unknown names or cfg keys raise :class:`AclnetError`.
    """
    if name not in DEFAULT_BACKBONES:
        raise AclnetError(f"unknown model {name!r}: expected one of {list(MODEL_NAMES)}")
    unknown = sorted(set(cfg) - set(_CFG_KEYS))
    if unknown:
        raise AclnetError(f"model {name!r}: unknown config key(s) {unknown}; allowed: {list(_CFG_KEYS)}")
    backbone = cfg.get("backbone") or DEFAULT_BACKBONES[name]
    pretrained: str | os.PathLike | None = cfg.get("pretrained")
    drop_path_rate = float(cfg.get("drop_path_rate") or 0.0)
    rgb = build_backbone(backbone, drop_path_rate, pretrained)
    if name == TEACHER_MODEL:
        return ACLNetTeacher(rgb, build_backbone(backbone, drop_path_rate, pretrained))
    return ACLNetStudent(rgb)
