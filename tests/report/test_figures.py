"""aclnet figures: every figure is written as a valid, non-blank PNG (and a PDF)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from aclnet_kd.cli import main as aclnet
from record_helper import run_record_json

RUNS = ("teacher", "student", "student_kd")


def build_results(root: Path) -> Path:
    """A tiny prepared dataset, maps for T/S/S*, their evaluation and fake dvclive logs."""
    rng = np.random.default_rng(0)
    raw = root / "raw"
    for split, count in (("train", 1), ("test", 3)):
        for sub in ("rgb", "d", "gt"):
            (raw / split / sub).mkdir(parents=True)
        for i in range(count):
            gt = np.zeros((36, 48), np.uint8)
            gt[8:20 + i, 12:30] = 255
            cv2.imwrite(str(raw / split / "rgb" / f"{split}{i}.bmp"),
                        np.clip(rng.normal(90, 15, (36, 48, 3)) + gt[..., None] * 0.5, 0, 255).astype(np.uint8))
            cv2.imwrite(str(raw / split / "d" / f"{split}{i}.png"), gt // 2 + 40)
            cv2.imwrite(str(raw / split / "gt" / f"{split}{i}.png"), gt)
    assert aclnet(["prepare", "--layout", "rail", "--root", str(raw), "--out",
                   str(root / "data" / "tiny-rail"), "--cache-size", "32"]) == 0
    for k, run in enumerate(RUNS):
        pred = root / "predict" / "rail" / run / "seed0" / "test"
        pred.mkdir(parents=True)
        for i in range(3):
            gt = cv2.imread(str(raw / "test" / "gt" / f"test{i}.png"), 0)
            noisy = cv2.GaussianBlur(gt, (7, 7), 1 + k) * 0.8 + rng.integers(0, 40, gt.shape)
            cv2.imwrite(str(pred / f"test{i}.png"), np.clip(noisy, 0, 255).astype(np.uint8))
        out = root / "evaluate" / "rail" / run / "seed0" / "test"
        assert aclnet(["evaluate", "--pred", str(pred), "--gt", str(root / "data" / "tiny-rail"), "--split", "test",
                       "--out", str(out / "metrics.json"), "--curves", str(out / "curves.csv"),
                       "--per-image", str(out / "per_image.csv"), "--workers", "1"]) == 0
        train = root / "train" / "rail" / run / "seed0"
        (train / "dvclive" / "plots" / "metrics" / "train").mkdir(parents=True)
        (train / "dvclive" / "plots" / "metrics" / "train" / "loss.tsv").write_text(
            "step\tloss\n" + "".join(f"{s}\t{1.5 / (s + 1) + 0.1 * k}\n" for s in range(4)))
        (train / "dvclive" / "plots" / "metrics" / "val_mae.tsv").write_text(
            "timestamp\tstep\tval_mae\n" + "".join(f"0\t{s}\t{0.3 / (s + 1)}\n" for s in range(4)))
        (train / "run.json").write_text(run_record_json(dataset="tiny-rail", synthetic=True, selected_epoch=4,
                                                        epochs=4, epochs_done=4))
    params = root / "params.yaml"
    from params_helper import write_params

    write_params(params, {"seeds": [0], "figures": {"qualitative_images": 2},
                          "datasets": {"tiny-rail": {"source": "synthetic-rail"}},
                          "tracks": {"rail": {"dataset": "tiny-rail", "test_splits": ["test"]}}})
    return params


def test_figures_are_valid_non_blank_images(tmp_path: Path) -> None:
    params = build_results(tmp_path)
    out = tmp_path / "figures"
    assert aclnet(["figures", "--params", str(params), "--train-root", str(tmp_path / "train"),
                   "--eval-root", str(tmp_path / "evaluate"), "--pred-root", str(tmp_path / "predict"),
                   "--data-root", str(tmp_path / "data"), "--out-dir", str(out)]) == 0
    stems = ["pr_rail_test", "fcurve_rail_test", "ecurve_rail_test", "qualitative_rail", "training_rail"]
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{s}.{e}" for s in stems for e in ("pdf", "png"))
    for stem in stems:
        image = cv2.imread(str(out / f"{stem}.png"))
        assert image is not None and image.shape[0] > 200 and image.shape[1] > 200, stem
        # non-blank: a good share of pixels differ from the background colour, with real contrast
        assert (image.std(axis=2).mean() > 1 or image.std() > 20), stem
        assert np.mean(np.any(image < 200, axis=2)) > 0.02, stem
        assert (out / f"{stem}.pdf").read_bytes().startswith(b"%PDF"), stem


def test_missing_map_fails_without_partial_figures(tmp_path: Path, capsys) -> None:
    params = build_results(tmp_path)
    for i in range(3):
        (tmp_path / "predict" / "rail" / "student" / "seed0" / "test" / f"test{i}.png").unlink()
    out = tmp_path / "figures"
    assert aclnet(["figures", "--params", str(params), "--train-root", str(tmp_path / "train"),
                   "--eval-root", str(tmp_path / "evaluate"), "--pred-root", str(tmp_path / "predict"),
                   "--data-root", str(tmp_path / "data"), "--out-dir", str(out)]) == 2
    assert "student/seed0/test/test" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_seed_band_is_mean_and_min_max_over_seeds() -> None:
    from aclnet_kd.report.figures import seed_band

    steps = np.arange(1, 4, dtype=float)
    curves = [(steps, np.array([0.1, 0.5, 0.6])), (steps, np.array([0.3, 0.7, 0.9])),
              (np.arange(1, 5, dtype=float), np.array([0.2, 0.6, 0.9, 1.0]))]  # a longer log: common steps only
    step, mean, low, high = seed_band(curves)
    assert step.tolist() == [1, 2, 3]
    assert mean == pytest.approx([0.2, 0.6, 0.8]) and low.tolist() == [0.1, 0.5, 0.6]
    assert high.tolist() == [0.3, 0.7, 0.9]


def test_training_figure_groups_seeds_per_run(tmp_path: Path) -> None:
    from aclnet_kd.report.collect import TrackSettings
    from aclnet_kd.report.figures import read_training_logs, training_figure

    for run, seeds in (("teacher", [0]), ("student", [0, 1, 2]), ("student_kd", [0, 1, 2])):
        for seed in seeds:
            folder = tmp_path / "train" / "rail" / run / f"seed{seed}" / "dvclive" / "plots" / "metrics" / "val"
            folder.mkdir(parents=True)
            (folder / "sm.tsv").write_text("step\tsm\n" + "".join(
                f"{epoch}\t{0.9 - 0.4 / epoch - 0.01 * seed}\n" for epoch in range(1, 21)))  # 20 epochs
    settings = TrackSettings("rail", "tiny-rail", ["test"], synthetic=True)
    logs = read_training_logs(settings, tmp_path / "train", [0, 1, 2])
    assert {run: len(curves) for run, curves in logs["val/sm"].items()} == {"teacher": 1, "student": 3,
                                                                           "student_kd": 3}
    assert len(logs["val/sm"]["student"][0][0]) == 20
    (tmp_path / "figures").mkdir()
    written = training_figure(settings, tmp_path / "train", True, [0, 1, 2], tmp_path / "figures")
    assert sorted(p.name for p in written) == ["training_rail.pdf", "training_rail.png"]
    image = cv2.imread(str(tmp_path / "figures" / "training_rail.png"))
    assert image is not None and np.mean(np.any(image < 200, axis=2)) > 0.01
