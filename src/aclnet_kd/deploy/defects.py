"""``aclnet predict --binary``: from an 8-bit map to a binary mask and a list of defects. Torch-free, shared
by the checkpoint path and the ONNX path, so both write the same files from the same maps.

* A pixel is a defect when its map value is >= the threshold's grey level
  (``evaluate.operating_point.threshold_level``: the 0-1 threshold times 255, rounded up).
* A defect is an 8-connected component of those pixels with at least ``min_area`` pixels of the original
  image; smaller components are removed from the mask too, so the mask shows exactly the listed defects.
* ``defects.csv`` (:data:`COLUMNS`): one row per defect, numbered 1, 2, ... per image in raster order of
  their first pixel, with ``defects`` the image's count, the area in pixels, the bounding box
  (``x, y`` its top-left corner, ``w, h`` its size, in pixels of the original image) and the highest and
  mean map value inside it on the 0-1 scale. An image without defects gets one row with ``defects`` 0 and
  the other columns empty, so "no defect found" is recorded, not missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import cv2
import numpy as np

from aclnet_kd.errors import AclnetError
from aclnet_kd.evaluate.operating_point import threshold_level

COLUMNS = ("image", "defects", "defect", "area", "x", "y", "w", "h", "score_max", "score_mean")
CSV_NAME = "defects.csv"


@dataclass(frozen=True)
class BinarySettings:
    """The cut and where it came from (printed, so the user sees which threshold was used)."""

    threshold: float  # 0-1, sigmoid scale
    min_area: int  # pixels of the original image
    source: str


def components(mask: np.ndarray, min_area: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """8-connected components of a boolean mask: (labels, stats of the kept ones, their label ids)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    ids = np.arange(1, count)
    kept = ids[stats[1:, cv2.CC_STAT_AREA] >= min_area]
    return labels, stats, kept


def detect(saliency: np.ndarray, threshold: float, min_area: int) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """A uint8 map -> (0/255 mask of the kept defects, one dict per defect)."""
    labels, stats, kept = components(saliency >= threshold_level(threshold), min_area)
    mask = np.where(np.isin(labels, kept), 255, 0).astype(np.uint8)
    count = int(labels.max()) + 1
    sums = np.bincount(labels.ravel(), weights=saliency.ravel(), minlength=count)
    peaks = np.zeros(count, np.int64)
    np.maximum.at(peaks, labels.ravel(), saliency.ravel())
    defects = []
    for number, label in enumerate(kept, start=1):
        x, y, w, h, area = (int(v) for v in stats[label, :5])
        defects.append({"defect": number, "area": area, "x": x, "y": y, "w": w, "h": h,
                        "score_max": peaks[label] / 255.0, "score_mean": sums[label] / area / 255.0})
    return mask, defects


def csv_rows(stem: str, defects: list[dict[str, Any]]) -> list[str]:
    """The defects.csv lines of one image (one line with count 0 when there is none)."""
    if not defects:
        return [f"{stem},0" + "," * (len(COLUMNS) - 2)]
    return [f"{stem},{len(defects)},{d['defect']},{d['area']},{d['x']},{d['y']},{d['w']},{d['h']},"
            f"{d['score_max']:.4f},{d['score_mean']:.4f}" for d in defects]


def write_outputs(folder: Path, maps: Iterable[tuple[str, np.ndarray]], binary: BinarySettings | None
                  ) -> tuple[int, int]:
    """Write each map (or, with ``binary``, its mask and then defects.csv) into ``folder``, a staged output
    folder. Returns (images written, defects found)."""
    written, found, rows = 0, 0, [",".join(COLUMNS)]
    for stem, saliency in maps:
        image = saliency
        if binary is not None:
            image, defects = detect(saliency, binary.threshold, binary.min_area)
            rows += csv_rows(stem, defects)
            found += len(defects)
        if not cv2.imwrite(str(folder / f"{stem}.png"), image):
            raise AclnetError(f"{folder / (stem + '.png')}: could not write the map")
        written += 1
    if binary is not None:
        (folder / CSV_NAME).write_text("\n".join(rows) + "\n")
    return written, found


def binary_settings(operating_point: dict[str, Any] | None, threshold: float | None, min_area: int | None,
                    source: str) -> BinarySettings:
    """The cut for ``--binary``: ``--threshold`` / ``--min-area`` where given, else the model's recorded
    operating point (``source`` names the file it came from). No threshold at all is an error."""
    recorded = operating_point or {}
    if threshold is None:
        threshold = recorded.get("threshold")
        if threshold is None:
            why = recorded.get("reason", "it was trained before operating points were recorded, or not by aclnet")
            raise AclnetError(f"{source}: records no operating point ({why}); pass --threshold T (0-1)")
        origin = f"the operating point of {source} ({recorded.get('rule')}, on '{recorded.get('split')}')"
    else:
        origin = "--threshold"
    threshold_level(threshold)  # validates the range
    if min_area is None:
        min_area = int(recorded.get("min_area", 0))
    if min_area < 0:
        raise AclnetError(f"--min-area {min_area}: must be >= 0")
    return BinarySettings(float(threshold), int(min_area), origin)


def describe_binary(binary: BinarySettings, found: int) -> str:
    """The tail of predict's summary line: which cut was used and what it found."""
    return (f"; threshold {binary.threshold:.4f} from {binary.source}, min area {binary.min_area} px: "
            f"{found} defect(s), listed in {CSV_NAME}")
