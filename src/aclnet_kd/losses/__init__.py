"""losses stage: the label loss and the distillation losses of ACLNet-KD (see docs/losses.md).

The names below load on first use (PEP 562), so ``aclnet_kd.losses.registry`` (the loss names, which the
config and the report read) imports without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from .registry import KD_TERMS, REGISTRY, WEIGHT_KEYS, KDTerm

_LAZY = {
    "ATD": "atd", "attention_map": "atd", "attention_transfer_loss": "atd",
    "CLD": "cld", "grace_info_nce": "cld",
    "DistillationLoss": "distillation",
    "LabelLoss": "label",
    "MGMD": "mgmd", "BranchGraphs": "mgmd", "soft_dice_loss": "mgmd",
}

__all__ = ["KD_TERMS", "REGISTRY", "WEIGHT_KEYS", "KDTerm", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
