"""aclnet evaluate: external maps, prepared GT, parallel == serial, and bad inputs that name the files."""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from aclnet_kd.cli import main as aclnet
from aclnet_kd.errors import AclnetError
from aclnet_kd.evaluate import evaluate as evaluate_stage
from aclnet_kd.evaluate.evaluate import GtFolder, match_files, score_maps
from aclnet_kd.evaluate.metrics import METRIC_KEYS, SODMetrics


def make_external(root: Path, count: int = 6) -> tuple[Path, Path]:
    """A folder of GT PNGs and a folder of 'published' maps: half perfect, half blurred."""
    rng = np.random.default_rng(1)
    gt_dir, pred_dir = root / "gt", root / "maps"
    gt_dir.mkdir(parents=True)
    pred_dir.mkdir(parents=True)
    for i in range(count):
        gt = np.zeros((30 + i, 40), np.uint8)
        gt[5:15 + i, 10:25] = 255
        pred = gt if i % 2 == 0 else cv2.GaussianBlur(gt, (9, 9), 3)
        pred = np.clip(pred.astype(int) + rng.integers(0, 20, pred.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(gt_dir / f"img{i}.png"), gt)
        cv2.imwrite(str(pred_dir / f"img{i}.png"), pred)
    return gt_dir, pred_dir


def run_eval(pred: Path, out: Path, *source: str, workers: int = 1) -> int:
    return aclnet(["evaluate", "--pred", str(pred), *source, "--out", str(out / "metrics.json"),
                   "--curves", str(out / "curves.csv"), "--per-image", str(out / "per_image.csv"),
                   "--workers", str(workers)])


def test_external_maps_match_direct_pysodmetrics(tmp_path: Path) -> None:
    gt_dir, pred_dir = make_external(tmp_path)
    assert run_eval(pred_dir, tmp_path / "out", "--gt-dir", str(gt_dir)) == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert list(metrics) == [*METRIC_KEYS, "provenance"]  # the metric keys flat, then where they came from

    expected = SODMetrics()
    for i in range(6):
        expected.step(cv2.imread(str(pred_dir / f"img{i}.png"), 0), cv2.imread(str(gt_dir / f"img{i}.png"), 0))
    for key, value in expected.results().items():
        assert metrics[key] == pytest.approx(value, abs=1e-6)

    with (tmp_path / "out" / "curves.csv").open() as handle:
        curves = list(csv.DictReader(handle))
    assert len(curves) == 256 and list(curves[0]) == ["threshold", "precision", "recall", "fmeasure", "emeasure"]
    assert max(float(r["fmeasure"]) for r in curves) == pytest.approx(metrics["maxF"], abs=1e-5)
    with (tmp_path / "out" / "per_image.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["stem"] for r in rows] == [f"img{i}" for i in range(6)]
    assert np.mean([float(r["MAE"]) for r in rows]) == pytest.approx(metrics["MAE"], abs=1e-5)


def test_parallel_equals_serial(tmp_path: Path) -> None:
    gt_dir, pred_dir = make_external(tmp_path, count=9)
    source = GtFolder(gt_dir)
    jobs = [(s, pred_dir / f"{s}.png") for s in source.stems()]
    serial = score_maps(jobs, source, workers=1)
    parallel = score_maps(jobs, source, workers=2)
    assert parallel.results() == serial.results()
    np.testing.assert_array_equal(parallel.per_image()["Sm"], serial.per_image()["Sm"])


def test_prepared_gt_and_resized_maps(tmp_path: Path, tiny_prepared: Path) -> None:
    from aclnet_kd.data import open_prepared

    prepared = open_prepared(tiny_prepared)
    pred_dir = tmp_path / "maps"
    pred_dir.mkdir()
    for stem in prepared.ids("test"):
        gt = prepared.gt_original("test", stem)
        # network-size square maps, as release_minmax writes them: evaluate resizes them to the GT
        cv2.imwrite(str(pred_dir / f"{stem}.png"), cv2.resize(gt, (64, 64), interpolation=cv2.INTER_NEAREST))
    assert run_eval(pred_dir, tmp_path / "out", "--gt", str(tiny_prepared), "--split", "test") == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["Sm"] > 0.9 and metrics["MAE"] < 0.05


def test_evaluate_on_prepared_gt_starts_without_torch(tmp_path: Path, tiny_prepared: Path) -> None:
    # Each predict_evaluate job starts a fresh process: importing torch for the GT alone cost ~2 s of ~4.
    from aclnet_kd.data import open_prepared

    prepared = open_prepared(tiny_prepared)
    pred_dir = tmp_path / "maps"
    pred_dir.mkdir()
    for stem in prepared.ids("test"):
        cv2.imwrite(str(pred_dir / f"{stem}.png"), prepared.gt_original("test", stem))
    argv = ["evaluate", "--pred", str(pred_dir), "--gt", str(tiny_prepared), "--split", "test",
            "--out", str(tmp_path / "m.json"), "--curves", str(tmp_path / "c.csv"),
            "--per-image", str(tmp_path / "p.csv"), "--workers", "1"]
    code = (f"import sys; from aclnet_kd.cli import main; rc = main({argv!r}); "
            "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(rc)")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert json.loads((tmp_path / "m.json").read_text())["Sm"] > 0.99


def test_missing_and_extra_maps_are_named(tmp_path: Path, capsys) -> None:
    gt_dir, pred_dir = make_external(tmp_path)
    (pred_dir / "img3.png").unlink()
    cv2.imwrite(str(pred_dir / "stray.png"), np.zeros((5, 5), np.uint8))
    assert run_eval(pred_dir, tmp_path / "out", "--gt-dir", str(gt_dir)) == 2
    err = capsys.readouterr().err
    assert "img3.png" in err and "stray.png" in err
    assert not (tmp_path / "out").exists()


def test_irreconcilable_size_is_named(tmp_path: Path) -> None:
    gt_dir, pred_dir = make_external(tmp_path)
    cv2.imwrite(str(pred_dir / "img2.png"), np.zeros((200, 10), np.uint8))  # a strip, not the picture
    args = argparse.Namespace(pred=pred_dir, gt=None, gt_dir=gt_dir, split=None, out=tmp_path / "m.json",
                              curves=None, per_image=None, workers=1)
    with pytest.raises(AclnetError, match=r"img2\.png: map is 200x10 .* ground truth is 32x40"):
        evaluate_stage.main(args)
    assert not (tmp_path / "m.json").exists()


def test_unreadable_map_is_named(tmp_path: Path, capsys) -> None:
    gt_dir, pred_dir = make_external(tmp_path)
    (pred_dir / "img4.png").write_bytes(b"not a png")
    assert run_eval(pred_dir, tmp_path / "out", "--gt-dir", str(gt_dir), workers=2) == 2
    assert "img4.png: unreadable" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_colour_map_is_refused(tmp_path: Path, capsys) -> None:
    gt_dir, pred_dir = make_external(tmp_path)
    colour = np.zeros((30, 40, 3), np.uint8)
    colour[..., 2] = 255
    cv2.imwrite(str(pred_dir / "img0.png"), colour)
    assert run_eval(pred_dir, tmp_path / "out", "--gt-dir", str(gt_dir)) == 2
    assert "img0.png: a colour image" in capsys.readouterr().err


def test_match_files_lists_both_sides() -> None:
    with pytest.raises(AclnetError, match="1 ground-truth image.*b.png.*1 map.*c.png"):
        match_files({"a": Path("p/a.png"), "c": Path("p/c.png")}, ["a", "b"], Path("p"), "gt/")


def test_binary_metrics_at_the_recorded_operating_point(tmp_path: Path, capsys) -> None:
    gt, pred = make_external(tmp_path)
    record = tmp_path / "run.json"
    record.write_text(json.dumps({"operating_point": {"threshold": 0.5, "min_area": 0, "rule": "max_f"}}))
    out = tmp_path / "metrics.json"
    assert aclnet(["evaluate", "--pred", str(gt), "--gt-dir", str(gt), "--out", str(out), "--workers", "1",
                   "--run-record", str(record)]) == 0
    metrics = json.loads(out.read_text())
    assert set(METRIC_KEYS) < set(metrics)  # the threshold-free metrics stay
    # the GT as its own prediction: every binary score is perfect and every defect found
    assert metrics["op_threshold"] == 0.5 and metrics["op_IoU"] == metrics["op_Dice"] == 1.0
    assert metrics["op_precision"] == metrics["op_recall"] == metrics["op_detection_rate"] == 1.0
    assert metrics["op_false_defects"] == 0 and metrics["op_gt_defects"] >= 6
    # against direct PySODMetrics on the thresholded maps (pooled counts)
    import py_sod_metrics as psm

    from aclnet_kd.evaluate.io import list_images, read_gray_map

    assert aclnet(["evaluate", "--pred", str(pred), "--gt-dir", str(gt), "--out", str(out), "--workers", "1",
                   "--run-record", str(record)]) == 0
    metrics = json.loads(out.read_text())
    direct = psm.FmeasureV2(metric_handlers={"iou": psm.IOUHandler(False, False, with_binary=True,
                                                                   sample_based=False)})
    preds, gts = list_images(pred), list_images(gt)
    for stem in sorted(gts):
        direct.step((read_gray_map(preds[stem]) >= 128).astype(float), read_gray_map(gts[stem]) > 128,
                    normalize=False)
    assert metrics["op_IoU"] == pytest.approx(float(direct.get_results()["iou"]["binary"]), abs=1e-6)
    assert 0 < metrics["op_IoU"] < 1
    record.write_text(json.dumps({"operating_point": {"threshold": None, "reason": "paper selection"}}))
    assert aclnet(["evaluate", "--pred", str(pred), "--gt-dir", str(gt), "--out", str(out), "--workers", "1",
                   "--run-record", str(record)]) == 0
    assert "records no operating point (paper selection)" in capsys.readouterr().out
    assert not any(key.startswith("op_") for key in json.loads(out.read_text()))
