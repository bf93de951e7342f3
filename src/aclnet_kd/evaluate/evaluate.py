"""``aclnet evaluate``: score a folder of saliency maps against ground truth with PySODMetrics.

    aclnet evaluate --pred DIR --gt data/prepared/NAME --split test \
        --out metrics.json --curves curves.csv --per-image per_image.csv [--workers 2]
    aclnet evaluate --pred DIR --gt-dir GT_FOLDER ...        # fully external: plain GT PNGs

The maps may come from ``aclnet predict`` or from anywhere else (a competitor's published maps, the
authors' released maps): one file per GT image, named by the GT's stem. Each map is compared at the GT's
original size; a map of another size is resized bilinearly to it (the GT is never resized).

Outputs (written all-or-nothing):
* ``metrics.json``: flat ``{Sm, MAE, maxF, meanF, adpF, maxE, meanE, adpE, wF}``, with ``--run-record`` the
  binary masks' scores at the run's operating point (``op_*``, ``evaluate/binary_metrics.py``), then
  ``provenance`` (code, packages, machine: aclnet_kd.provenance);
* ``curves.csv``: threshold, precision, recall, fmeasure, emeasure (dataset means, 256 thresholds);
* ``per_image.csv``: stem and the nine metrics of each image (max/mean over that image's own curve).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from aclnet_kd import provenance
from aclnet_kd.errors import AclnetError
from aclnet_kd.evaluate.io import list_images, read_gray_map
from aclnet_kd.evaluate.metrics import METRIC_KEYS, SODMetrics
from aclnet_kd.io import atomic_write_texts

# A map whose aspect ratio differs from its GT's by more than this factor is not the same picture
# (a network-size square map of a 4:3 GT is fine; a 1:4 strip is not).
MAX_ASPECT_CHANGE = 2.0


# ---------------------------------------------------------------------------------------------------
# Ground-truth sources (picklable, so worker processes can load their own GT)
# ---------------------------------------------------------------------------------------------------
class GtFolder:
    """Plain folder of GT images, ``<stem>.png`` (any suffix :func:`list_images` knows)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.files = list_images(self.folder, what="ground-truth")
        if not self.files:
            raise AclnetError(f"{self.folder}: no ground-truth images found")

    def stems(self) -> list[str]:
        return sorted(self.files)

    def load(self, stem: str) -> np.ndarray:
        return read_gray_map(self.files[stem])

    def describe(self) -> str:
        return str(self.folder)


class PreparedGt:
    """GT at the original size from a prepared dataset (``aclnet_kd.data.open_prepared``)."""

    def __init__(self, prepared_dir: str | os.PathLike, split: str) -> None:
        self.prepared_dir = Path(prepared_dir)
        self.split = split
        self._ids = [str(i) for i in self._dataset().ids(split)]  # errors name a missing split

    def _dataset(self):
        # Opened lazily and per process: memory maps are not shared through pickling.
        if getattr(self, "_opened", None) is None:
            from aclnet_kd.data import open_prepared

            self._opened = open_prepared(self.prepared_dir)
        return self._opened

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_opened"] = None
        return state

    def stems(self) -> list[str]:
        return sorted(self._ids)

    def load(self, stem: str) -> np.ndarray:
        gt = np.asarray(self._dataset().gt_original(self.split, stem))
        if gt.dtype != np.uint8 or gt.ndim != 2:
            raise AclnetError(f"{self.prepared_dir}: GT of {self.split}/{stem} is not a uint8 HxW map")
        return gt

    def describe(self) -> str:
        return f"{self.prepared_dir} (split {self.split})"


# ---------------------------------------------------------------------------------------------------
# The work
# ---------------------------------------------------------------------------------------------------
def match_files(pred_files: dict[str, Path], gt_stems: list[str], pred_dir: Path, gt_desc: str) -> list[str]:
    """The stems to score; a missing or an extra prediction is an error naming the files."""
    missing = sorted(set(gt_stems) - set(pred_files))
    extra = sorted(set(pred_files) - set(gt_stems))
    problems = []
    if missing:
        problems.append(
            f"{len(missing)} ground-truth image(s) of {gt_desc} have no map in {pred_dir}: "
            + ", ".join(f"{s}.png" for s in missing[:10]) + (" ..." if len(missing) > 10 else "")
        )
    if extra:
        problems.append(
            f"{len(extra)} map(s) in {pred_dir} have no ground truth in {gt_desc}: "
            + ", ".join(pred_files[s].name for s in extra[:10]) + (" ..." if len(extra) > 10 else "")
        )
    if problems:
        raise AclnetError("; ".join(problems))
    return sorted(gt_stems)


def align_to_gt(pred: np.ndarray, gt_shape: tuple[int, int], pred_path: Path) -> np.ndarray:
    """Resize ``pred`` bilinearly to the GT's size, or refuse a size that cannot be the same picture."""
    if pred.shape == tuple(gt_shape):
        return pred
    (ph, pw), (gh, gw) = pred.shape, gt_shape
    change = (pw / ph) / (gw / gh)
    if (ph, pw) == (gw, gh) or max(change, 1 / change) > MAX_ASPECT_CHANGE:
        raise AclnetError(
            f"{pred_path}: map is {ph}x{pw} (HxW) but its ground truth is {gh}x{gw}; the aspect ratios "
            f"differ too much (transposed or a different image?) to resize one onto the other"
        )
    return cv2.resize(pred, (gw, gh), interpolation=cv2.INTER_LINEAR)


def _score_chunk(jobs: list[tuple[str, Path]], gt_source) -> SODMetrics:
    cv2.setNumThreads(1)  # one process per core already
    metrics = SODMetrics()
    for stem, pred_path in jobs:
        gt = gt_source.load(stem)
        pred = align_to_gt(read_gray_map(pred_path), gt.shape, pred_path)
        metrics.step(pred, gt)
    return metrics


def score_maps(jobs: list[tuple[str, Path]], gt_source, workers: int = 1) -> SODMetrics:
    """Score ``(stem, map path)`` pairs in order, on ``workers`` processes; same result as serial.

    The jobs are cut into contiguous chunks, each scored by its own :class:`SODMetrics`; the chunks are
    merged back in order, so the per-image lists (and every dataset mean) equal a serial run's.
    """
    if workers <= 1 or len(jobs) < 2 * workers:
        return _score_chunk(jobs, gt_source)
    num_chunks = min(len(jobs), 4 * workers)  # a few chunks per worker evens out slow images
    bounds = np.linspace(0, len(jobs), num_chunks + 1).astype(int)
    chunks = [jobs[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        parts = list(pool.map(_score_chunk, chunks, [gt_source] * len(chunks)))
    merged = parts[0]
    for part in parts[1:]:
        merged.merge(part)
    return merged


def operating_point_metrics(record_path: Path, jobs: list[tuple[str, Path]], gt_source) -> dict[str, float]:
    """The binary metrics at the operating point recorded in ``record_path`` (run.json, or an ONNX sidecar);
    {} with a note when it records none (``evaluate/binary_metrics.py``)."""
    from aclnet_kd.evaluate.binary_metrics import binary_scores
    from aclnet_kd.io import read_json

    recorded = read_json(record_path).get("operating_point") or {}
    if recorded.get("threshold") is None:
        print(f"note: {record_path} records no operating point ({recorded.get('reason', 'none recorded')}); "
              "no binary metrics")
        return {}

    def pairs():
        for stem, pred_path in jobs:
            gt = gt_source.load(stem)
            yield align_to_gt(read_gray_map(pred_path), gt.shape, pred_path), gt

    return binary_scores(pairs(), float(recorded["threshold"]), int(recorded.get("min_area", 0)))


def format_outputs(metrics: SODMetrics, stems: list[str], extra: dict[str, float] | None = None) -> dict[str, str]:
    """Text of metrics.json (``extra``: the binary metrics, appended), curves.csv and per_image.csv."""
    results = metrics.results()
    curves = metrics.curves()
    lines = ["threshold,precision,recall,fmeasure,emeasure"]
    for i in range(len(curves["threshold"])):
        lines.append(
            f"{int(curves['threshold'][i])},{curves['precision'][i]:.6f},{curves['recall'][i]:.6f},"
            f"{curves['fmeasure'][i]:.6f},{curves['emeasure'][i]:.6f}"
        )
    per_image = metrics.per_image()
    rows = ["stem," + ",".join(METRIC_KEYS)]
    for i, stem in enumerate(stems):
        rows.append(stem + "," + ",".join(f"{per_image[k][i]:.6f}" for k in METRIC_KEYS))
    return {
        # the metric keys flat and numeric (dvc metrics, the tables), then where they came from, without the
        # date: `dvc metrics diff` then shows a change only when the numbers, code or packages changed
        "metrics": json.dumps({**{k: round(results[k], 6) for k in METRIC_KEYS},
                               **{k: round(v, 6) for k, v in (extra or {}).items() if v == v},
                               "provenance": provenance.collect(with_date=False)}, indent=2) + "\n",
        "curves": "\n".join(lines) + "\n",
        "per_image": "\n".join(rows) + "\n",
    }


# ---------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pred", required=True, type=Path, help="folder of saliency maps, <stem>.png")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--gt", type=Path, help="prepared dataset folder (data/prepared/NAME)")
    source.add_argument("--gt-dir", type=Path, help="plain folder of ground-truth images (external evaluation)")
    parser.add_argument("--split", help="split of the prepared dataset (with --gt), e.g. test or NJU2K")
    parser.add_argument("--out", required=True, type=Path, help="metrics.json to write")
    parser.add_argument("--curves", type=Path, help="curves.csv to write (PR, F and E against threshold)")
    parser.add_argument("--per-image", type=Path, help="per_image.csv to write")
    parser.add_argument("--workers", type=int, default=2, help="processes for the per-image metrics (default 2)")
    parser.add_argument("--run-record", type=Path, help="run.json (or an ONNX sidecar) whose operating point "
                        "scores the binary masks too: op_IoU, op_Dice, ... in metrics.json")


def main(args: argparse.Namespace) -> int:
    if args.gt is not None:
        if not args.split:
            raise AclnetError("--split is required with --gt (e.g. --split test)")
        gt_source = PreparedGt(args.gt, args.split)
    else:
        gt_source = GtFolder(args.gt_dir)
    pred_files = list_images(args.pred, what="prediction")
    stems = match_files(pred_files, gt_source.stems(), args.pred, gt_source.describe())
    metrics = score_maps([(s, pred_files[s]) for s in stems], gt_source, workers=max(1, args.workers))
    jobs = [(s, pred_files[s]) for s in stems]
    extra = operating_point_metrics(args.run_record, jobs, gt_source) if args.run_record else {}
    texts = format_outputs(metrics, stems, extra)
    outputs = {args.out: texts["metrics"]}
    if args.curves:
        outputs[args.curves] = texts["curves"]
    if args.per_image:
        outputs[args.per_image] = texts["per_image"]
    atomic_write_texts(outputs)
    summary = "  ".join(f"{k} {v:.3f}" for k, v in metrics.results().items())
    if extra:
        summary += "; at the operating point: " + "  ".join(f"{k} {v:.3f}" for k, v in extra.items())
    print(f"evaluated {len(stems)} maps from {args.pred}: {summary}")
    return 0
