"""Loader throughput: the memory-mapped cache vs decoding the image files every epoch.

Both paths yield what the training loop's DataLoader yields (uint8 items) and do the same work after
getting uint8 arrays (resize to 256, flip + HSV jitter), so the ratio is what the cache saves: file
reads, decoding (BMP, 16-bit TIFF, PNG), depth scaling and GT thresholding. The training loop then runs
`normalize_batch` on its device; the same run also times both paths with that step done here on the CPU.
One run prints the throughputs and their ratios.

    python benchmarks/data_loader.py [--prepared data/prepared/synthetic-rail] [--epochs 3] [--workers 0]

Without --prepared it builds a small synthetic-rail dataset (256 px) in a temporary folder first.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from aclnet_kd.data import SaliencyDataset, normalize_batch, open_prepared
from aclnet_kd.data import images
from aclnet_kd.data.dataset import augment_sample, resize_sample, to_uint8_tensors
from aclnet_kd.data.prepare import PrepareSpec, prepare_dataset

SIZE = 256


class DecodeEveryEpoch(Dataset):
    """The baseline: what a loader without a cache does for every sample of every epoch."""

    def __init__(self, prepared_dir: Path, split: str, seed: int = 0):
        data = open_prepared(prepared_dir)
        root = Path(data.meta["root"])
        self.meta = data.meta
        self.files = [(root / r["rgb_path"], root / r["depth_path"], root / r["gt_path"]) for r in data.rows(split)]
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict:
        rgb_path, depth_path, gt_path = self.files[index]
        rgb = images.decode_rgb(images.read_bytes(rgb_path))
        depth = images.decode_depth(images.read_bytes(depth_path), self.meta["depth_scale"], self.meta["depth_polarity"])
        gt = images.decode_gt(images.read_bytes(gt_path))
        depth8 = np.rint(depth * 255.0).astype(np.uint8)
        rgb, depth8, gt = resize_sample(rgb, depth8, gt, SIZE)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        item = to_uint8_tensors(*augment_sample(rgb, depth8, gt, rng))
        item["index"] = index
        return item


def throughput(dataset, epochs: int, workers: int, normalize: bool, batch_size: int = 6) -> float:
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers, drop_last=True)
    next(iter(loader))   # warm-up: page cache, worker start-up, lazy opening
    count, start = 0, time.perf_counter()
    for epoch in range(epochs):
        dataset.set_epoch(epoch)
        for batch in loader:
            if normalize:
                batch = normalize_batch(batch)
            count += batch["rgb"].shape[0]
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepared", type=Path, help="a prepared dataset (default: build a synthetic one)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers for both paths")
    parser.add_argument("--num-train", type=int, default=120)
    parser.add_argument("--raw-size", type=int, default=SIZE,
                        help="side of the generated raw images (real captures are often larger than 256)")
    args = parser.parse_args()
    # One thread per process, as in DataLoader workers: with intra-op threads, collating a batch on a
    # busy 2-core machine can spin for hundreds of milliseconds and would swamp both measurements.
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = args.prepared
        if prepared is None:
            prepared = Path(tmp) / "prepared"
            spec = PrepareSpec(name="synthetic-rail", source="synthetic-rail", image_size=args.raw_size, cache_size=SIZE,
                               num_train=args.num_train, num_test=6)
            prepare_dataset(spec, prepared, Path(tmp) / "raw")
        results = {}
        for normalize in (False, True):
            cache_set = SaliencyDataset(prepared, "train", SIZE, augment=True, output="uint8")
            results[normalize] = (throughput(cache_set, args.epochs, args.workers, normalize),
                                  throughput(DecodeEveryEpoch(prepared, "train"), args.epochs, args.workers, normalize))
        name = open_prepared(prepared).meta["name"]
    raw = f", raw {args.raw_size}px" if args.prepared is None else ""
    print(f"data loader at {SIZE}x{SIZE} with augmentation, {args.workers} worker(s), {args.epochs} epochs "
          f"({name}{raw}):")
    for normalize, label in ((False, "DataLoader output (uint8 batches)"),
                             (True, "plus normalize_batch on this CPU (the loop runs it on its device)")):
        cached, decoded = results[normalize]
        print(f"  {label}:")
        print(f"    cache (memory-mapped uint8): {cached:8.1f} samples/s")
        print(f"    decode files every epoch:    {decoded:8.1f} samples/s")
        print(f"    ratio cache / decode:        {cached / decoded:8.2f}x")

if __name__ == "__main__":
    main()
