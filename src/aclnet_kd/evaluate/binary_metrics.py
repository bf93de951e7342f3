"""Scores of the detector's decisions: the binary masks at the run's operating point (``aclnet evaluate
--run-record run.json``), beside the threshold-free saliency metrics.

* Pixel IoU, Dice, precision and recall: PySODMetrics' ``FmeasureV2`` with ``with_binary=True`` handlers,
  ``sample_based=False``: true/false positives pooled over every pixel of the split (as the operating point
  was chosen), then one ratio. The masks are those of ``aclnet predict --binary`` (``deploy.defects.detect``:
  the map >= the threshold's grey level, components under ``min_area`` pixels removed), passed as {0, 1}
  floats with ``normalize=False``, so PySODMetrics' own ``pred > 0.5`` binarisation keeps them as they are.
* Object level: each ground-truth defect is an 8-connected component of GT > 128. It counts as **found**
  when at least one of its pixels lies in a predicted defect (a kept component of the mask).
  ``op_detection_rate`` = found / all GT components of the split; ``op_false_defects`` = predicted defects
  that touch no GT pixel (per split, a count).
"""

from __future__ import annotations

from typing import Iterable

import cv2
import numpy as np
import py_sod_metrics as psm

from aclnet_kd.deploy.defects import detect

# Keys added to metrics.json (flat, numeric: `aclnet tables` reads them like the others)
BINARY_KEYS = ("op_threshold", "op_IoU", "op_Dice", "op_precision", "op_recall", "op_detection_rate",
               "op_gt_defects", "op_false_defects")
_HANDLERS = {"op_IoU": psm.IOUHandler, "op_Dice": psm.DICEHandler, "op_precision": psm.PrecisionHandler,
             "op_recall": psm.RecallHandler}


def object_counts(mask: np.ndarray, gt: np.ndarray) -> tuple[int, int, int]:
    """(GT components, those found, predicted components touching no GT pixel) of one image."""
    count, labels = cv2.connectedComponents((gt > 128).astype(np.uint8), connectivity=8)
    found = np.unique(labels[(mask > 0) & (labels > 0)])
    pred_count, pred_labels = cv2.connectedComponents((mask > 0).astype(np.uint8), connectivity=8)
    hits = np.unique(pred_labels[(pred_labels > 0) & (gt > 128)])
    return count - 1, int(found.size), pred_count - 1 - int(hits.size)


def binary_scores(pairs: Iterable[tuple[np.ndarray, np.ndarray]], threshold: float, min_area: int
                  ) -> dict[str, float]:
    """The :data:`BINARY_KEYS` of ``(uint8 map, uint8 GT)`` pairs at ``threshold`` (0-1) and ``min_area``."""
    evaluator = psm.FmeasureV2(metric_handlers={
        key: handler(with_dynamic=False, with_adaptive=False, with_binary=True, sample_based=False)
        for key, handler in _HANDLERS.items()})
    gt_total = found = false_defects = 0
    for saliency, gt in pairs:
        mask, _ = detect(saliency, threshold, min_area)
        evaluator.step(pred=(mask > 0).astype(np.float64), gt=gt > 128, normalize=False)
        n_gt, n_found, n_false = object_counts(mask, gt)
        gt_total, found, false_defects = gt_total + n_gt, found + n_found, false_defects + n_false
    results = evaluator.get_results()
    scores = {key: float(results[key]["binary"]) for key in _HANDLERS}
    return {"op_threshold": float(threshold), **scores,
            "op_detection_rate": found / gt_total if gt_total else float("nan"),
            "op_gt_defects": float(gt_total), "op_false_defects": float(false_defects)}
