"""Speed of `aclnet evaluate`'s scoring: 362 maps at 256 x 256 (NEU RSDDS-AUG's test-set size), every metric.

    python benchmarks/evaluate_speed.py [--images 362] [--size 256] [--workers 2]

Writes synthetic GT / map PNGs to a temp folder, then times reading + resizing + all nine metrics through
the same code path as the CLI (``score_maps``), serial and with ``--workers`` processes. Target: < 5 s on
2 CPU cores. Prints seconds; also checks that the parallel result equals the serial one.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from aclnet_kd.evaluate.evaluate import GtFolder, score_maps


def make_maps(folder: Path, count: int, size: int, seed: int = 0) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    gt_dir, pred_dir = folder / "gt", folder / "pred"
    gt_dir.mkdir()
    pred_dir.mkdir()
    for i in range(count):
        gt = np.zeros((size, size), np.uint8)
        y, x = rng.integers(size // 10, size // 2, 2)
        gt[y:y + rng.integers(size // 10, size // 3), x:x + rng.integers(size // 10, size // 3)] = 255
        pred = cv2.GaussianBlur(gt.astype(np.float32), (31, 31), 8) + rng.normal(0, 20, gt.shape)
        cv2.imwrite(str(gt_dir / f"{i:04d}.png"), gt)
        cv2.imwrite(str(pred_dir / f"{i:04d}.png"), np.clip(pred, 0, 255).astype(np.uint8))
    return gt_dir, pred_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=362)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        gt_dir, pred_dir = make_maps(Path(tmp), args.images, args.size)
        source = GtFolder(gt_dir)
        jobs = [(stem, pred_dir / f"{stem}.png") for stem in source.stems()]
        timings = {}
        results = {}
        for workers in (1, args.workers):
            start = time.perf_counter()
            results[workers] = score_maps(jobs, source, workers=workers).results()
            timings[workers] = time.perf_counter() - start
    assert results[1] == results[args.workers], "parallel result differs from serial"
    print(f"{args.images} maps at {args.size}x{args.size}, all metrics (Sm, MAE, F, E, wF):")
    print(f"  serial:             {timings[1]:.2f} s")
    print(f"  {args.workers} worker processes: {timings[args.workers]:.2f} s  (target < 5 s on 2 cores)")


if __name__ == "__main__":
    main()
