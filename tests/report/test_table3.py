"""Table III (KD methods vs no KD) from fixture metric files and run records, with golden numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from aclnet_kd.cli import main as aclnet
from aclnet_kd.report.table3 import method_runs, weights_label
from record_helper import run_record_json

# (run, seed) -> Sm on the rail test split (MAE = 0.9 - Sm).
SM = {("student", 0): 0.70, ("student", 1): 0.72, ("student", 2): 0.71,
      ("student_kd", 0): 0.72, ("student_kd", 1): 0.74, ("student_kd", 2): 0.73,
      ("kd_response", 0): 0.74, ("kd_response", 1): 0.75, ("kd_response", 2): 0.76,
      ("kd_at", 0): 0.69, ("kd_at", 1): 0.73, ("kd_at", 2): 0.70,
      ("kd_cld", 0): 0.73}
# run -> (seconds_per_epoch of seed k = base + k, kd_params)
TIMES = {"student": (10.0, 0), "student_kd": (20.0, 0), "kd_response": (11.0, 0), "kd_at": (12.0, 0),
         "kd_cld": (15.0, 0)}
KD_METHODS = {"kd_response": {"response": 1.0}, "kd_at": {"at": 1.0}}


def _write(root: Path) -> None:
    for (run, seed), value in SM.items():
        folder = root / "evaluate" / "rail" / run / f"seed{seed}" / "test"
        folder.mkdir(parents=True)
        folder.joinpath("metrics.json").write_text(json.dumps(
            {"Sm": value, "MAE": round(0.9 - value, 6), "maxF": value + 0.05, "maxE": value + 0.1}))
        train = root / "train" / "rail" / run / f"seed{seed}"
        train.mkdir(parents=True)
        base, kd_params = TIMES[run]
        train.joinpath("run.json").write_text(run_record_json(
            seed=seed, dataset="synthetic-rail", seconds_per_epoch=base + seed, kd_params=kd_params))


def _params(path: Path, kd_methods: dict, ablations: dict) -> Path:
    from params_helper import write_params

    return write_params(path, {"seeds": [0, 1, 2], "kd_methods": kd_methods, "ablations": ablations,
                               "tracks": {"rail": {"dataset": "synthetic-rail", "test_splits": ["test"]}}})


def _run(root: Path, params: Path) -> int:
    return aclnet(["tables", "--params", str(params), "--train-root", str(root / "train"),
                   "--eval-root", str(root / "evaluate"), "--out-dir", str(root / "tables")])


def test_table3_golden_numbers_ranking_and_verdicts(tmp_path: Path) -> None:
    _write(tmp_path)
    params = _params(tmp_path / "params.yaml", KD_METHODS, {"kd_cld": "cld=1,mgmd=0,atd=0"})
    assert _run(tmp_path, params) == 0
    frame = pd.read_csv(tmp_path / "tables" / "table3_kd_methods.csv")
    assert list(frame["run"]) == ["student", "kd_response", "kd_cld", "student_kd", "kd_at"]  # by mean ΔSm
    rows = frame.set_index("run")
    # kd_response - student per seed: 0.04, 0.03, 0.05 -> mean 0.04, sd 0.01, t(0.975, 2) = 4.302653
    assert rows.loc["kd_response", "dSm"] == pytest.approx(0.04, abs=1e-9)
    assert rows.loc["kd_response", "dSm:ci_low"] == pytest.approx(0.04 - 4.302653 * 0.01 / 3 ** 0.5, abs=1e-6)
    assert rows.loc["kd_response", "dSm:ci_high"] == pytest.approx(0.064841, abs=1e-6)
    assert rows.loc["kd_response", "dSm:verdict"] == "gain"
    assert rows.loc["kd_response", "dMAE:verdict"] == "gain"  # MAE went down
    # kd_at: -0.01, +0.01, -0.01 -> mean -0.003333, interval [-0.032018, 0.025351]
    assert rows.loc["kd_at", "dSm"] == pytest.approx(-0.0033333, abs=1e-6)
    assert rows.loc["kd_at", "dSm:ci_low"] == pytest.approx(-0.032018, abs=1e-5)
    assert rows.loc["kd_at", "dSm:verdict"] == "no detectable difference"
    assert rows.loc["kd_cld", "n_seeds"] == 1 and rows.loc["kd_cld", "dSm:verdict"] == "no interval (n = 1)"
    assert rows.loc["kd_response", "Sm"] == pytest.approx(0.75) and rows.loc["kd_response", "Sm:std"] == pytest.approx(0.01)
    assert rows.loc["kd_at", "seconds_per_epoch"] == pytest.approx(13.0)  # 12, 13, 14
    assert rows.loc["student", "dSm:verdict"] == "baseline"
    # mde (Sm): MDE(sd, n = 3) of the paired differences; vs_paper: ACLNet-S* only, against the paper's
    # rail S* − S = 0.856 − 0.842 = +0.014; student_kd − student = 0.02 at every seed (sd 0): [0.02, 0.02] excludes it
    from aclnet_kd.report.stats import minimum_detectable_effect

    assert rows.loc["kd_response", "mde"] == pytest.approx(minimum_detectable_effect(0.01, 3), rel=1e-5)  # %.6g
    assert rows.loc["student_kd", "paper"] == pytest.approx(0.014)
    assert rows.loc["student_kd", "vs_paper"] == "claim excluded" and rows.loc["student_kd", "mde"] < 1e-9
    assert rows.loc["kd_response", "vs_paper"] == rows.loc["student", "vs_paper"] == "—"
    assert pd.isna(rows.loc["student", "mde"]) and pd.isna(rows.loc["kd_cld", "mde"])
    md = (tmp_path / "tables" / "table3_kd_methods.md").read_text()
    assert "+0.040 [+0.015, +0.065]" in md and "label + response KD" in md and "SYNTHETIC" in md
    assert "(ablation, seed 0 only)" in md
    assert "| MDE (Sm) | vs paper (Sm) |" in md and "80% power" in md and "claim excluded" in md


def test_no_table3_without_kd_methods(tmp_path: Path) -> None:
    _write(tmp_path)
    assert _run(tmp_path, _params(tmp_path / "params.yaml", {}, {})) == 0
    assert not (tmp_path / "tables" / "table3_kd_methods.csv").exists()


def test_method_labels_come_from_the_registry() -> None:
    assert weights_label({"fitnet": 1.0, "at": 0.5}) == "label + FitNet + 0.5×AT"
    params = {"kd_methods": {"kd_x": {"response": 1, "label": 0}}, "ablations": {"kd_atd": "cld=0,mgmd=0,atd=1"},
              "kd": {"weights": {"label": 1.0, "cld": 1.0, "mgmd": 1.0, "atd": 1.0}}, "seeds": [3]}
    labels = method_runs(params)
    assert labels["kd_x"] == "response KD" and labels["kd_atd"] == "label + ATD (ablation, seed 3 only)"


def test_kd_methods_figure_and_reported_gain(tmp_path: Path) -> None:
    from aclnet_kd.config import load_params
    from aclnet_kd.report.kd_figure import kd_methods_figure, reported_gain, short_label

    assert reported_gain("test") == pytest.approx(0.856 - 0.842)  # Table I: ACLNet-S* - ACLNet-S
    assert reported_gain("no-such-split") is None
    assert short_label("kd_fitnet", weights_label({"fitnet": 1.0})) == "FitNet"
    assert short_label("student_kd", "anything") == "ACLNet-S* (CLD + MGMD + ATD)"
    _write(tmp_path)
    params = load_params(_params(tmp_path / "params.yaml", KD_METHODS, {}))
    written = kd_methods_figure(params, tmp_path / "train", tmp_path / "evaluate", "rail", tmp_path)
    assert sorted(p.name for p in written) == ["kd_methods_rail.pdf", "kd_methods_rail.png"]
    assert kd_methods_figure(params, tmp_path / "train", tmp_path / "evaluate", "sod", tmp_path) == []
