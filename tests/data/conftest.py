"""Fixtures for the data stage: hand-made folders in the real layouts, and a small prepared dataset."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from aclnet_kd.data.prepare import PrepareSpec, prepare_dataset


def write_image(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image), path
    return path


def sample_arrays(index: int, height: int = 30, width: int = 40, bits: int = 8):
    """RGB/depth/GT whose content encodes ``index``, so a mispairing is detectable after preparation."""
    rgb = np.full((height, width, 3), (10 * index) % 250, np.uint8)
    top = max(index, 10) // 2
    dvalue = 20 + 10 * index
    depth = np.full((height, width), dvalue * (257 if bits == 16 else 1), np.uint16 if bits == 16 else np.uint8)
    depth[0, 0] = 0                                              # keeps 16-bit min-max scaling meaningful
    depth[-1, -1] = 65535 if bits == 16 else 255
    gt = np.zeros((height, width), np.uint8)
    gt[top % (height - 4): top % (height - 4) + 3, 2:2 + index + 1] = 255   # stripe of width index+1
    return rgb, depth, gt


def make_rail_folder(root: Path, stems: dict[str, list[str]], bits: int = 16) -> Path:
    """``root/{train,test}/{rgb,d,gt}`` with .bmp / .tiff / .png files named by the given stems."""
    for split, names in stems.items():
        for index, stem in enumerate(names):
            rgb, depth, gt = sample_arrays(index, bits=bits)
            write_image(root / split / "rgb" / f"{stem}.bmp", rgb)
            write_image(root / split / "d" / f"{stem}.tiff", depth)
            write_image(root / split / "gt" / f"{stem}.png", gt)
    return root


def make_sod_folder(root: Path, train: list[str], test_sets: dict[str, list[str]]) -> Path:
    """``root/train/{RGB,depth,GT}`` and ``root/test/<SET>/{RGB,depth,GT}`` (.jpg / 8-bit .png / .png)."""
    dirs = [(root / "train", train)] + [(root / "test" / name, stems) for name, stems in test_sets.items()]
    for split_dir, stems in dirs:
        for index, stem in enumerate(stems):
            rgb, depth, gt = sample_arrays(index)
            write_image(split_dir / "RGB" / f"{stem}.jpg", rgb)
            write_image(split_dir / "depth" / f"{stem}.png", depth)
            write_image(split_dir / "GT" / f"{stem}.png", gt)
    return root


@pytest.fixture(scope="session")
def prepared_rail(tmp_path_factory) -> Path:
    """A small synthetic-rail dataset (64 px cache), prepared once for the loader tests."""
    base = tmp_path_factory.mktemp("rail")
    spec = PrepareSpec(name="synthetic-rail", source="synthetic-rail", seed=0, val_size=4, cache_size=64,
                       image_size=96, num_train=16, num_test=6)
    prepare_dataset(spec, base / "prepared", base / "raw")
    return base / "prepared"


class _RealFolders:
    """Helpers to build hand-made dataset folders (a fixture, so test modules need no imports)."""

    write_image = staticmethod(write_image)
    sample_arrays = staticmethod(sample_arrays)
    rail = staticmethod(make_rail_folder)
    sod = staticmethod(make_sod_folder)


@pytest.fixture
def folders() -> _RealFolders:
    return _RealFolders()
