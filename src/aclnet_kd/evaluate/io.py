"""File helpers for predict / evaluate / report: map reading and all-or-nothing outputs.

A stage that fails half-way must leave nothing behind (the workflow would otherwise take a half-written
folder for a finished one). Outputs are therefore written to temp paths beside their targets and renamed
into place only once everything has succeeded.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from aclnet_kd.errors import AclnetError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _default_mode(path: Path, is_dir: bool) -> None:
    """mkstemp/mkdtemp create private (0600/0700) paths; give outputs the usual permissions instead."""
    os.chmod(path, (0o777 if is_dir else 0o666) & ~_umask())


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


@contextlib.contextmanager
def atomic_output_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temp folder beside ``target``; on success it replaces ``target``, on error it vanishes."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    _default_mode(tmp, is_dir=True)
    try:
        yield tmp
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_texts(files: dict[str | os.PathLike, str]) -> None:
    """Write several text files all-or-nothing: every temp file first, then the renames."""
    staged: list[tuple[str, Path]] = []
    try:
        for target, text in files.items():
            target = Path(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            staged.append((tmp, target))
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
            _default_mode(Path(tmp), is_dir=False)
        for tmp, target in staged:
            os.replace(tmp, target)
    except BaseException:
        for tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)
        raise
