"""Precision and memory-format helpers: autocast, the fp16 grad scaler, channels_last.

* ``fp32``: plain float32 (the release's way).
* ``bf16``: autocast to bfloat16 on CPU (AVX512-BF16 / AMX) and CUDA; same exponent range as fp32, so no
  loss scaling is needed.
* ``fp16``: autocast to float16, CUDA only, with a GradScaler against gradient underflow.

Parameters and optimizer state stay float32 in every mode; the losses compute in float32 themselves.
"""

from __future__ import annotations

import contextlib

import torch

from aclnet_kd.errors import AclnetError

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str, device: torch.device) -> None:
    if precision == "fp16" and device.type != "cuda":
        raise AclnetError("params: 'train.precision' fp16 needs CUDA; use bf16 or fp32 on the CPU")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise AclnetError("params: 'train.precision' bf16 is not supported by this GPU; use fp16 or fp32")


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The autocast context for forward passes and losses (a no-op for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=_DTYPES[precision])


def make_grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler | None:
    """A GradScaler for fp16 on CUDA; None otherwise (bf16 and fp32 need none)."""
    if precision == "fp16" and device.type == "cuda":
        return torch.amp.GradScaler("cuda")
    return None


def to_memory_format(tensor: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """NCHW images in channels_last layout (which the oneDNN / cuDNN convolutions prefer), or in plain
    contiguous NCHW when ``channels_last`` is off (no-op for tensors already in that layout)."""
    if tensor.dim() != 4:
        return tensor
    return tensor.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
