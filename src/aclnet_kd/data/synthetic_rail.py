"""``synthetic-rail``: a procedural stand-in for NEU RSDDS-AUG (no-service rail top surfaces, RGB-D).

Each image shows a rail head seen from above: a metallic band with longitudinal grinding marks, rust
mottling (the rail is out of service), a specular strip on the crown, an illumination gradient and
sensor noise, next to the dark, far-away background. Its depth map is the convex rail crown.

Defects (GT = 1) are scratches, pits/spalling, cracks and scars, from a few pixels to a sizeable part of
the head; every image has at least one, as in the real set (a defect-free image scores F = 0 whatever is
predicted, so each one would cap the dataset-mean maxF). Every defect is a *depression in depth*. In RGB
some of them are faint, and the RGB image also carries stains, shadows and reflections that have *no* depth
signature. So depth carries information RGB does not: the asymmetry that lets an RGB-D teacher know more
than an RGB student (tests/data/test_depth_matters.py measures it).

The generator writes the real layout, ``ROOT/{train,test}/{rgb,d,gt}`` (RGB .bmp, 16-bit depth .tiff,
GT .png), so the synthetic data goes through the same adapter as the real dataset.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from aclnet_kd.data.synthetic_common import (
    blob_polygon, encode_depth, fill_mask, sample_rng, smooth_noise, soft, staged_dir,
    write_split,
)

DEFECT_KINDS = ("scratch", "pit", "crack", "scar")
# Mostly area defects (pits, spalling, scars), as on the real no-service rails; the thin ones are drawn at
# least 2 px wide so a network with a stride-4 first stage still resolves them at the demo's 64 px.
KIND_PROB = (0.2, 0.4, 0.1, 0.3)
MIN_PIT_RADIUS = 3.0
REFERENCE_SIZE = 256    # pit and scar radii are given in pixels at this side, scaled by (size / 256) ** 0.25:
                        # relatively larger in smaller images, so a 64 px network still sees them
P_FAINT = 0.1           # defects whose RGB contrast is low (depth still shows them)
METAL_TINT = np.array([0.98, 1.0, 1.04], np.float32)   # cold steel grey
RUST_TINT = np.array([1.1, 0.88, 0.72], np.float32)   # no-service rail: brownish oxide


@lru_cache(maxsize=4)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    return ys, xs


class _Canvas:
    """The images being drawn for one sample, in a frame where the rail runs along x."""

    def __init__(self, rng: np.random.Generator, size: int):
        self.rng, self.size = rng, size
        self.scale = (size / REFERENCE_SIZE) ** 0.25
        ys, xs = _grid(size)
        self.center = size * (0.5 + rng.uniform(-0.1, 0.1))
        self.half_width = size * rng.uniform(0.27, 0.45)
        tilt = rng.uniform(-0.04, 0.04)
        offset = ys - (self.center + tilt * (xs - size / 2))
        edge = rng.uniform(1.5, 4.0)
        self.band = 1.0 / (1.0 + np.exp(-(self.half_width - np.abs(offset)) / edge))
        self.across = np.clip(offset / self.half_width, -1.5, 1.5)   # -1..1 over the head
        self.luma = np.zeros((size, size), np.float32)
        self.rust = np.zeros((size, size), np.float32)
        self.depth = np.zeros((size, size), np.float32)
        self.gt = np.zeros((size, size), np.uint8)
        self.kinds: list[str] = []

    def random_point_on_head(self, margin: float = 0.85) -> tuple[float, float]:
        x = self.rng.uniform(0.06, 0.94) * self.size
        y = self.center + self.rng.uniform(-margin, margin) * self.half_width
        return x, y


def _surface(c: _Canvas) -> None:
    rng, size = c.rng, c.size
    # Depth: convex crown on the head, far and rough beside it.
    crown = np.clip(1.0 - c.across ** 2, 0.0, 1.0)
    head_depth = 0.74 + 0.14 * crown + 0.01 * smooth_noise(rng, size, size, 3, 3)
    ground = 0.18 + 0.05 * smooth_noise(rng, size, size, 12, 12)
    c.depth = c.band * head_depth + (1.0 - c.band) * ground

    # Grinding marks: streaks along the running direction at a small angle, plus a few sharp lines.
    big = int(size * 1.5)
    streaks = (rng.uniform(5, 12) * smooth_noise(rng, big, big, big // 2, 5)
               + rng.uniform(2, 6) * rng.standard_normal((big, 1)).astype(np.float32))
    angle = rng.uniform(-14, 14)
    rot = cv2.getRotationMatrix2D((big / 2, big / 2), angle, 1.0)
    rot[:, 2] -= (big - size) / 2
    streaks = cv2.warpAffine(streaks, rot, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    lines = np.zeros((size, size), np.float32)
    for _ in range(rng.integers(3, 12)):
        y0 = rng.uniform(0, size)
        slope = math.tan(math.radians(angle + rng.normal(0, 3)))
        x0, x1 = rng.uniform(-0.2, 0.6) * size, rng.uniform(0.5, 1.2) * size
        cv2.line(lines, (int(x0), int(y0 - slope * (x0 - size / 2))), (int(x1), int(y0 - slope * (x1 - size / 2))),
                 float(rng.choice([-1, 1]) * rng.uniform(6, 16)), 1, cv2.LINE_AA)

    metal = rng.uniform(110, 170)
    specular = rng.uniform(10, 45) * np.exp(-((c.across - rng.uniform(-0.3, 0.3)) / rng.uniform(0.15, 0.4)) ** 2)
    head = metal + streaks + lines + specular
    gravel = cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32), (0, 0), 2.0)
    ground_luma = rng.uniform(25, 55) + 40 * gravel + 8 * smooth_noise(rng, size, size, 5, 5)
    c.luma = c.band * head + (1.0 - c.band) * ground_luma

    # No-service rails rust in patches; the amount varies a lot between images.
    rust_level = rng.uniform(0.0, 0.35)
    mottle = smooth_noise(rng, size, size, 8, 14) + 0.5 * smooth_noise(rng, size, size, 24, 40)
    c.rust = np.clip(rust_level * (0.5 + 0.6 * mottle), 0.0, 1.0)


def _apply_defect(c: _Canvas, kind: str, mask: np.ndarray, drop: float, rgb_sigma: float = 0.8,
                  depth_profile: np.ndarray | None = None, brighten: bool = False) -> bool:
    """Stamp one defect: GT, a depression in depth, and an RGB mark that is sometimes faint."""
    rng = c.rng
    mask = np.where(c.band > 0.6, mask, 0).astype(np.uint8)   # defects live on the rail head
    if np.count_nonzero(mask > 127) < 4:
        return False
    profile = depth_profile if depth_profile is not None else soft(mask, 0.7)
    c.depth -= drop * profile * c.band
    contrast = rng.uniform(0.3, 0.45) if rng.random() < P_FAINT else rng.uniform(0.6, 1.0)
    mark = soft(mask, rgb_sigma)
    # Broken metal is rough: a grainy texture inside the mark, the RGB cue that stains (smooth) lack.
    texture = 1.0 + 0.45 * rng.standard_normal(mark.shape).astype(np.float32) * (mark > 0.05)
    if brighten:
        c.luma += contrast * rng.uniform(25, 45) * mark * texture
    else:
        c.luma *= 1.0 - contrast * rng.uniform(0.6, 0.85) * mark * texture
        c.rust = np.maximum(c.rust, 0.9 * contrast * mark)  # the bottom of a defect oxidises
    c.gt = np.maximum(c.gt, np.where(mask > 127, 255, 0).astype(np.uint8))
    c.kinds.append(kind)
    return True


def _scratch(c: _Canvas) -> bool:
    rng, size = c.rng, c.size
    x, y = c.random_point_on_head()
    angle = rng.uniform(-0.9, 0.9) + (math.pi / 2 if rng.random() < 0.25 else 0.0)
    length = rng.uniform(0.15, 0.5) * size   # >= ~10 px at 64 px: a shorter one is a dot
    points = [(x, y)]
    for _ in range(rng.integers(1, 4)):
        angle += rng.normal(0, 0.15)
        step = length / 3
        x, y = x + step * math.cos(angle), y + step * math.sin(angle)
        points.append((x, y))
    mask = np.zeros((size, size), np.uint8)
    cv2.polylines(mask, [np.round(np.array(points)).astype(np.int32).reshape(-1, 1, 2)], False, 255,
                  int(rng.integers(2, 5)), cv2.LINE_AA)
    return _apply_defect(c, "scratch", mask, rng.uniform(0.06, 0.12))


def _pit(c: _Canvas) -> bool:
    """A pit, or spalling: a cluster of pits. Many are small (a few pixels across)."""
    rng = c.rng
    radius = float(rng.choice([rng.uniform(1.5, 4), rng.uniform(4, 10), rng.uniform(10, 24)], p=[0.1, 0.5, 0.4]))
    radius = max(MIN_PIT_RADIUS, radius * c.scale)
    x, y = c.random_point_on_head(0.75)
    polygons = [blob_polygon(rng, (x, y), radius, roughness=0.4, aspect=rng.uniform(0.7, 1.6),
                             angle=rng.uniform(0, math.pi))]
    for _ in range(rng.integers(0, 4) if radius > 4 else 0):   # spalling
        polygons.append(blob_polygon(rng, (x + rng.normal(0, 1.5 * radius), y + rng.normal(0, radius)),
                                     radius * rng.uniform(0.3, 0.7), roughness=0.5))
    mask = fill_mask((c.size, c.size), polygons)
    # Bowl: deeper towards the inside, so the depth edge follows the GT edge.
    inside = cv2.distanceTransform((mask > 127).astype(np.uint8), cv2.DIST_L2, 3)
    bowl = np.clip(inside / max(1.0, 0.4 * radius), 0.0, 1.0) ** 0.6
    bowl = cv2.GaussianBlur(bowl, (0, 0), 0.6)
    return _apply_defect(c, "pit", mask, rng.uniform(0.09, 0.2), depth_profile=bowl)


def _crack(c: _Canvas) -> bool:
    """A thin, jagged line, mostly across the running direction (like head checks), sometimes branched."""
    rng, size = c.rng, c.size
    mask = np.zeros((size, size), np.uint8)
    x, y = c.random_point_on_head(0.7)
    angle = math.pi / 2 + rng.uniform(-0.7, 0.7)
    length = rng.uniform(0.08, 0.45) * size
    for branch in range(1 + int(rng.random() < 0.35)):
        px, py, heading = x, y, angle + (rng.uniform(0.5, 1.0) * rng.choice([-1, 1]) if branch else 0.0)
        points = [(px, py)]
        for _ in range(max(3, int(length / 4))):
            heading += rng.normal(0, 0.35)
            px, py = px + 4 * math.cos(heading), py + 4 * math.sin(heading)
            points.append((px, py))
        cv2.polylines(mask, [np.round(np.array(points)).astype(np.int32).reshape(-1, 1, 2)], False, 255,
                      int(rng.choice([2, 2, 3])), cv2.LINE_AA)
        length *= 0.5
    return _apply_defect(c, "crack", mask, rng.uniform(0.08, 0.16), rgb_sigma=0.6)


def _scar(c: _Canvas) -> bool:
    """A wheel-burn or abrasion scar: a shallow, elongated patch whose texture differs from the steel."""
    rng = c.rng
    x, y = c.random_point_on_head(0.6)
    radius = rng.uniform(6, 20) * c.scale
    polygon = blob_polygon(rng, (x, y), radius, roughness=0.3, aspect=rng.uniform(1.5, 3.5),
                           angle=rng.uniform(-0.6, 0.6) + (math.pi / 2 if rng.random() < 0.4 else 0.0))
    mask = fill_mask((c.size, c.size), [polygon])
    profile = soft(mask, 1.5)
    return _apply_defect(c, "scar", mask, rng.uniform(0.05, 0.1), rgb_sigma=1.5, depth_profile=profile,
                         brighten=bool(rng.random() < 0.25))


def _distractors(c: _Canvas) -> None:
    """RGB-only clutter: stains (incl. pit-sized dark dots), shadows and reflections. Depth is untouched."""
    rng, size = c.rng, c.size
    ys, xs = _grid(size)
    for _ in range(rng.integers(0, 4)):
        kind = rng.choice(["stain", "dot", "shadow", "reflection"], p=[0.4, 0.1, 0.25, 0.25])
        if kind in ("stain", "dot"):
            radius = rng.uniform(8, 35) if kind == "stain" else rng.uniform(1.5, 5)
            x, y = c.random_point_on_head(1.0)
            blob = soft(fill_mask((size, size), [blob_polygon(rng, (x, y), radius, 0.5, rng.uniform(0.6, 2.0),
                                                               rng.uniform(0, 3.2))]),
                        radius * rng.uniform(0.3, 0.6) if kind == "stain" else 0.7)   # smooth, soft-edged
            c.luma *= 1.0 - rng.uniform(0.15, 0.45) * blob
            c.rust = np.maximum(c.rust, rng.uniform(0.3, 1.0) * blob)
        elif kind == "shadow":
            angle = rng.uniform(0, 2 * math.pi)
            distance = (xs - size / 2) * math.cos(angle) + (ys - size / 2) * math.sin(angle) - rng.uniform(-0.3, 0.3) * size
            c.luma *= 1.0 - rng.uniform(0.2, 0.5) / (1.0 + np.exp(-distance / rng.uniform(4, 20)))
        else:
            x, y = c.random_point_on_head(0.9)
            long, short = rng.uniform(10, 60), rng.uniform(2, 8)
            c.luma += rng.uniform(30, 80) * np.exp(-((xs - x) / long) ** 2 - ((ys - y) / short) ** 2)


def render_rail(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """One sample: RGB uint8 (S,S,3), depth float32 (S,S) in [0,1] near = bright, GT uint8 {0,255}, kinds."""
    c = _Canvas(rng, size)
    _surface(c)
    makers = {"scratch": _scratch, "pit": _pit, "crack": _crack, "scar": _scar}
    wanted, tries = int(rng.integers(1, 4)), 0
    while (len(c.kinds) < wanted and tries < 12) or (not c.kinds and tries < 100):   # at least one
        makers[str(rng.choice(DEFECT_KINDS, p=KIND_PROB))](c)
        tries += 1
    _distractors(c)

    # Illumination: a global gradient and a soft uneven field, multiplicative (light, not paint).
    ys, xs = _grid(size)
    light = (1.0 + rng.uniform(-0.35, 0.35) * (xs / size - 0.5) + rng.uniform(-0.35, 0.35) * (ys / size - 0.5)
             + 0.08 * smooth_noise(rng, size, size, 4, 4))
    tint = (1.0 - c.rust)[..., None] * METAL_TINT + c.rust[..., None] * RUST_TINT
    rgb = (c.luma * light)[..., None] * tint
    rgb += rng.uniform(2.0, 5.0) * rng.standard_normal((size, size, 1)).astype(np.float32)  # shot noise
    rgb += 1.5 * rng.standard_normal((size, size, 3)).astype(np.float32)                     # colour noise
    depth = c.depth + rng.uniform(0.003, 0.008) * rng.standard_normal((size, size)).astype(np.float32)
    depth += 0.003 * rng.standard_normal((size, 1)).astype(np.float32)   # line-scan row offsets
    gt = c.gt
    if rng.random() < 0.5:   # the rail runs vertically in half of the images
        rgb, depth, gt = rgb.transpose(1, 0, 2), depth.T, gt.T
    return (np.clip(rgb, 0, 255).astype(np.uint8), np.clip(depth, 0, 1).astype(np.float32),
            np.ascontiguousarray(gt), c.kinds)


def generate_rail(out_root: str | Path, *, seed: int = 0, image_size: int = 256, num_train: int = 120,
                  num_test: int = 40, depth_polarity: str = "near_bright", workers: int = 2) -> Path:
    """Write ``out_root/{train,test}/{rgb,d,gt}`` (replacing an older copy only once complete)."""
    out_root = Path(out_root)
    with staged_dir(out_root) as tmp:
        for split, count in (("train", num_train), ("test", num_test)):
            def render(index: int, split: str = split):
                rgb, depth, gt, _ = render_rail(sample_rng(seed, split, index), image_size)
                return rgb, encode_depth(depth, depth_polarity), gt
            write_split(tmp / split, ("rgb", "d", "gt"), (".bmp", ".tiff", ".png"), count, render,
                        prefix=f"rail_{split}_", workers=workers)
    return out_root
