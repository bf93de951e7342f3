"""File helpers for predict / evaluate / report: listing image folders and reading maps.
(The all-or-nothing writers are in :mod:`aclnet_kd.io`.)
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from aclnet_kd.errors import AclnetError
from aclnet_kd.io import IMAGE_SUFFIXES


def list_images(folder: str | os.PathLike, what: str = "image") -> dict[str, Path]:
    """``{stem: path}`` of the image files in ``folder`` (hidden files and other suffixes ignored).

    Two files with one stem (``a.png`` and ``a.jpg``) are ambiguous and raise an error naming both.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise AclnetError(f"{folder}: no such {what} folder")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            continue
        if path.stem in found:
            raise AclnetError(f"{folder}: two {what} files share the stem {path.stem!r}: {found[path.stem].name}, {path.name}")
        found[path.stem] = path
    return found


def read_gray_map(path: str | os.PathLike) -> np.ndarray:
    """Read a saliency map or GT as uint8 HxW.

    Accepts 8- or 16-bit grayscale, and RGB(A) files whose colour channels are equal (what
    ``plt.imsave(..., cmap='gray')`` writes); a true colour image is refused, since it is not a map.
    """
    path = Path(path)
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise AclnetError(f"{path}: unreadable image (not a valid PNG/JPEG/BMP/TIFF file)")
    if image.dtype == np.uint16:
        image = np.round(image / 257.0).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise AclnetError(f"{path}: unsupported pixel type {image.dtype} (expected 8- or 16-bit)")
    if image.ndim == 3:
        colour = image[..., :3]
        if not (np.array_equal(colour[..., 0], colour[..., 1]) and np.array_equal(colour[..., 0], colour[..., 2])):
            raise AclnetError(f"{path}: a colour image, not a grayscale saliency map")
        image = np.ascontiguousarray(colour[..., 0])
    return image
