"""A PNG contact sheet of a prepared dataset: RGB | depth | GT outline on RGB, a few samples per split."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from aclnet_kd.data.prepared import PreparedData
from aclnet_kd.errors import AclnetError


def _tile(rgb: np.ndarray, depth: np.ndarray, gt: np.ndarray) -> np.ndarray:
    depth_rgb = cv2.applyColorMap(np.ascontiguousarray(depth), cv2.COLORMAP_VIRIDIS)[:, :, ::-1]
    overlay = np.ascontiguousarray(rgb).copy()
    contours, _ = cv2.findContours((gt > 127).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(overlay, contours, -1, (255, 40, 40), 1)
    gap = np.full((rgb.shape[0], 4, 3), 255, np.uint8)
    return np.concatenate([rgb, gap, depth_rgb, gap, overlay], axis=1)


def contact_sheet(data: PreparedData, per_split: int = 3, tile_size: int = 160) -> np.ndarray:
    """uint8 RGB image: one row per sample (evenly spaced through each split), labelled with split/id."""
    rows = []
    for split in data.splits:
        ids = data.ids(split)
        arrays = data.arrays(split)
        for index in np.linspace(0, len(ids) - 1, min(per_split, len(ids))).round().astype(int):
            rgb, depth, gt = (cv2.resize(np.asarray(arrays[k][index]), (tile_size, tile_size),
                                         interpolation=cv2.INTER_AREA) for k in ("rgb", "depth", "gt"))
            row = _tile(rgb, depth, gt)
            label = np.full((18, row.shape[1], 3), 255, np.uint8)
            cv2.putText(label, f"{split} / {ids[index]}", (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1,
                        cv2.LINE_AA)
            rows.append(np.concatenate([label, row], axis=0))
    if not rows:
        raise AclnetError(f"{data.root}: no samples to preview")
    title = f"{data.meta['name']}  ({'SYNTHETIC' if data.meta['synthetic'] else 'real'} data)   " \
            "RGB | depth (near = bright) | GT outline"
    header = np.full((24, rows[0].shape[1], 3), 255, np.uint8)
    cv2.putText(header, title, (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (160, 0, 0), 1, cv2.LINE_AA)
    # Two columns of rows keep the sheet roughly square.
    half = (len(rows) + 1) // 2
    left, right = rows[:half], rows[half:]
    if len(right) < len(left):
        right.append(np.full_like(left[0], 255))
    body = np.concatenate([np.concatenate(left, 0), np.full((sum(r.shape[0] for r in left), 10, 3), 255, np.uint8),
                           np.concatenate(right, 0)], axis=1) if right else np.concatenate(left, 0)
    header = np.full((24, body.shape[1], 3), 255, np.uint8)
    cv2.putText(header, title, (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (160, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([header, body], axis=0)


def write_contact_sheet(data: PreparedData, path: str | Path, per_split: int = 3) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(contact_sheet(data, per_split), cv2.COLOR_RGB2BGR)):
        raise AclnetError(f"{path}: cannot write the preview PNG")
    return path
