"""A prepared dataset on disk, opened without torch: ``open_prepared`` and ``PreparedData``.

A prepared folder (written by ``aclnet prepare``) holds::

    meta.json      name, source, layout, synthetic, splits {split: count}, test_splits, cache_size, ...
    manifest.csv   id, split, source paths, original height/width, sha256 of each source file
    cache/<split>/rgb.npy (N,S,S,3)  depth.npy (N,S,S)  gt.npy (N,S,S)   uint8, S = cache_size
    gt/<split>/<id>.png                                                  binary GT at its original size

The cache is memory-mapped, so epochs never decode image files. Depth is stored near = bright and GT as
{0, 255}, whatever the source files used. Torch-free, so `aclnet evaluate` and the figures start without it
(the torch datasets over these arrays are in dataset.py).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from aclnet_kd.errors import AclnetError

MODALITIES = ("rgb", "depth", "gt")
REQUIRED_META = ("name", "source", "layout", "synthetic", "splits", "test_splits", "cache_size", "depth_polarity")


@dataclass
class PreparedData:
    """An opened prepared folder. Cache arrays are memory-mapped on first use."""

    root: Path
    meta: dict
    manifest: list[dict]
    _arrays: dict = field(default_factory=dict, repr=False)

    @property
    def splits(self) -> list[str]:
        return list(self.meta["splits"])

    @property
    def test_splits(self) -> list[str]:
        return list(self.meta["test_splits"])

    def _check_split(self, split: str) -> None:
        if split not in self.meta["splits"]:
            raise AclnetError(f"{self.root}: no split '{split}' (has {', '.join(self.meta['splits'])})")

    def ids(self, split: str) -> list[str]:
        """Sample ids of a split, in cache order."""
        self._check_split(split)
        return [row["id"] for row in self.manifest if row["split"] == split]

    def rows(self, split: str) -> list[dict]:
        self._check_split(split)
        return [row for row in self.manifest if row["split"] == split]

    def arrays(self, split: str) -> dict[str, np.ndarray]:
        """{'rgb': (N,S,S,3), 'depth': (N,S,S), 'gt': (N,S,S)} uint8, memory-mapped read-only."""
        self._check_split(split)
        if split not in self._arrays:
            loaded = {}
            for kind in MODALITIES:
                path = self.root / "cache" / split / f"{kind}.npy"
                try:
                    loaded[kind] = np.load(path, mmap_mode="r")
                except (OSError, ValueError) as err:
                    raise AclnetError(f"{path}: cannot open cache array ({err})") from None
            count = self.meta["splits"][split]
            for kind, array in loaded.items():
                if array.shape[0] != count or array.dtype != np.uint8:
                    raise AclnetError(f"{self.root / 'cache' / split / kind}.npy: shape {array.shape} "
                                      f"{array.dtype}, meta.json says {count} uint8 samples")
            self._arrays[split] = loaded
        return self._arrays[split]

    def gt_original(self, split: str, sample_id: str) -> np.ndarray:
        """The binary GT (uint8 {0, 255}, H x W) at the source image's original size."""
        self._check_split(split)
        path = self.root / "gt" / split / f"{sample_id}.png"
        gt = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if gt is None:
            raise AclnetError(f"{path}: original-size GT missing or unreadable")
        return gt


def open_prepared(path: str | Path) -> PreparedData:
    """Open a folder written by ``aclnet prepare``; errors name the file that is missing or wrong."""
    root = Path(path)
    meta_path, manifest_path = root / "meta.json", root / "manifest.csv"
    if not meta_path.is_file():
        raise AclnetError(f"{meta_path}: not found (is {root} a prepared dataset? run `aclnet prepare`)")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as err:
        raise AclnetError(f"{meta_path}: not valid JSON ({err})") from None
    missing = [key for key in REQUIRED_META if key not in meta]
    if missing:
        raise AclnetError(f"{meta_path}: missing key(s) {', '.join(missing)}")
    if not manifest_path.is_file():
        raise AclnetError(f"{manifest_path}: not found")
    with manifest_path.open(newline="") as handle:
        manifest = list(csv.DictReader(handle))
    for split, count in meta["splits"].items():
        found = sum(row["split"] == split for row in manifest)
        if found != count:
            raise AclnetError(f"{manifest_path}: {found} rows for split '{split}', meta.json says {count}")
    return PreparedData(root, meta, manifest)
