"""dvc.yaml's top-level plots (plan.dvc_plots): a handful of charts, T, S and S* overlaid, read by real DVC."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from conftest import BIN_DIR, REPO_ROOT

from aclnet_kd.workflow import plan

PARAMS = {"seeds": [0, 1], "ablations": {"kd_cld": "cld=1"}, "kd_methods": {},
          "train": {"val_split": "val"}, "tracks": {"rail": {"test_splits": ["test"]}}}


def test_plots_overlay_teacher_and_students_per_seed() -> None:
    plots = {name: spec for item in plan.dvc_plots(PARAMS) for name, spec in item.items()}
    assert list(plots) == ["pr_rail_test", "val_sm_rail", "val_mae_rail"]  # 3 charts, not one per file
    pr = plots["pr_rail_test"]
    assert pr["x"] == "recall" and set(pr["y"].values()) == {"precision"}
    assert list(pr["y"]) == [f"results/evaluate/rail/{run}/seed{seed}/test/curves.csv" for run, seed in
                             (("teacher", 0), ("student", 0), ("student", 1), ("student_kd", 0), ("student_kd", 1))]
    assert all(path.endswith("/dvclive/plots/metrics/val/sm.tsv") for path in plots["val_sm_rail"]["y"])
    assert not any("kd_cld" in path for spec in plots.values() for path in spec["y"])  # ablations left out


def test_committed_plots_follow_params_yaml() -> None:
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    committed = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())
    assert committed["plots"] == plan.dvc_plots(params)
    stage = committed["stages"]["predict_evaluate_rail"]
    assert "plots" not in stage and {"results/evaluate/${item.track}/${item.run}/seed${item.seed}/${item.split}/curves.csv"
                                     .replace("${item.track}", "rail"): {"cache": False}} in stage["outs"]


def write_plot_data(repo: Path) -> None:
    """A git + DVC repository holding the top-level plots of PARAMS and a small file for each of their lines."""
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([str(BIN_DIR / "dvc"), "init", "-q"], cwd=repo, check=True)
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"plots": plan.dvc_plots(PARAMS)}, sort_keys=False))
    for item in plan.dvc_plots(PARAMS):
        for spec in item.values():
            for k, (path, column) in enumerate(spec["y"].items()):
                target = repo / path
                target.parent.mkdir(parents=True, exist_ok=True)
                if spec["x"] == "recall":
                    target.write_text("threshold,precision,recall\n" + "".join(
                        f"{t},{0.5 + t / 600 + k / 100:.4f},{1 - t / 255:.4f}\n" for t in range(0, 256, 51)))
                else:
                    target.write_text(f"step\t{column}\n" + "".join(f"{e}\t{0.5 + e / 10 + k / 100}\n" for e in range(3)))


def test_dvc_plots_show_draws_every_file(tmp_path: Path) -> None:
    """Real DVC reads the section: each chart carries one line per (run, seed) file."""
    write_plot_data(tmp_path)
    proc = subprocess.run([str(BIN_DIR / "dvc"), "plots", "show", "--json"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    shown = shown.get("data", shown)
    assert set(shown) == {"pr_rail_test", "val_sm_rail", "val_mae_rail"}, list(shown)
    for name, renders in shown.items():
        spec = renders[0]["content"]
        values = spec["data"]["values"]
        files = {row.get("filename") or row.get("dvc_data_version_info", {}).get("filename") for row in values}
        assert len(files) == 5, (name, files)  # T seed 0, S seeds 0-1, S* seeds 0-1
