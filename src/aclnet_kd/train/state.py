"""Resumable state: RNG snapshots as plain tensors, and a sampler that can start in the middle of an epoch.

A checkpoint must load with ``torch.load(weights_only=True)``, which accepts tensors, numbers, strings,
lists and dicts only. So the RNG states of torch, numpy and Python are packed into tensors here; and the
loader's position is two integers (epoch, batches done), because the sampler's order is a pure function of
(seed, epoch).
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler

# ---------------------------------------------------------------------------------------------- RNG state


def _pack_numpy_state() -> torch.Tensor:
    kind, keys, pos, has_gauss, cached_gauss = np.random.get_state()
    assert kind == "MT19937"
    # uint32 keys are exact in float64 (53-bit mantissa); so are pos and the cached gaussian.
    return torch.tensor([*keys.tolist(), pos, has_gauss, cached_gauss], dtype=torch.float64)


def _unpack_numpy_state(packed: torch.Tensor) -> None:
    values = packed.tolist()
    keys = np.array(values[:624], dtype=np.uint32)
    np.random.set_state(("MT19937", keys, int(values[624]), int(values[625]), float(values[626])))


def _pack_python_state() -> torch.Tensor:
    version, internal, gauss_next = random.getstate()
    # 625 uint32 words (624 + position), exact in float64; NaN stands for "no cached gaussian".
    return torch.tensor([version, *internal, float("nan") if gauss_next is None else gauss_next],
                        dtype=torch.float64)


def _unpack_python_state(packed: torch.Tensor) -> None:
    values = packed.tolist()
    gauss_next = None if np.isnan(values[-1]) else values[-1]
    random.setstate((int(values[0]), tuple(int(v) for v in values[1:-1]), gauss_next))


def capture_rng() -> dict[str, torch.Tensor]:
    """This process's RNG states (torch CPU, CUDA if used, numpy, python), each a single tensor."""
    state = {
        "torch": torch.get_rng_state(),
        "numpy": _pack_numpy_state(),
        "python": _pack_python_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore_rng(state: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(state["torch"])
    _unpack_numpy_state(state["numpy"])
    _unpack_python_state(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


# ----------------------------------------------------------------------------------------------- sampler


class ResumableSampler(Sampler[int]):
    """Shuffled training indices for one rank, epoch by epoch, that can start at any batch.

    The epoch's order is ``randperm(n)`` from a generator seeded with ``seed + epoch`` (independent of the
    global RNG, of the number of ranks and of the loader's workers). It is cut into ``n // batch_size``
    global batches (drop_last, as the release); rank ``r`` of ``W`` takes the r-th slice of
    ``batch_size / W`` indices of each global batch, so the ranks together see exactly the batches that a
    single process would. ``start_batch`` skips batches already trained when resuming mid-epoch.
    """

    def __init__(self, num_samples: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        if batch_size % world_size:
            raise ValueError(f"global batch {batch_size} is not divisible by the world size {world_size}")
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.local_batch = batch_size // world_size
        self.seed = seed
        self.rank = rank
        self.epoch = 0
        self.start_batch = 0

    @property
    def batches_per_epoch(self) -> int:
        return self.num_samples // self.batch_size

    def set_position(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.num_samples, generator=generator).tolist()
        for batch in range(self.start_batch, self.batches_per_epoch):
            first = batch * self.batch_size + self.rank * self.local_batch
            yield from order[first:first + self.local_batch]

    def __len__(self) -> int:
        return (self.batches_per_epoch - self.start_batch) * self.local_batch
