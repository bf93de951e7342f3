"""The detector's operating point: one fixed threshold on the sigmoid scale (0-1, no per-image min-max),
chosen on the pooled pixels of the validation split. Torch-free: ``aclnet train`` calls it once a run has
finished (``train/operating_point.py``), ``aclnet predict --binary`` and ``aclnet evaluate`` apply it.

The maps are the 8-bit PNGs of ``aclnet predict`` (``round(255 p)`` at the GT's original size), so a
threshold is one of the 255 grey levels: ``threshold = level / 255`` and a pixel is a defect when its map
value is ``>= level``. Counting is one histogram per class (``np.bincount`` of the grey levels of
foreground and of background pixels, GT > 128 as PySODMetrics); the reversed cumulative sums give the true
and false positives of every level at once.

Rules (params ``operating_point.rule``):

* ``max_f``: the level with the highest F-beta (beta^2 = 0.3, the field's) over the pooled pixels; ties go
  to the lowest level (the higher recall);
* ``target_recall``: for inspection, where a missed defect costs more than a false alarm: the highest level
  whose pooled recall is still >= ``target_recall`` (the best precision that keeps the recall); if no level
  reaches it, level 1 (the highest recall there is), recorded with ``target_met: false``.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from aclnet_kd.errors import AclnetError

RULES = ("max_f", "target_recall")
F_BETA2 = 0.3
LEVELS = 256  # grey levels of an 8-bit map; level 0 (every pixel a defect) is never chosen
GT_FOREGROUND = 128  # GT > 128 is foreground (PySODMetrics' rule)


def threshold_level(threshold: float) -> int:
    """The grey level a 0-1 threshold cuts at: the smallest ``k`` with ``k / 255 >= threshold``
    (a tolerance of 1e-3 levels absorbs the float error of ``level / 255`` read back from JSON)."""
    if not (isinstance(threshold, (int, float)) and 0.0 <= threshold <= 1.0):
        raise AclnetError(f"threshold {threshold!r}: must be a number in [0, 1] (the sigmoid scale)")
    return int(math.ceil(threshold * 255 - 1e-3))


def binary_mask(saliency: np.ndarray, threshold: float) -> np.ndarray:
    """A uint8 map -> its 0/255 binary mask at ``threshold`` (0-1 scale)."""
    return np.where(saliency >= threshold_level(threshold), 255, 0).astype(np.uint8)


class LevelCounts:
    """Pixel counts per grey level, foreground and background, pooled over the images ``add`` was given."""

    def __init__(self) -> None:
        self.foreground = np.zeros(LEVELS, np.int64)
        self.background = np.zeros(LEVELS, np.int64)
        self.images = 0

    def add(self, saliency: np.ndarray, gt: np.ndarray) -> None:
        """One image: a uint8 map and its uint8 GT of the same shape."""
        if saliency.dtype != np.uint8 or saliency.shape != gt.shape:
            raise AclnetError(f"operating point: expected a uint8 map of the GT's shape {gt.shape}, "
                              f"got {saliency.dtype} {saliency.shape}")
        fg = gt > GT_FOREGROUND
        self.foreground += np.bincount(saliency[fg], minlength=LEVELS)
        self.background += np.bincount(saliency[~fg], minlength=LEVELS)
        self.images += 1

    def curves(self, beta2: float = F_BETA2) -> dict[str, np.ndarray]:
        """Precision, recall and F-beta of the cut ``map >= k`` for every level k (index = level)."""
        tp = np.cumsum(self.foreground[::-1])[::-1].astype(np.float64)  # foreground pixels >= k
        fp = np.cumsum(self.background[::-1])[::-1].astype(np.float64)
        positives = tp + fp
        precision = np.divide(tp, positives, out=np.zeros(LEVELS), where=positives > 0)
        total = float(self.foreground.sum())
        recall = tp / total if total > 0 else np.zeros(LEVELS)
        denom = beta2 * precision + recall
        fmeasure = np.divide((1 + beta2) * precision * recall, denom, out=np.zeros(LEVELS), where=denom > 0)
        return {"precision": precision, "recall": recall, "fmeasure": fmeasure}


def choose(counts: LevelCounts, rule: str = "max_f", target_recall: float = 0.9,
           beta2: float = F_BETA2) -> dict[str, Any]:
    """The operating point of ``counts`` under ``rule``: threshold (0-1), level and the pooled figures."""
    if rule not in RULES:
        raise AclnetError(f"operating_point.rule: {rule!r} is not one of {list(RULES)}")
    if counts.foreground.sum() == 0:
        raise AclnetError("operating point: the validation split has no foreground pixel (GT > 128)")
    curves = counts.curves(beta2)
    levels = np.arange(1, LEVELS)
    extra: dict[str, Any] = {}
    if rule == "max_f":
        level = int(levels[np.argmax(curves["fmeasure"][1:])])  # argmax: the first (lowest) of ties
    else:
        reaching = levels[curves["recall"][1:] >= target_recall]
        level = int(reaching.max()) if reaching.size else 1
        extra = {"target_recall": float(target_recall), "target_met": bool(reaching.size)}
    return {"threshold": level / 255, "level": level, "rule": rule, **extra,
            "precision": float(curves["precision"][level]), "recall": float(curves["recall"][level]),
            "fmeasure": float(curves["fmeasure"][level]), "beta2": beta2,
            "images": counts.images, "pixels": int(counts.foreground.sum() + counts.background.sum())}


def operating_point(pairs: Iterable[tuple[np.ndarray, np.ndarray]], rule: str = "max_f",
                    target_recall: float = 0.9, beta2: float = F_BETA2) -> dict[str, Any]:
    """The operating point of ``(uint8 map, uint8 GT)`` pairs (the validation split's)."""
    counts = LevelCounts()
    for saliency, gt in pairs:
        counts.add(saliency, gt)
    if counts.images == 0:
        raise AclnetError("operating point: no validation images")
    return choose(counts, rule, target_recall, beta2)
