"""Distributed helpers: one process per device under ``torchrun``, plain single-process otherwise.

``torchrun --nproc_per_node N aclnet train ...`` sets RANK / LOCAL_RANK / WORLD_SIZE; we then start a
process group (nccl on CUDA, gloo on CPU) and wrap the model in DistributedDataParallel. Only rank 0 writes
files. Each rank keeps its own RNG stream (dropout), so checkpoints store every rank's RNG state.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from aclnet_kd.errors import AclnetError


@dataclass(frozen=True)
class DistInfo:
    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def resolve_device(preference: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error naming the key."""
    if preference == "cpu" or (preference == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise AclnetError("params: 'train.device' is cuda, but torch sees no CUDA device")
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def init_distributed(device_preference: str) -> DistInfo:
    """Start the process group when launched by torchrun (WORLD_SIZE > 1); return this process's place."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_preference, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(rank=rank, local_rank=local_rank, world_size=world_size, device=device)


def shutdown_distributed(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum ``tensor`` over ranks (in place, returned for chaining); a no-op in a single process."""
    if info.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def gather_to_all(tensor: torch.Tensor, info: DistInfo) -> list[torch.Tensor]:
    """Every rank's copy of a same-shaped tensor, in rank order (``[tensor]`` in a single process)."""
    if not info.enabled:
        return [tensor]
    # gloo and nccl gather on the process's own device.
    local = tensor.to(info.device)
    gathered = [torch.empty_like(local) for _ in range(info.world_size)]
    dist.all_gather(gathered, local)
    return [t.cpu() for t in gathered]
