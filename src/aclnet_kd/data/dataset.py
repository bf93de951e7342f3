"""The torch datasets over a prepared folder (``SaliencyDataset``, ``TrainingSet``) and their augmentation.

The folder itself (layout, ``open_prepared``, ``PreparedData``) is read by the torch-free prepared.py.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset

from aclnet_kd.data.prepared import PreparedData, open_prepared
from aclnet_kd.data.preprocess import IMAGENET_MEAN, IMAGENET_STD, normalize_arrays, resize_sample
from aclnet_kd.errors import AclnetError


# HSV jitter of the public NEU RSDDS-AUG loaders (facts.md §4): hue and saturation x[0.9, 1.1],
# value +-25 on the 0-255 scale; horizontal flip with p = 0.5.
HUE_SCALE = (0.9, 1.1)
SAT_SCALE = (0.9, 1.1)
VALUE_SHIFT = 25
FLIP_PROB = 0.5


# ---- preprocessing: pure numpy/cv2 functions on uint8 HWC arrays (resize and normalisation: preprocess.py) ----

def hsv_jitter(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Scale hue and saturation by U(0.9, 1.1), shift value by U(-25, 25); one LUT pass in HSV."""
    hue, sat = rng.uniform(*HUE_SCALE), rng.uniform(*SAT_SCALE)
    shift = rng.uniform(-VALUE_SHIFT, VALUE_SHIFT)
    levels = np.arange(256, dtype=np.float32)
    lut = np.stack([np.mod(np.rint(levels * hue), 180),  # OpenCV hue is 0..179 and circular
                    np.clip(np.rint(levels * sat), 0, 255),
                    np.clip(np.rint(levels + shift), 0, 255)], axis=1).astype(np.uint8)
    hsv = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2HSV)
    hsv = cv2.LUT(hsv, lut.reshape(1, 256, 3))
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def augment_sample(rgb: np.ndarray, depth: np.ndarray, gt: np.ndarray, rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Horizontal flip (p = 0.5, all three together), then HSV jitter on RGB only."""
    if rng.random() < FLIP_PROB:   # cv2.flip returns contiguous copies (a [:, ::-1] view would be copied later anyway)
        rgb, depth, gt = cv2.flip(rgb, 1), cv2.flip(depth, 1), cv2.flip(gt, 1)
    return hsv_jitter(rgb, rng), depth, gt


def to_tensors(rgb: np.ndarray, depth: np.ndarray, gt: np.ndarray) -> dict[str, torch.Tensor]:
    """uint8 -> float32 CHW tensors (:func:`aclnet_kd.data.preprocess.normalize_arrays`)."""
    rgb_f, depth_f, gt_f = normalize_arrays(rgb, depth, gt)
    return {"rgb": torch.from_numpy(rgb_f), "depth": torch.from_numpy(depth_f), "gt": torch.from_numpy(gt_f)}


def to_uint8_tensors(rgb: np.ndarray, depth: np.ndarray, gt: np.ndarray) -> dict[str, torch.Tensor]:
    """uint8 tensors as they are (RGB HWC, depth HW, GT HW): a quarter of float32's bytes to copy and collate.
    :func:`normalize_batch` turns a collated batch of them into the float contract on the training device."""
    def owned(array: np.ndarray) -> torch.Tensor:
        # An unaugmented array may still be a read-only view of the memory-mapped cache: copy it, so
        # that no tensor aliases the cache.
        if not array.flags.writeable or not array.flags.c_contiguous:
            array = np.array(array, order="C")
        return torch.from_numpy(array)

    return {"rgb": owned(rgb), "depth": owned(depth), "gt": owned(gt)}


# (x / 255 - mean) / std as one fused multiply-add: x * _RGB_SCALE + _RGB_SHIFT.
_RGB_SCALE = torch.from_numpy(1.0 / (255.0 * IMAGENET_STD)).float().view(1, 3, 1, 1)
_RGB_SHIFT = torch.from_numpy(-IMAGENET_MEAN / IMAGENET_STD).float().view(1, 3, 1, 1)


def normalize_batch(batch: dict, device: torch.device | str = "cpu") -> dict:
    """A collated ``output="uint8"`` batch -> the float32 tensors of ``output="float"``, on ``device``.

    Done once per batch on the device (the usual GPU-prefetcher pattern), it takes the float conversion
    out of the loader. RGB comes out (B,3,S,S) in channels_last memory layout; values agree with
    :func:`to_tensors` to float32 round-off (one fused multiply-add instead of its lookup table).
    """
    out = dict(batch)
    rgb = batch["rgb"].to(device, non_blocking=True).permute(0, 3, 1, 2).float()  # NHWC memory = channels_last
    out["rgb"] = torch.addcmul(_RGB_SHIFT.to(device), rgb, _RGB_SCALE.to(device))
    out["depth"] = batch["depth"].to(device, non_blocking=True).unsqueeze(1).float() / 255.0
    out["gt"] = (batch["gt"].to(device, non_blocking=True).unsqueeze(1) > 127).float()
    return out


class SaliencyDataset(Dataset):
    """One split of a prepared dataset as training/evaluation samples.

    Each item is ``{'rgb': (3,S,S), 'depth': (1,S,S), 'gt': (1,S,S), 'index': int}`` (float32 tensors;
    RGB ImageNet-normalised, depth in [0, 1] near = bright, GT in {0, 1}), S = ``image_size``. With
    ``output="uint8"`` the items hold the augmented uint8 arrays instead (RGB (S,S,3), depth and GT (S,S))
    and :func:`normalize_batch` makes the same float tensors from a collated batch: the training loader
    uses it, because the float conversion and the 4x larger collation otherwise dominate the loader.

    Augmentation draws from a generator seeded by (seed, epoch, index). Every sample therefore gets
    its own stream, the same seed gives the same batches, and the result does not depend on which
    DataLoader worker loads the sample or on how many workers there are. Call ``set_epoch(e)`` before
    each epoch (with ``persistent_workers=False``, the default, workers pick up the new epoch).
    """

    def __init__(self, prepared_dir: str | Path, split: str, image_size: int | None = None,
                 augment: bool = False, seed: int = 0, output: str = "float", stream: int = 0):
        if output not in ("float", "uint8"):
            raise AclnetError(f"SaliencyDataset output must be 'float' or 'uint8', got {output!r}")
        self.output = output
        self.prepared_dir = Path(prepared_dir)
        self.split = split
        data = open_prepared(self.prepared_dir)
        self.ids = data.ids(split)
        self.cache_size = int(data.meta["cache_size"])
        self.image_size = int(image_size or self.cache_size)
        if self.image_size < 8:
            raise AclnetError(f"image_size must be >= 8, got {self.image_size}")
        self.augment = augment
        self.seed = int(seed)
        self.stream = int(stream)  # tells apart the splits of one training set (see TrainingSet)
        self.epoch = 0
        self._data: PreparedData | None = data

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.ids)

    def __getstate__(self) -> dict:
        # Memory maps must not be pickled into workers (that would copy the arrays); reopen there.
        state = self.__dict__.copy()
        state["_data"] = None
        return state

    def raw(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The cached uint8 arrays of one sample (RGB HWC, depth HW, GT HW), before any processing."""
        if self._data is None:
            self._data = open_prepared(self.prepared_dir)
        arrays = self._data.arrays(self.split)
        return arrays["rgb"][index], arrays["depth"][index], arrays["gt"][index]

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self.ids):
            raise IndexError(index)
        rgb, depth, gt = resize_sample(*self.raw(index), self.image_size)
        if self.augment:
            rng = np.random.default_rng([self.seed, self.epoch, index] + ([self.stream] if self.stream else []))
            rgb, depth, gt = augment_sample(rgb, depth, gt, rng)
        item = to_uint8_tensors(rgb, depth, gt) if self.output == "uint8" else to_tensors(rgb, depth, gt)
        item["index"] = index
        return item


class TrainingSet(ConcatDataset):
    """Several splits of a prepared dataset as one augmented training set (``paper`` selection trains on
    train + val, as the release trained on every train image). Split k draws its augmentation from stream k,
    so sample i of two splits does not get the same flips and jitter; split 0 is exactly
    ``SaliencyDataset(split)``."""

    def __init__(self, prepared_dir: str | Path, splits: list[str], image_size: int, seed: int,
                 output: str = "uint8") -> None:
        super().__init__([SaliencyDataset(prepared_dir, split, image_size, augment=True, seed=seed, output=output,
                                          stream=k) for k, split in enumerate(splits)])
        self.splits = list(splits)

    def set_epoch(self, epoch: int) -> None:
        for dataset in self.datasets:
            dataset.set_epoch(epoch)
