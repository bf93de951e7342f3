"""The tables' code footnote: one commit, or each commit and torch version with the rows it made."""

from __future__ import annotations

import json
from pathlib import Path

from test_tables import RAIL_SM, run_tables, write_params, write_results


def _stamp(path: Path, commit: str, torch: str = "2.14.0") -> None:
    """Give a run.json or metrics.json a provenance naming ``commit``."""
    data = json.loads(path.read_text())
    data["provenance"] = {"git": {"commit": commit, "dirty": False}, "versions": {"torch": torch}}
    path.write_text(json.dumps(data))


def _stamp_all(root: Path, commit: str) -> None:
    for path in [*root.glob("train/**/run.json"), *root.glob("evaluate/**/metrics.json")]:
        _stamp(path, commit)


def test_one_commit_is_named(tmp_path: Path) -> None:
    write_results(tmp_path, "rail", ["test"], RAIL_SM)
    _stamp_all(tmp_path, "a" * 40)
    assert run_tables(tmp_path, write_params(tmp_path / "params.yaml", [0, 1])) == 0
    md = (tmp_path / "tables" / "table1.md").read_text()
    assert "every row of ours was trained and evaluated at commit aaaaaaa with torch 2.14.0" in md
    assert "b" * 7 not in md


def test_rows_from_several_commits_are_listed(tmp_path: Path) -> None:
    write_results(tmp_path, "rail", ["test"], RAIL_SM)
    _stamp_all(tmp_path, "a" * 40)
    # ACLNet-S* seed 1 rerun at a later commit, its evaluation with another torch
    _stamp(tmp_path / "train/rail/student_kd/seed1/run.json", "b" * 40)
    _stamp(tmp_path / "evaluate/rail/student_kd/seed1/test/metrics.json", "b" * 40, torch="2.14.1")
    assert run_tables(tmp_path, write_params(tmp_path / "params.yaml", [0, 1])) == 0
    md = (tmp_path / "tables" / "table1.md").read_text()
    note = next(line for line in md.splitlines() if "several commits" in line)
    assert "commit aaaaaaa, torch 2.14.0: ACLNet-T, ACLNet-S, ACLNet-S* (seed 0)" in note
    assert "commit bbbbbbb, torch 2.14.0: ACLNet-S* (seed 1)" in note
    assert "commit bbbbbbb, torch 2.14.1: ACLNet-S* (seed 1)" in note


def test_records_without_provenance_say_unknown(tmp_path: Path) -> None:
    write_results(tmp_path, "rail", ["test"], RAIL_SM)  # older records: no provenance object
    assert run_tables(tmp_path, write_params(tmp_path / "params.yaml", [0, 1])) == 0
    assert "at commit unknown with torch unknown" in (tmp_path / "tables" / "table1.md").read_text()
