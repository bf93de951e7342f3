"""The network's input contract in numpy and cv2 alone (no torch), shared by the torch loaders and the
torch-free ONNX inference path, so that both feed a model the same numbers.

* Resize: bilinear for RGB, nearest for depth and GT (keeps GT binary).
* RGB: uint8 -> /255 -> ImageNet mean/std, float32 CHW. Depth: uint8 -> /255, float32 1HW. GT: > 127.
"""

from __future__ import annotations

import cv2
import numpy as np

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
INPUT_LAYOUT = "NCHW float32; rgb = (RGB/255 - mean)/std; depth = depth/255 with near = bright"


def resize_sample(rgb: np.ndarray, depth: np.ndarray, gt: np.ndarray, size: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The loaders' resize rule: bilinear for RGB, nearest for depth and GT (keeps GT binary)."""
    if rgb.shape[0] == size and rgb.shape[1] == size:
        return rgb, depth, gt
    return (cv2.resize(rgb, (size, size), interpolation=cv2.INTER_LINEAR),
            cv2.resize(depth, (size, size), interpolation=cv2.INTER_NEAREST),
            cv2.resize(gt, (size, size), interpolation=cv2.INTER_NEAREST))


# uint8 -> float32 lookup tables: one cv2.LUT pass is ~5x faster than astype + arithmetic.
_LEVELS = np.arange(256, dtype=np.float32)
_RGB_LUT = np.ascontiguousarray(((_LEVELS[:, None] / 255.0 - IMAGENET_MEAN) / IMAGENET_STD)
                                .astype(np.float32).reshape(1, 256, 3))
_DEPTH_LUT = _LEVELS / 255.0
_GT_LUT = (_LEVELS > 127).astype(np.float32)


def normalize_arrays(rgb: np.ndarray, depth: np.ndarray, gt: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """uint8 HWC/HW -> float32 CHW: RGB /255 then ImageNet mean/std, depth /255 (1HW), GT {0, 1} (1HW)."""
    rgb_f = cv2.LUT(np.ascontiguousarray(rgb), _RGB_LUT)
    depth_f = cv2.LUT(np.ascontiguousarray(depth), _DEPTH_LUT)
    gt_f = cv2.LUT(np.ascontiguousarray(gt), _GT_LUT)
    return np.ascontiguousarray(rgb_f.transpose(2, 0, 1)), depth_f[None], gt_f[None]
