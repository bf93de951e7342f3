"""Helpers shared by the synthetic generators: smooth noise, random blob shapes, writing a raw folder.

Every image is drawn from its own generator seeded by (dataset seed, split, index), so images are
independent of generation order and the same seed gives byte-identical files.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from aclnet_kd.io import staged_dir  # noqa: F401  (the generators' all-or-nothing raw folder)

# Fixed salts so a split's images do not change when another split's count changes.
SPLIT_SALT = {"train": 11, "test": 13, "NJU2K": 17, "NLPR": 19, "STERE": 23}


def sample_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), SPLIT_SALT[split], int(index)])


def smooth_noise(rng: np.random.Generator, height: int, width: int, cells_y: int, cells_x: int) -> np.ndarray:
    """Zero-mean, unit-ish noise that varies smoothly: a (cells_y, cells_x) grid upsampled bicubically."""
    grid = rng.standard_normal((cells_y, cells_x)).astype(np.float32)
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)


def blob_polygon(rng: np.random.Generator, center: tuple[float, float], radius: float,
                 roughness: float = 0.25, aspect: float = 1.0, angle: float = 0.0) -> np.ndarray:
    """Vertices (N,1,2) int32 of an irregular closed blob: an ellipse whose radius wobbles with angle."""
    theta = np.linspace(0, 2 * np.pi, 28, endpoint=False)
    wobble = np.ones_like(theta)
    for harmonic in (2, 3, 5):
        wobble += roughness / harmonic * rng.standard_normal() * np.cos(harmonic * theta + rng.uniform(0, 6.3))
    r = radius * np.clip(wobble, 0.4, 1.8)
    x, y = r * np.cos(theta) * aspect, r * np.sin(theta)
    cos, sin = np.cos(angle), np.sin(angle)
    px, py = center[0] + cos * x - sin * y, center[1] + sin * x + cos * y
    return np.round(np.stack([px, py], axis=1)).astype(np.int32).reshape(-1, 1, 2)


def fill_mask(shape: tuple[int, int], polygons: list[np.ndarray]) -> np.ndarray:
    canvas = np.zeros(shape, np.uint8)
    for polygon in polygons:   # one at a time: fillPoly with several polygons would XOR their overlaps
        cv2.fillPoly(canvas, [polygon], 255, lineType=cv2.LINE_AA)
    return canvas


def soft(mask_u8: np.ndarray, sigma: float) -> np.ndarray:
    """uint8 mask -> float32 [0, 1] with blurred edges."""
    out = mask_u8.astype(np.float32) * (1.0 / 255.0)
    return cv2.GaussianBlur(out, (0, 0), sigma) if sigma > 0 else out


def encode_depth(depth: np.ndarray, polarity: str, bits: int = 16) -> np.ndarray:
    """float [0,1] near = bright -> uint16 (or uint8) in the requested file polarity."""
    depth = np.clip(depth, 0.0, 1.0)
    if polarity == "near_dark":
        depth = 1.0 - depth
    if bits == 8:
        return np.rint(depth * 255.0).astype(np.uint8)
    return np.rint(depth * 65535.0).astype(np.uint16)


def write_split(split_dir: Path, dir_names: tuple[str, str, str], exts: tuple[str, str, str],
                count: int, render: Callable[[int], tuple[np.ndarray, np.ndarray, np.ndarray]],
                prefix: str, workers: int = 2) -> None:
    """Render ``count`` samples and write them as <prefix><index>.<ext> in the three modality folders.

    ``render(i)`` returns (rgb uint8 HWC RGB, depth uint16 HW already in file polarity, gt uint8 HW).
    """
    folders = [split_dir / name for name in dir_names]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)

    def one(index: int) -> None:
        rgb, depth, gt = render(index)
        stem = f"{prefix}{index:04d}"
        jpeg = [cv2.IMWRITE_JPEG_QUALITY, 95]
        for folder, ext, image in zip(folders, exts, (cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), depth, gt)):
            ok = cv2.imwrite(str(folder / f"{stem}{ext}"), image, jpeg if ext == ".jpg" else [])
            if not ok:
                raise OSError(f"cannot write {folder / (stem + ext)}")

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(one, range(count)))
