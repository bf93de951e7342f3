"""``build_model``: ACLNet-T or ACLNet-S by name, with its backbone (the package re-exports it)."""

from __future__ import annotations

import os
from typing import Any

from aclnet_kd.constants import DEFAULT_BACKBONES, MODEL_NAMES, TEACHER_MODEL
from aclnet_kd.errors import AclnetError
from aclnet_kd.models.aclnet import ACLNet, ACLNetStudent, ACLNetTeacher, build_backbone

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
