"""Numerical helpers shared by the losses: float32 islands inside autocast regions."""

from __future__ import annotations

import torch
from torch import Tensor


def float32_region(like: Tensor) -> torch.autocast:
    """A context in which autocast is off on ``like``'s device, so reductions run in float32.

    Under ``torch.autocast(..., dtype=torch.bfloat16)`` a matmul of float32 tensors is silently
    recast to bf16 (8 bits of mantissa); cosine similarities, exp/log and dice sums are too
    sensitive for that. Inside this context the tensors we ``.float()`` stay float32.
    """
    return torch.autocast(device_type=like.device.type, enabled=False)


def upcast(t: Tensor) -> Tensor:
    """``t`` in float32 at least: half/bf16 is cast up, float32/float64 pass through (gradcheck)."""
    return t if t.dtype in (torch.float32, torch.float64) else t.float()
