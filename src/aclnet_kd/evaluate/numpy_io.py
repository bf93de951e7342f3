"""The torch-free halves of ``aclnet predict``: pairing folder images, loading one image as the network's
input, and probability maps -> uint8 PNG maps. The checkpoint path and the ONNX path (``aclnet predict
--onnx``, which never imports torch) both use them, so both handle folders and errors the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np

from aclnet_kd.data.images import ImageProblem, decode_depth, decode_rgb, read_bytes
from aclnet_kd.data.preprocess import normalize_arrays, resize_sample
from aclnet_kd.errors import AclnetError
from aclnet_kd.evaluate.io import list_images

PROTOCOLS = ("sigmoid", "release_minmax")


def pair_folders(rgb_dir: Path, depth_dir: Path | None, need_depth: bool
                 ) -> tuple[list[str], dict[str, Path], dict[str, Path]]:
    """``(sorted stems, {stem: rgb path}, {stem: depth path})``; errors name the folder that is wrong."""
    rgb_files = list_images(rgb_dir, what="RGB")
    if not rgb_files:
        raise AclnetError(f"{rgb_dir}: no RGB images found")
    depth_files: dict[str, Path] = {}
    if need_depth:
        if depth_dir is None:
            raise AclnetError("this model is an RGB-D teacher: pass --depth-dir with one depth image per RGB image")
        depth_files = list_images(depth_dir, what="depth")
        missing = sorted(set(rgb_files) - set(depth_files))
        if missing:
            raise AclnetError(f"{depth_dir}: no depth image for {len(missing)} RGB image(s): {', '.join(missing[:10])}")
    return sorted(rgb_files), rgb_files, depth_files


def load_folder_arrays(rgb_path: Path, depth_path: Path | None, image_size: int, depth_polarity: str
                       ) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """One image (and depth) from files -> (rgb 3xSxS, depth 1xSxS float32, original (H, W)), through the
    same resize and normalisation as the prepared cache."""
    try:
        rgb = decode_rgb(read_bytes(rgb_path))
    except ImageProblem as err:
        raise AclnetError(f"{rgb_path}: {err}") from None
    depth = np.zeros(rgb.shape[:2], np.uint8)
    if depth_path is not None:
        try:
            depth_unit = decode_depth(read_bytes(depth_path), scale="auto", polarity=depth_polarity)
        except ImageProblem as err:
            raise AclnetError(f"{depth_path}: {err}") from None
        if depth_unit.shape != rgb.shape[:2]:
            depth_unit = cv2.resize(depth_unit, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_NEAREST)
        depth = np.round(depth_unit * 255).astype(np.uint8)  # the cache stores depth as uint8 too
    gt = np.zeros(rgb.shape[:2], np.uint8)  # unused placeholder: the resize rule takes all three
    rgb_f, depth_f, _ = normalize_arrays(*resize_sample(rgb, depth, gt, image_size))
    return rgb_f, depth_f, (int(rgb.shape[0]), int(rgb.shape[1]))


def folder_array_batches(rgb_dir: Path, depth_dir: Path | None, image_size: int, batch_size: int,
                         need_depth: bool, depth_polarity: str = "near_bright") -> tuple[int, Iterator[dict[str, Any]]]:
    """``(count, batches)`` from plain folders, paired by file stem, as numpy arrays ``{stems, sizes, rgb,
    depth?}``; each map keeps its own image's size (``sizes``). ``predict.folder_batches`` makes them tensors."""
    stems, rgb_files, depth_files = pair_folders(rgb_dir, depth_dir, need_depth)

    def batches() -> Iterator[dict[str, Any]]:
        for start in range(0, len(stems), batch_size):
            chunk = stems[start:start + batch_size]
            loaded = [load_folder_arrays(rgb_files[s], depth_files.get(s), image_size, depth_polarity)
                      for s in chunk]
            batch = {"stems": chunk, "sizes": [size for _, _, size in loaded],
                     "rgb": np.stack([rgb for rgb, _, _ in loaded])}
            if need_depth:
                batch["depth"] = np.stack([depth for _, depth, _ in loaded])
            yield batch

    return len(stems), batches()


def probs_to_maps(probs: np.ndarray, sizes: list[tuple[int, int]], protocol: str = "sigmoid") -> list[np.ndarray]:
    """``(B,1,S,S)`` probabilities in [0, 1] -> B uint8 maps, by the rules of ``predict.logits_to_maps``.

    The resize is cv2's bilinear on float32, the half-pixel rule of torch's ``align_corners=False``, so a
    map equals the checkpoint path's to float round-off (at most one grey level where a value sits on .5).
    """
    if protocol not in PROTOCOLS:
        raise AclnetError(f"unknown protocol {protocol!r} (expected one of {PROTOCOLS})")
    maps = []
    for prob, (height, width) in zip(np.asarray(probs, np.float32), sizes):
        prob = prob[0]
        if protocol == "sigmoid":
            if prob.shape != (height, width):
                prob = cv2.resize(prob, (width, height), interpolation=cv2.INTER_LINEAR)
        else:  # release_minmax: stretch each map to [0, 1] and keep the network size
            low, high = prob.min(), prob.max()
            prob = (prob - low) / (high - low) if high > low else np.zeros_like(prob)
        maps.append(np.round(np.clip(prob, 0, 1) * 255).astype(np.uint8))
    return maps
