"""Decoding RGB, depth and GT files into the arrays the cache stores.

Every decoder takes the file's bytes (read once, so the same bytes feed the sha256 in the manifest) and
raises :class:`ImageProblem` with a short reason when the file cannot be used; the validator collects
those reasons per file instead of stopping at the first one.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np


# How depth values become [0, 1]:
#   auto:   8-bit / 255; 16-bit and float per-image min-max (16-bit sensors rarely use their full range)
#   dtype:  divide by the type's maximum (255 or 65535); float must already be in [0, 1]
#   minmax: per-image min-max for every type
DEPTH_SCALES = ("auto", "dtype", "minmax")

# GT pixels strictly between these are "grey"; more than MAX_GREY_FRACTION of them means the file is not
# a binary mask (anti-aliased or JPEG-compressed edges stay well below it).
GREY_LOW, GREY_HIGH, MAX_GREY_FRACTION = 64, 192, 0.05


class ImageProblem(ValueError):
    """A file that exists but cannot be used; the message says why (without the path)."""


def read_bytes(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise ImageProblem(f"cannot read file ({err.strerror or err})") from None


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _decode(data: bytes, flags: int) -> np.ndarray:
    if not data:
        raise ImageProblem("file is empty")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if image is None or image.size == 0:
        raise ImageProblem("not a decodable image (corrupt or unsupported format)")
    return image


def _to_single_channel(image: np.ndarray) -> np.ndarray:
    """Grey files saved as 3- or 4-channel images (common for depth and GT) become one channel."""
    if image.ndim == 3:
        if image.shape[2] == 4:
            image = image[:, :, :3]
        if image.shape[2] == 1 or (np.array_equal(image[:, :, 0], image[:, :, 1])
                                   and np.array_equal(image[:, :, 0], image[:, :, 2])):
            image = image[:, :, 0]
        else:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return np.ascontiguousarray(image)


def decode_rgb(data: bytes) -> np.ndarray:
    """-> uint8 (H, W, 3) in RGB order. Grey images are expanded; 16-bit images are reduced to 8 bits."""
    image = _decode(data, cv2.IMREAD_UNCHANGED)
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ImageProblem(f"unsupported RGB pixel type {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def decode_depth(data: bytes, scale: str = "auto", polarity: str = "near_bright") -> np.ndarray:
    """-> float32 (H, W) in [0, 1], near = bright whatever the file's polarity."""
    image = _to_single_channel(_decode(data, cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH))
    if not np.issubdtype(image.dtype, np.integer) and not np.issubdtype(image.dtype, np.floating):
        raise ImageProblem(f"unsupported depth pixel type {image.dtype}")
    depth = image.astype(np.float32)
    if not np.isfinite(depth).all():
        raise ImageProblem("depth contains NaN or infinite values")
    use_minmax = scale == "minmax" or (scale == "auto" and image.dtype != np.uint8)
    if use_minmax:
        low, high = float(depth.min()), float(depth.max())
        depth = (depth - low) / (high - low) if high > low else np.zeros_like(depth)
    elif np.issubdtype(image.dtype, np.integer):
        depth /= float(np.iinfo(image.dtype).max)
    elif depth.min() < 0.0 or depth.max() > 1.0:
        raise ImageProblem("float depth outside [0, 1] with depth_scale 'dtype' (use 'minmax')")
    if polarity == "near_dark":
        depth = 1.0 - depth
    return depth


def decode_gt(data: bytes) -> np.ndarray:
    """-> uint8 (H, W) in {0, 255}: foreground where the file's value is > 128 (PySODMetrics' rule).

    A mask saved with values {0, 1} is read as {0, 255}; a mask with many grey pixels is refused.
    """
    image = _to_single_channel(_decode(data, cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH))
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype == np.bool_:
        image = image.astype(np.uint8) * 255
    elif image.dtype != np.uint8:
        raise ImageProblem(f"unsupported GT pixel type {image.dtype}")
    if image.max() == 1:
        image = image * np.uint8(255)
    grey = np.count_nonzero((image > GREY_LOW) & (image < GREY_HIGH)) / image.size
    if grey > MAX_GREY_FRACTION:
        raise ImageProblem(f"GT is not binary-like ({grey:.0%} of pixels are grey, max {MAX_GREY_FRACTION:.0%})")
    return np.where(image > 128, np.uint8(255), np.uint8(0))


def encode_png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    if not ok:  # pragma: no cover - cv2 only fails here on invalid arrays, a bug
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()
