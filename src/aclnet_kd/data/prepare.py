"""``aclnet prepare``: generate (synthetic) or adapt (real) a dataset, validate it, and build its cache.

    aclnet prepare --params params.yaml [--params preset.yaml] --dataset NAME --out data/prepared/NAME
                   [--raw-out data/raw/NAME] [--preview sheet.png]
    aclnet prepare --layout {rail,sod} --root DIR --out DIR [--cache-size 256 --val-size 20 --seed 0
                   --depth-polarity near_bright --depth-scale auto --size-rule strict --test-sets A,B]

Synthetic sources first write ``data/raw/NAME`` in the real on-disk layout, then take the same path as
real data. Every sample is checked before anything is written to ``--out``; the prepared folder is built
in a temporary folder beside it and renamed into place only when complete (format: dataset.py).
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from aclnet_kd.config import load_params, section
from aclnet_kd.constants import DEPTH_POLARITIES, SYNTHETIC_GENERATORS
from aclnet_kd.data import images
from aclnet_kd.data.layouts import DEFAULT_SOD_TEST_SETS, LAYOUTS, discover
from aclnet_kd.data.prepared import open_prepared
from aclnet_kd.data.preprocess import resize_sample
from aclnet_kd.data.validate import SIZE_RULES, CheckedSample, validate_splits
from aclnet_kd.errors import AclnetError
from aclnet_kd.io import staged_dir

SYNTHETIC_LAYOUT = {"synthetic-rail": "rail", "synthetic-sod": "sod"}
MANIFEST_COLUMNS = ("id", "split", "source_split", "rgb_path", "depth_path", "gt_path", "height", "width",
                    "rgb_sha256", "depth_sha256", "gt_sha256")


@dataclass
class PrepareSpec:
    """Everything ``prepare`` needs to know about one dataset (one ``datasets.NAME`` entry)."""

    name: str
    source: str                      # synthetic-rail | synthetic-sod | rail | sod
    root: str | None = None          # real data folder (synthetic: where the raw copy is written)
    seed: int = 0                    # generator seed and validation-split seed
    val_size: int = 0                # held out of train for model selection
    cache_size: int = 256
    depth_polarity: str = "near_bright"
    depth_scale: str = "auto"
    size_rule: str = "strict"
    test_sets: list[str] = field(default_factory=lambda: list(DEFAULT_SOD_TEST_SETS))
    extra_train: list[str] = field(default_factory=list)  # sod: more train folders under root (DUT-RGBD)
    expected: dict[str, int] | None = None
    # synthetic only
    image_size: int = 256
    num_train: int = 120
    num_test: int = 40

    @property
    def synthetic(self) -> bool:
        return self.source in SYNTHETIC_LAYOUT

    @property
    def layout(self) -> str:
        return SYNTHETIC_LAYOUT.get(self.source, self.source)

    @property
    def test_splits(self) -> list[str]:
        return ["test"] if self.layout == "rail" else list(self.test_sets)

    def check(self, where: str) -> None:
        """Raise an error naming ``where.<key>`` for what the params schema cannot see (cross-field rules),
        and for the direct form's integer options, which no schema checks (choices: argparse)."""
        def bad(key: str, what: str) -> AclnetError:
            return AclnetError(f"{where}.{key}: {what}")
        if not isinstance(self.cache_size, int) or not 16 <= self.cache_size <= 4096:
            raise bad("cache_size", f"must be an integer in [16, 4096], got {self.cache_size!r}")
        for key in ("val_size", "seed"):
            if not isinstance(getattr(self, key), int) or getattr(self, key) < 0:
                raise bad(key, f"must be a non-negative integer, got {getattr(self, key)!r}")
        if self.synthetic and self.num_train <= self.val_size:
            raise bad("num_train", f"{self.num_train} leaves nothing to train on after val_size {self.val_size}")
        if self.layout == "sod" and (not self.test_sets or len(set(self.test_sets)) != len(self.test_sets)
                                     or {"train", "val"} & set(self.test_sets)):
            raise bad("test_sets", f"needs distinct names other than train/val, got {self.test_sets!r}")
        if self.extra_train and (self.layout != "sod" or self.synthetic):
            raise bad("extra_train", f"is for a real 'sod' dataset (folders under its root), not {self.source!r}")
        # the schema checks the strings; that they stay under root is a rule it cannot express
        if not all(p and not Path(p).is_absolute() and ".." not in Path(p).parts for p in self.extra_train):
            raise bad("extra_train", f"must list folders relative to root, got {self.extra_train!r}")


def spec_from_params(params: dict, name: str) -> PrepareSpec:
    """The ``datasets.<name>`` entry of the params as a checked :class:`PrepareSpec`."""
    entry = section(params, f"datasets.{name}")  # keys and types: checked when the params were loaded
    where = f"datasets.{name}"
    values = {k: v for k, v in entry.items() if v is not None or k == "root"}
    for key in ("test_sets", "extra_train"):
        if key in values:
            values[key] = list(values[key])
    if values.get("source") == "synthetic-sod" and "test_sets" in values \
            and values["test_sets"] != list(DEFAULT_SOD_TEST_SETS):
        raise AclnetError(f"{where}.test_sets: the synthetic SOD generator writes {', '.join(DEFAULT_SOD_TEST_SETS)}")
    spec = PrepareSpec(name=name, **values)
    spec.check(where)
    return spec


# ---- the work ----

def generate_raw(spec: PrepareSpec, raw_out: Path, workers: int = 2) -> Path:
    """Write a synthetic source's raw images in the real layout (no-op for real data)."""
    if spec.source not in SYNTHETIC_GENERATORS:
        raise ValueError(f"{spec.source} is not synthetic")
    # loaded by name: the workflow makes each prepare job depend on its own source's generator only
    module, _, function = SYNTHETIC_GENERATORS[spec.source].partition(":")
    generator = getattr(importlib.import_module(module), function)
    return generator(raw_out, seed=spec.seed, image_size=spec.image_size, num_train=spec.num_train,
                     num_test=spec.num_test, depth_polarity=spec.depth_polarity, workers=workers)


def hold_out_val(train: list[CheckedSample], val_size: int, seed: int) -> tuple[list, list]:
    """Seeded choice of ``val_size`` training samples; both lists keep the stem order."""
    chosen = set(np.random.default_rng([int(seed), 7]).choice(len(train), size=val_size, replace=False).tolist())
    return ([s for i, s in enumerate(train) if i not in chosen], [s for i, s in enumerate(train) if i in chosen])


def _load_for_cache(sample: CheckedSample, spec: PrepareSpec
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Decode one sample into cache arrays (uint8, cache_size) plus its binary GT at the original size."""
    files = sample.files
    rgb = images.decode_rgb(images.read_bytes(files.rgb))
    depth = images.decode_depth(images.read_bytes(files.depth), spec.depth_scale, spec.depth_polarity)
    gt = images.decode_gt(images.read_bytes(files.gt))
    depth8 = np.rint(depth * 255.0).astype(np.uint8)
    height, width = gt.shape
    if rgb.shape[:2] != gt.shape:     # only reachable with size_rule "resize": bring RGB/depth to the GT
        rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)
    if depth8.shape != gt.shape:
        depth8 = cv2.resize(depth8, (width, height), interpolation=cv2.INTER_NEAREST)
    return (*resize_sample(rgb, depth8, gt, spec.cache_size), gt)


def write_prepared(spec: PrepareSpec, splits: dict[str, list[CheckedSample]], root: Path, out_dir: Path,
                   workers: int = 2) -> dict:
    """Write meta.json, manifest.csv, cache/ and gt/ into ``out_dir`` (a fresh folder). Returns the meta."""
    size = spec.cache_size
    manifest = []
    for split, samples in splits.items():
        count = len(samples)
        cache = out_dir / "cache" / split
        gt_dir = out_dir / "gt" / split
        cache.mkdir(parents=True)
        gt_dir.mkdir(parents=True)
        rgb_a = np.lib.format.open_memmap(cache / "rgb.npy", "w+", np.uint8, (count, size, size, 3))
        depth_a = np.lib.format.open_memmap(cache / "depth.npy", "w+", np.uint8, (count, size, size))
        gt_a = np.lib.format.open_memmap(cache / "gt.npy", "w+", np.uint8, (count, size, size))

        def fill(index: int) -> None:
            sample = samples[index]
            rgb_a[index], depth_a[index], gt_a[index], gt_full = _load_for_cache(sample, spec)
            (gt_dir / f"{sample.files.id}.png").write_bytes(images.encode_png(gt_full))

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            list(pool.map(fill, range(count)))
        for array in (rgb_a, depth_a, gt_a):
            array.flush()
        del rgb_a, depth_a, gt_a
        for sample in samples:
            f = sample.files
            manifest.append({"id": f.id, "split": split, "source_split": f.split,
                             "rgb_path": f.rgb.relative_to(root).as_posix(),
                             "depth_path": f.depth.relative_to(root).as_posix(),
                             "gt_path": f.gt.relative_to(root).as_posix(),
                             "height": sample.height, "width": sample.width, "rgb_sha256": sample.rgb_sha256,
                             "depth_sha256": sample.depth_sha256, "gt_sha256": sample.gt_sha256})
    with (out_dir / "manifest.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        writer.writerows(manifest)
    meta = {
        "name": spec.name, "source": spec.source, "layout": spec.layout, "synthetic": spec.synthetic,
        "splits": {split: len(samples) for split, samples in splits.items()},
        "test_splits": spec.test_splits, "cache_size": size,
        "depth_polarity": spec.depth_polarity,   # of the source files; the cache is always near = bright
        "cache_depth": "near_bright", "depth_scale": spec.depth_scale, "size_rule": spec.size_rule,
        "val_size": spec.val_size, "seed": spec.seed, "root": str(root), "extra_train": list(spec.extra_train),
        "resize": "rgb bilinear, depth and gt nearest", "gt_threshold": 128,
    }
    # Usable but worth a look: a constant depth map gives the teacher nothing; a greyscale RGB file is common.
    samples = [s for split_samples in splits.values() for s in split_samples]
    meta["flat_depth"] = [s.files.depth.relative_to(root).as_posix() for s in samples if s.flat_depth]
    meta["grey_rgb"] = sum(s.grey_rgb for s in samples)
    if spec.synthetic:
        meta["generator"] = {"image_size": spec.image_size, "num_train": spec.num_train, "num_test": spec.num_test}
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def prepare_dataset(spec: PrepareSpec, out_dir: str | Path, raw_out: str | Path | None = None,
                    workers: int = 2) -> dict:
    """Generate (synthetic), discover, validate, split and cache one dataset into ``out_dir``.

    Nothing is written to ``out_dir`` unless every check passes; an older ``out_dir`` is replaced only
    once the new one is complete.
    """
    out_dir = Path(out_dir)
    if spec.synthetic:
        root = generate_raw(spec, Path(raw_out or Path("data/raw") / spec.name), workers)
    else:
        root = Path(spec.root)
    found, problems = discover(spec.layout, root, tuple(spec.test_sets), tuple(spec.extra_train))
    checked = validate_splits(found, depth_scale=spec.depth_scale, size_rule=spec.size_rule,
                              expected=spec.expected, prior_problems=problems, context=str(root), workers=workers)
    if spec.val_size >= len(checked["train"]):
        raise AclnetError(f"val_size {spec.val_size} leaves no training samples ({root}/train has "
                          f"{len(checked['train'])})")
    train, val = hold_out_val(checked["train"], spec.val_size, spec.seed)
    splits = {"train": train}
    if val:
        splits["val"] = val
    splits.update({name: checked[name] for name in spec.test_splits})
    with staged_dir(out_dir) as tmp:
        meta = write_prepared(spec, splits, root, tmp, workers)
    return meta


# ---- CLI ----

MAX_WARNED = 20   # flat depth maps named one per line; meta.json lists them all
DIRECT_OPTIONS = ("cache_size", "val_size", "seed", "depth_polarity", "depth_scale", "size_rule", "test_sets")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", action="append", default=[], metavar="YAML",
                        help="params file(s), later ones merged over earlier ones")
    parser.add_argument("--dataset", help="name of the datasets.<NAME> entry in the params")
    parser.add_argument("--out", required=True, help="prepared folder to write (e.g. data/prepared/NAME)")
    parser.add_argument("--raw-out", help="where a synthetic source writes its raw images (default data/raw/NAME)")
    parser.add_argument("--preview", metavar="PNG", help="also write a contact sheet of a few samples")
    parser.add_argument("--workers", type=int, default=2, help="threads for decoding (default 2)")
    direct = parser.add_argument_group("direct form (no params file)")
    direct.add_argument("--layout", choices=LAYOUTS, help="on-disk layout of --root (see docs/data.md)")
    direct.add_argument("--root", help="dataset folder")
    direct.add_argument("--name", help="dataset name in meta.json (default: the --out folder's name)")
    direct.add_argument("--cache-size", type=int, help="side of the cached images (default 256)")
    direct.add_argument("--val-size", type=int, help="samples held out of train for validation (default 0)")
    direct.add_argument("--seed", type=int, help="seed of the validation split (default 0)")
    direct.add_argument("--depth-polarity", choices=DEPTH_POLARITIES, help="default near_bright")
    direct.add_argument("--depth-scale", choices=images.DEPTH_SCALES, help="default auto")
    direct.add_argument("--size-rule", choices=SIZE_RULES, help="default strict")
    direct.add_argument("--test-sets", help="sod layout: comma-separated test-set folders (default NJU2K,NLPR,STERE)")


def spec_from_args(args: argparse.Namespace) -> PrepareSpec:
    if args.params:
        given = [f"--{key.replace('_', '-')}" for key in DIRECT_OPTIONS if getattr(args, key) is not None]
        if args.layout or args.root or given:
            raise AclnetError(f"{', '.join(given + (['--layout/--root'] if args.layout or args.root else []))}: "
                              "direct-form options cannot be mixed with --params; set them in datasets.<NAME>")
        if not args.dataset:
            raise AclnetError("--dataset is required with --params")
        return spec_from_params(load_params(args.params), args.dataset)
    if not args.layout or not args.root:
        raise AclnetError("give either --params and --dataset, or --layout and --root")
    values = {key: getattr(args, key) for key in DIRECT_OPTIONS if getattr(args, key) is not None}
    if "test_sets" in values:
        values["test_sets"] = [s.strip() for s in values["test_sets"].split(",") if s.strip()]
    spec = PrepareSpec(name=args.name or Path(args.out).name, source=args.layout, root=args.root, **values)
    spec.check("option")
    return spec


def main(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    meta = prepare_dataset(spec, args.out, args.raw_out, workers=args.workers)
    counts = ", ".join(f"{split} {count}" for split, count in meta["splits"].items())
    label = " (SYNTHETIC)" if meta["synthetic"] else ""
    print(f"prepared {meta['name']}{label} -> {args.out}: {counts}; cache {meta['cache_size']}px; "
          f"flat depth maps: {len(meta['flat_depth'])}, greyscale RGB files: {meta['grey_rgb']}")
    for path in meta["flat_depth"][:MAX_WARNED]:
        print(f"warning: {Path(meta['root']) / path}: depth map is constant (one value everywhere); the "
              "teacher gets no depth cue from this sample", file=sys.stderr)
    if len(meta["flat_depth"]) > MAX_WARNED:
        print(f"warning: ... and {len(meta['flat_depth']) - MAX_WARNED} more flat depth maps (meta.json: "
              "flat_depth lists them all)", file=sys.stderr)
    if args.preview:
        from aclnet_kd.data.preview import write_contact_sheet
        write_contact_sheet(open_prepared(args.out), args.preview)
        print(f"preview -> {args.preview}")
    return 0
