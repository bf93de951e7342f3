"""``synthetic-sod``: a procedural stand-in for RGB-D salient object detection (NJU2K, NLPR, STERE).

A scene is a wall-and-floor background (depth: a far wall and a floor that comes closer towards the
bottom), non-salient clutter lying on that background, and one or two salient objects standing clearly
in front of it (GT = 1), shaded as 3-D bodies with a rounded depth profile. Some objects are camouflaged
in colour, so depth again carries information RGB lacks.

The three test sets differ in character, like the real ones:
    NJU2K  medium clutter, medium-quality depth (noise and blur), larger objects
    NLPR   low clutter, clean Kinect-like depth with holes, smaller objects, indoor lighting
    STERE  heavy clutter, poor stereo depth (strong noise, blur, misalignment), more camouflage
Training mixes NJU2K- and NLPR-like scenes (the paper trains on NJU2K + NLPR).

Layout written (the real one): ``ROOT/train/{RGB,depth,GT}``, ``ROOT/test/<SET>/{RGB,depth,GT}``;
RGB .jpg, 8-bit depth .png, GT .png.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from aclnet_kd.data.synthetic_common import (
    blob_polygon, encode_depth, fill_mask, sample_rng, smooth_noise, soft, staged_dir,
    write_split,
)

TEST_SETS = ("NJU2K", "NLPR", "STERE")
MUTED = (10, 90)     # saturation range of walls, floors and clutter
VIVID = (140, 250)   # saturation range of (not camouflaged) salient objects
REFERENCE_SIZE = 256  # the styles' pixel figures (depth blur, shift) are for this side; scaled to others


@dataclass(frozen=True)
class SceneStyle:
    clutter: tuple[int, int]        # number of background clutter items
    depth_noise: float              # std of additive depth noise
    depth_blur: float               # sigma of depth blur (stereo smoothing)
    depth_shift: int                # max misalignment of depth vs RGB, pixels
    depth_holes: int                # max number of missing-depth holes (Kinect)
    camouflage: float               # probability the object's colour is close to the background's
    object_scale: tuple[float, float]


STYLES = {
    "NJU2K": SceneStyle((4, 9), 0.025, 2.0, 2, 0, 0.15, (0.16, 0.30)),
    "NLPR": SceneStyle((1, 4), 0.008, 0.8, 0, 4, 0.1, (0.12, 0.22)),
    "STERE": SceneStyle((9, 16), 0.05, 4.0, 6, 1, 0.25, (0.13, 0.28)),
}


def _color(rng: np.random.Generator, saturation: tuple[int, int] = (40, 230),
           value: tuple[int, int] = (60, 240)) -> np.ndarray:
    hsv = np.uint8([[[rng.integers(0, 180), rng.integers(*saturation), rng.integers(*value)]]])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def _textured(rng: np.random.Generator, size: int, base: np.ndarray, strength: float) -> np.ndarray:
    cells = int(rng.integers(4, 40))
    pattern = smooth_noise(rng, size, size, cells, cells)
    if rng.random() < 0.4:   # stripes
        ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
        angle, period = rng.uniform(0, math.pi), rng.uniform(6, 30)
        pattern += 1.5 * np.sin((xs * math.cos(angle) + ys * math.sin(angle)) * 2 * math.pi / period)
    tint = 1.0 + 0.2 * rng.standard_normal(3).astype(np.float32)
    return base[None, None, :] * (1.0 + strength * pattern[..., None] * tint[None, None, :] / 3.0)


def _shape_mask(rng: np.random.Generator, size: int, center: tuple[float, float], radius: float) -> np.ndarray:
    """An object silhouette: a body blob plus a few attached parts (head, limbs, handles...)."""
    polygons = [blob_polygon(rng, center, radius, roughness=0.3, aspect=rng.uniform(0.5, 1.6),
                             angle=rng.uniform(0, math.pi))]
    for _ in range(rng.integers(0, 4)):
        angle = rng.uniform(0, 2 * math.pi)
        offset = radius * rng.uniform(0.6, 1.1)
        part = (center[0] + offset * math.cos(angle), center[1] + offset * math.sin(angle))
        polygons.append(blob_polygon(rng, part, radius * rng.uniform(0.25, 0.55), roughness=0.3,
                                     aspect=rng.uniform(0.4, 2.5), angle=rng.uniform(0, math.pi)))
    return fill_mask((size, size), polygons)


def render_sod(rng: np.random.Generator, size: int, style: SceneStyle) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One scene: RGB uint8 (S,S,3), depth float32 (S,S) in [0,1] near = bright, GT uint8 {0,255}."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    horizon = size * rng.uniform(0.35, 0.7)
    floor = 1.0 / (1.0 + np.exp(np.clip((horizon - ys) / 2.0, -30, 30)))
    wall_color, floor_color = _color(rng, MUTED), _color(rng, MUTED)
    rgb = ((1 - floor)[..., None] * _textured(rng, size, wall_color, rng.uniform(0.1, 0.5))
           + floor[..., None] * _textured(rng, size, floor_color, rng.uniform(0.1, 0.5)))
    depth = 0.12 + 0.05 * smooth_noise(rng, size, size, 3, 3) + floor * 0.4 * np.clip((ys - horizon) / (size - horizon), 0, 1)

    # Clutter: on (or just off) the background, so it has little depth contrast. In RGB it is flat (no
    # shading, no highlight) and muted in colour: the cue that tells it from the salient objects.
    for _ in range(rng.integers(*style.clutter)):
        radius = size * rng.uniform(0.03, 0.14)
        center = (rng.uniform(0, size), rng.uniform(0, size))
        mask = soft(fill_mask((size, size), [blob_polygon(rng, center, radius, 0.3, rng.uniform(0.3, 3),
                                                          rng.uniform(0, 3.2))]), 0.8)
        rgb = rgb * (1 - mask[..., None]) + mask[..., None] * _textured(rng, size, _color(rng, MUTED), 0.3)
        depth += mask * rng.uniform(0.0, 0.08)

    gt = np.zeros((size, size), np.uint8)
    background_mean = rgb.reshape(-1, 3).mean(0)
    for _ in range(1 if rng.random() < 0.8 else 2):
        radius = size * rng.uniform(*style.object_scale)
        center = (rng.uniform(0.25, 0.75) * size, rng.uniform(0.3, 0.75) * size)
        mask_u8 = _shape_mask(rng, size, center, radius)
        inside = cv2.distanceTransform((mask_u8 > 127).astype(np.uint8), cv2.DIST_L2, 3)
        dome = np.clip(inside / max(2.0, inside.max()), 0, 1) ** 0.5
        alpha = soft(mask_u8, 0.7)
        camouflaged = rng.random() < style.camouflage
        base = (background_mean * rng.uniform(0.85, 1.15, 3).astype(np.float32) if camouflaged
                else _color(rng, VIVID, (110, 250)))
        # Shade like a lit 3-D body: brighter towards the light, darker at the rim, with a specular spot.
        # Camouflaged objects keep this shading: their only RGB cue, weaker than the depth step.
        light = np.array([rng.uniform(-1, 1), rng.uniform(-1, 0)], np.float32)
        shading = 0.6 + 0.4 * dome + 0.15 * ((xs - center[0]) * light[0] + (ys - center[1]) * light[1]) / radius
        body = _textured(rng, size, base, rng.uniform(0.05, 0.3)) * np.clip(shading, 0.4, 1.3)[..., None]
        spot = (center[0] + 0.4 * radius * light[0], center[1] + 0.4 * radius * light[1])
        body += 90.0 * np.exp(-((xs - spot[0]) ** 2 + (ys - spot[1]) ** 2) / (0.3 * radius) ** 2)[..., None]
        rgb = rgb * (1 - alpha[..., None]) + alpha[..., None] * body
        near = rng.uniform(0.65, 0.9)
        depth = depth * (1 - alpha) + alpha * (near + 0.08 * dome)
        gt = np.maximum(gt, np.where(mask_u8 > 127, 255, 0).astype(np.uint8))

    # Scene lighting and camera noise.
    rgb *= (1.0 + 0.25 * smooth_noise(rng, size, size, 2, 2))[..., None]
    rgb += rng.uniform(2, 6) * rng.standard_normal((size, size, 3)).astype(np.float32)

    # Depth quality: the sensor's character.
    scale = size / REFERENCE_SIZE
    if style.depth_blur > 0:
        depth = cv2.GaussianBlur(depth, (0, 0), max(0.5, style.depth_blur * scale))
    shift = int(round(style.depth_shift * scale))
    if shift:
        dx, dy = rng.integers(-shift, shift + 1, 2)
        depth = np.roll(depth, (int(dy), int(dx)), axis=(0, 1))
    depth += style.depth_noise * smooth_noise(rng, size, size, size // 4, size // 4)
    depth += 0.3 * style.depth_noise * rng.standard_normal((size, size)).astype(np.float32)
    for _ in range(rng.integers(0, style.depth_holes + 1)):
        hole = fill_mask((size, size), [blob_polygon(rng, (rng.uniform(0, size), rng.uniform(0, size)),
                                                     size * rng.uniform(0.01, 0.05), 0.5)])
        depth[hole > 127] = 0.0
    return (np.clip(rgb, 0, 255).astype(np.uint8), np.clip(depth, 0, 1).astype(np.float32), gt)


def _train_style(rng: np.random.Generator) -> SceneStyle:
    return STYLES["NJU2K" if rng.random() < 0.6 else "NLPR"]


def generate_sod(out_root: str | Path, *, seed: int = 1, image_size: int = 256, num_train: int = 120,
                 num_test: int = 30, depth_polarity: str = "near_bright", workers: int = 2) -> Path:
    """Write ``out_root/train/{RGB,depth,GT}`` and ``out_root/test/<SET>/{RGB,depth,GT}``."""
    out_root = Path(out_root)
    with staged_dir(out_root) as tmp:
        jobs = [("train", tmp / "train", num_train)] + [(name, tmp / "test" / name, num_test) for name in TEST_SETS]
        for split, split_dir, count in jobs:
            def render(index: int, split: str = split):
                rng = sample_rng(seed, split, index)
                style = _train_style(rng) if split == "train" else STYLES[split]
                rgb, depth, gt = render_sod(rng, image_size, style)
                return rgb, encode_depth(depth, depth_polarity, bits=8), gt
            write_split(split_dir, ("RGB", "depth", "GT"), (".jpg", ".png", ".png"), count, render,
                        prefix=f"{split.lower()}_", workers=workers)
    return out_root
