"""The operating point of a finished run: once, after the last epoch, the selected model (best.pt) predicts
the held-out validation split exactly as ``aclnet predict`` would (8-bit maps at the GT's original size),
and ``evaluate.operating_point`` chooses the threshold (params ``operating_point``). The result goes into
best.pt's meta here, and into last.pt and run.json through the run record (``RunRecord.operating_point``).

Under ``paper`` selection the validation split is trained on (or absent), so no threshold is chosen: the record says
why, and ``aclnet predict --binary`` then needs ``--threshold``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aclnet_kd.evaluate.operating_point import operating_point


def validation_pairs(model: torch.nn.Module, data_dir: Path, split: str, image_size: int, batch_size: int,
                     device: torch.device):
    """``(uint8 map, uint8 GT)`` of every image of ``split``, both at the GT's original size."""
    from aclnet_kd.data import open_prepared
    from aclnet_kd.evaluate.predict import predict_batches, prepared_batches

    prepared = open_prepared(data_dir)
    need_depth = bool(getattr(model, "is_rgbd", False))
    _, batches = prepared_batches(data_dir, split, image_size, batch_size, need_depth)
    for stem, saliency in predict_batches(model, batches, "sigmoid", device):
        yield saliency, np.asarray(prepared.gt_original(split, stem))


def run_operating_point(best_path: str | os.PathLike, data_dir: str | os.PathLike, split: str, held_out: bool,
                        cfg: dict[str, Any], batch_size: int, device: torch.device) -> dict[str, Any]:
    """The operating point of the model in ``best_path`` on ``split`` (params ``cfg``), also written into
    best.pt's meta. ``held_out`` False (the split was trained on): no threshold, and the reason."""
    from aclnet_kd.checkpoint import atomic_save, safe_load
    from aclnet_kd.models import load_model_checkpoint

    base = {"split": split, "min_area": int(cfg["min_area"]), "scale": "sigmoid 0-1; mask = 8-bit map >= level"}
    if not held_out:
        result = {"threshold": None, "rule": cfg["rule"], **base,
                  "reason": f"no held-out '{split}' split in this run (paper selection trains on it, or the "
                            "dataset has none)"}
    else:
        model, meta = load_model_checkpoint(best_path)
        pairs = validation_pairs(model, Path(data_dir), split, int(meta["image_size"]), batch_size, device)
        result = {**operating_point(pairs, cfg["rule"], float(cfg["target_recall"])), **base}
    checkpoint = safe_load(best_path)
    checkpoint["meta"]["operating_point"] = result
    atomic_save(checkpoint, best_path)
    return result
