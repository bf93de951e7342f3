"""The "operating point" table: per track, run and split, the binary metrics at each run's threshold (mean ±
std over seeds), "—" for a run whose metrics.json holds none."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from test_tables import RAIL_SM, md_rows, run_tables, write_params, write_results


def test_operating_point_table(tmp_path: Path) -> None:
    write_results(tmp_path, "rail", ["test"], RAIL_SM)
    for (run, seed), sm in RAIL_SM.items():
        if run == "teacher":
            continue  # the teacher's metrics.json has no op_* numbers (e.g. no operating point recorded)
        path = tmp_path / "evaluate" / "rail" / run / f"seed{seed}" / "test" / "metrics.json"
        metrics = json.loads(path.read_text())
        metrics.update({"op_threshold": 0.4 + seed / 10, "op_IoU": sm - 0.2, "op_Dice": sm - 0.1,
                        "op_precision": sm, "op_recall": sm + 0.1, "op_detection_rate": 1.0 - seed / 2})
        path.write_text(json.dumps(metrics))
    assert run_tables(tmp_path, write_params(tmp_path / "params.yaml", [0, 1])) == 0
    markdown = (tmp_path / "tables" / "operating_point.md").read_text()
    rows = md_rows(markdown)
    assert rows[0] == ["model", "split", "n", "threshold", "IoU", "Dice", "precision", "recall", "defects found"]
    by_model = {row[0]: row for row in rows[1:]}
    assert by_model["ACLNet-T"][3:] == ["—"] * 6
    # ACLNet-S: seeds 0 and 1 -> threshold 0.4 / 0.5, IoU 0.50 / 0.52, detection 1.0 / 0.5
    assert by_model["ACLNet-S"][1:4] == ["test", "2", "0.450 ± 0.071"]
    assert by_model["ACLNet-S"][4] == "0.510 ± 0.014" and by_model["ACLNet-S"][8] == "0.750 ± 0.354"
    assert "## rail: synthetic-rail (synthetic data)" in markdown
    frame = pd.read_csv(tmp_path / "tables" / "operating_point.csv")
    student_kd = frame[frame["run"] == "student_kd"].iloc[0]
    assert abs(student_kd["IoU"] - 0.565) < 1e-9 and student_kd["n"] == 2
    assert frame[frame["run"] == "teacher"]["IoU"].isna().all()
