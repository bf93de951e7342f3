"""The synthetic generators: deterministic, in the real layout, and with the intended character."""

from __future__ import annotations

import filecmp

import cv2
import numpy as np

from aclnet_kd import cli
from aclnet_kd.data import open_prepared
from aclnet_kd.data.synthetic_common import sample_rng
from aclnet_kd.data.synthetic_rail import generate_rail, render_rail
from aclnet_kd.data.synthetic_sod import STYLES, generate_sod, render_sod


def _same_tree(a, b) -> bool:
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    return files_a == files_b and all(filecmp.cmp(a / f, b / f, shallow=False) for f in files_a)


def test_rail_is_byte_identical_from_seed_and_in_the_real_layout(tmp_path):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        generate_rail(tmp_path / name, seed=seed, image_size=48, num_train=3, num_test=2)
    assert _same_tree(tmp_path / "a", tmp_path / "b")
    assert not _same_tree(tmp_path / "a", tmp_path / "c")
    assert sorted(p.name for p in (tmp_path / "a" / "train" / "d").iterdir())[0].endswith(".tiff")
    depth = cv2.imread(str(next((tmp_path / "a" / "test" / "d").iterdir())), cv2.IMREAD_UNCHANGED)
    assert depth.dtype == np.uint16   # 16-bit depth, like a line-scan 3-D sensor


def test_sod_is_byte_identical_from_seed_and_in_the_real_layout(tmp_path):
    for name in ("a", "b"):
        generate_sod(tmp_path / name, seed=1, image_size=48, num_train=2, num_test=2)
    assert _same_tree(tmp_path / "a", tmp_path / "b")
    for test_set in ("NJU2K", "NLPR", "STERE"):
        assert len(list((tmp_path / "a" / "test" / test_set / "RGB").glob("*.jpg"))) == 2


def test_rail_defects_are_varied_and_are_depressions_in_depth():
    kinds, small, drops = set(), 0, []
    for index in range(40):
        _, depth, gt, found = render_rail(sample_rng(0, "train", index), 128)
        kinds.update(found)
        mask = gt > 127
        assert found and mask.any()   # every image has a defect, as in the real set
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8))
        small += int((stats[1:, cv2.CC_STAT_AREA] < 40).sum())
        head = depth > 0.5   # compare with the surrounding rail head, not the far background
        ring = cv2.dilate(mask.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool) & ~mask & head
        drops.append(depth[ring].mean() - depth[mask].mean())
    assert kinds == {"scratch", "pit", "crack", "scar"}
    # Small defects still occur (fewer since the demo draws thin ones >= 2 px wide and pits >= 3 px across).
    assert small >= 3
    assert np.median(drops) > 0.015 and np.mean(np.array(drops) > 0) > 0.9


def _depth_roughness(style, count=8) -> float:
    values = []
    for index in range(count):
        _, depth, gt = render_sod(sample_rng(5, "train", index), 96, style)
        background = (gt == 0) & (depth > 0)
        values.append(np.abs(depth - cv2.GaussianBlur(depth, (0, 0), 3))[background].mean())
    return float(np.mean(values))


def test_sod_test_sets_differ_in_depth_quality():
    roughness = {name: _depth_roughness(style) for name, style in STYLES.items()}
    assert roughness["NLPR"] < roughness["NJU2K"] < roughness["STERE"]


def test_prepare_from_params_builds_both_synthetic_datasets(tmp_path):
    from params_helper import write_params

    params = write_params(tmp_path / "params.yaml", {"datasets": {
        "rail": {"source": "synthetic-rail", "seed": 0, "image_size": 64, "num_train": 8, "num_test": 3,
                 "val_size": 2, "cache_size": 48, "depth_polarity": "near_dark", "expected": {"train": 8, "test": 3}},
        "sod": {"source": "synthetic-sod", "seed": 1, "image_size": 64, "num_train": 6, "num_test": 2,
                "val_size": 1, "cache_size": 48}}})
    for name in ("rail", "sod"):
        code = cli.main(["prepare", "--params", str(params), "--dataset", name, "--out", str(tmp_path / "prep" / name),
                         "--raw-out", str(tmp_path / "raw" / name)])
        assert code == 0
    rail, sod = open_prepared(tmp_path / "prep" / "rail"), open_prepared(tmp_path / "prep" / "sod")
    assert rail.meta["synthetic"] and rail.meta["splits"] == {"train": 6, "val": 2, "test": 3}
    assert sod.meta["splits"] == {"train": 5, "val": 1, "NJU2K": 2, "NLPR": 2, "STERE": 2}
    assert sod.test_splits == ["NJU2K", "NLPR", "STERE"]
    # near_dark files, near-bright cache: the rail head (near) is brighter than the background.
    depth = rail.arrays("train")["depth"].astype(float)
    assert np.percentile(depth, 90) > 180
