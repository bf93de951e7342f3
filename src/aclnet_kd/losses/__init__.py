"""losses stage: the label loss and the distillation losses of ACLNet-KD (see docs/losses.md)."""

from .atd import ATD, attention_map, attention_transfer_loss
from .cld import CLD, grace_info_nce
from .distillation import KD_TERMS, DistillationLoss
from .label import LabelLoss
from .mgmd import MGMD, BranchGraphs, soft_dice_loss

__all__ = [
    "ATD",
    "CLD",
    "KD_TERMS",
    "MGMD",
    "BranchGraphs",
    "DistillationLoss",
    "LabelLoss",
    "attention_map",
    "attention_transfer_loss",
    "grace_info_nce",
    "soft_dice_loss",
]
