"""Rebuild a trained model from an ``aclnet train`` checkpoint (format: :mod:`aclnet_kd.checkpoint`)."""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from aclnet_kd.errors import AclnetError
from aclnet_kd.io import safe_load
from aclnet_kd.models.build import build_model


def load_model_checkpoint(path: str | os.PathLike) -> tuple[nn.Module, dict[str, Any]]:
    """Build the model a training checkpoint names and load its weights (strict). Returns (model, meta)."""
    ckpt = safe_load(path)
    if isinstance(ckpt, dict) and "state_dict" not in ckpt and (ckpt.get("train_state") or {}).get("finished"):
        raise AclnetError(f"{path}: a finished run's last.pt holds its record, not its weights; "
                          "load the run's best.pt")
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "model_name" not in ckpt:
        if isinstance(ckpt, dict) and ckpt and all(torch.is_tensor(v) for v in ckpt.values()):
            prefixed = " (its keys carry a DataParallel 'module.' prefix, which is stripped)" if all(
                str(k).startswith("module.") for k in ckpt) else ""
            raise AclnetError(
                f"{path}: not an aclnet-kd training checkpoint but a plain state_dict ({len(ckpt)} tensors, e.g. {sorted(ckpt)[:3]}){prefixed}, which "
                f"names no model: pass --arch teacher|student to build the params' models.<arch> entry for it"
            )
        raise AclnetError(
            f"{path}: not an aclnet-kd training checkpoint (expected keys 'model_name', 'model_cfg', "
            f"'state_dict'; found {sorted(ckpt)[:8] if isinstance(ckpt, dict) else type(ckpt).__name__})"
        )
    cfg = dict(ckpt.get("model_cfg") or {})
    cfg["pretrained"] = None  # the checkpoint already holds every weight
    model = build_model(ckpt["model_name"], **cfg)
    result = model.load_state_dict(ckpt["state_dict"], strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise AclnetError(
            f"{path}: weights do not match model {ckpt['model_name']!r}: "
            f"missing {result.missing_keys[:10]}, unexpected {result.unexpected_keys[:10]}"
        )
    return model, dict(ckpt.get("meta") or {})
