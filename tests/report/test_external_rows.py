"""External rows (params `external`) in Tables I / II and the PR / F-curve figures, from fixture files in the
layout `aclnet external` writes (results/evaluate/external/<name>/)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from aclnet_kd.report import figures
from aclnet_kd.report.collect import track_settings
from aclnet_kd.report.external_rows import LINESTYLE, external_root, read_external
from aclnet_kd.workflow.plan import EXTERNAL_ROOT
from test_tables import RAIL_SM, md_rows, run_tables, write_results

EXTERNAL = {
    "rel_w": {"track": "rail", "label": "ACLNet-S* (released weights)", "paper_row": "ACLNet-S*",
              "checkpoint": "downloads/s.pth", "arch": "student"},
    "rel_m": {"track": "rail", "label": "ACLNet-S* (released maps)", "paper_row": "ACLNet-S*",
              "maps": "downloads/maps/rail_362"},
    "bbs": {"track": "sod", "label": "BBS (published maps)", "paper_row": "BBS", "maps": "bbs/{split}"},
    "later": {"track": "sod", "label": "Other (not yet)", "paper_row": None, "maps": "o/{split}"},
}


def write_external(root: Path, name: str, splits: list[str], sm: float, resized: int = 0) -> None:
    folder = root / "evaluate" / "external" / name
    entry = EXTERNAL[name]
    facts = {}
    for split in splits:
        (folder / split).mkdir(parents=True)
        (folder / split / "metrics.json").write_text(json.dumps(
            {"Sm": sm, "MAE": 0.05, "maxF": 0.9, "meanF": 0.8, "adpF": 0.8, "maxE": 0.93, "meanE": 0.9,
             "adpE": 0.9, "wF": 0.8}))
        t = np.arange(256)
        (folder / split / "curves.csv").write_text("threshold,precision,recall,fmeasure,emeasure\n" + "".join(
            f"{i},{0.5 + i / 600:.6f},{1 - i / 256:.6f},{0.6 + i / 1000:.6f},0.9\n" for i in t))
        facts[split] = {"maps": "x", "n": 10, "resized": resized, "resized_stems": []}
    protocol = "release_minmax" if "checkpoint" in entry else "as published"
    source = "s.pth (student, maps: release_minmax)" if "checkpoint" in entry else f"maps {entry['maps']}"
    (folder / "row.json").write_text(json.dumps({"name": name, **entry, "protocol": protocol, "source": source,
                                                 "image_size": 64 if "checkpoint" in entry else None,
                                                 "splits": facts}))


def _params(path: Path) -> Path:
    from params_helper import write_params as complete

    return complete(path, {"seeds": [0, 1], "tables": {"decimals": 3}, "external": EXTERNAL,
                           "tracks": {"rail": {"dataset": "synthetic-rail", "test_splits": ["test"]},
                                      "sod": {"dataset": "synthetic-sod", "test_splits": ["NJU2K", "NLPR"]}}})


def test_external_rows_in_tables(tmp_path: Path) -> None:
    write_results(tmp_path, "rail", ["test"], RAIL_SM)
    write_external(tmp_path, "rel_w", ["test"], 0.850)
    write_external(tmp_path, "rel_m", ["test"], 0.860, resized=10)
    write_external(tmp_path, "bbs", ["NJU2K", "NLPR"], 0.900)
    # the default --external-root: where the plan puts the rows, under --eval-root
    assert EXTERNAL_ROOT == "results/evaluate/external" and external_root(Path("e")) == Path("e/external")
    import aclnet_kd.cli as cli

    params = _params(tmp_path / "params.yaml")
    assert cli.main(["tables", "--params", str(params), "--train-root", str(tmp_path / "train"),
                     "--eval-root", str(tmp_path / "evaluate"), "--out-dir", str(tmp_path / "tables")]) == 0
    md = (tmp_path / "tables" / "table1.md").read_text()
    rows = md_rows(md)
    assert all(len(r) == len(rows[0]) for r in rows)  # rectangular: the external rows fill "—"
    names = [(r[0], r[1][:12]) for r in rows]
    at = names.index(("ACLNet-S*", "Δ ours − pap"))
    assert names[at + 1:at + 5] == [("ACLNet-S* (released weights)", "ours (measur"),
                                    ("ACLNet-S* (released weights)", "Δ measured −"),
                                    ("ACLNet-S* (released maps)", "ours (measur"),
                                    ("ACLNet-S* (released maps)", "Δ measured −")]
    weights, delta = rows[at + 1], rows[at + 2]
    assert weights[1] == "ours (measured from s.pth (student, maps: release_minmax))"
    assert weights[2] == "0.850" and delta[2] == "−0.006" and delta[1] == "Δ measured − reported (ACLNet-S*)"
    assert weights[-3:] == ["—", "—", "—"]  # no FLOPs, params or latency of ours
    assert "maps resized (bilinear) to their GT's size: 10 of 10 on test" in md
    assert "ACLNet-S* (released weights): maps release_minmax, made at 64 px" in md

    # Table II exists from the external rows alone (no trained SOD runs here), the BBS row after BBS's
    table2 = md_rows((tmp_path / "tables" / "table2.md").read_text())
    names = [r[0] for r in table2]
    assert names[names.index("BBS 2020") + 1] == "BBS (published maps)"
    bbs = table2[names.index("BBS 2020") + 1]
    assert bbs[2] == "0.900" and table2[names.index("BBS 2020") + 2][2] == "−0.021"  # 0.900 - 0.921
    later = table2[names.index("Other (not yet)")]
    assert later[1].startswith("ours: not measured") and set(later[2:]) == {"—"}
    import pandas as pd

    frame = pd.read_csv(tmp_path / "tables" / "table1.csv")
    ext = frame[frame["kind"] == "external"]
    assert list(ext["model"]) == ["ACLNet-S* (released weights)", "ACLNet-S* (released maps)"]
    assert list(ext["protocol"]) == ["release_minmax", "as published"] and list(ext["resized_maps"]) == [0, 10]


def test_tables_without_external_folder_are_unchanged(tmp_path: Path) -> None:
    from test_tables import write_params

    write_results(tmp_path, "rail", ["test"], RAIL_SM)
    assert run_tables(tmp_path, write_params(tmp_path / "params.yaml", [0, 1])) == 0
    assert "measured from" not in (tmp_path / "tables" / "table1.md").read_text()


def test_external_curves_are_dashed(tmp_path: Path, monkeypatch) -> None:
    write_results(tmp_path, "rail", ["test"], RAIL_SM)
    for (run, seed) in RAIL_SM:
        folder = tmp_path / "evaluate" / "rail" / run / f"seed{seed}" / "test"
        (folder / "curves.csv").write_text("threshold,precision,recall,fmeasure,emeasure\n0,0.3,1,0.4,0.5\n"
                                           "255,0.9,0.1,0.3,0.5\n")
    write_external(tmp_path, "rel_w", ["test"], 0.85)
    import yaml

    params = yaml.safe_load(_params(tmp_path / "params.yaml").read_text())
    from aclnet_kd.report.collect import collect_runs
    from aclnet_kd.workflow.runs import PAPER_RUNS

    settings = track_settings(params, "rail")
    runs = collect_runs(tmp_path / "evaluate", tmp_path / "train", settings, list(PAPER_RUNS), [0, 1])
    external = read_external(tmp_path / "evaluate" / "external", params, "rail", ["test"])
    drawn = {}

    def keep(fig, out_dir, stem):
        drawn[stem] = [(line.get_label(), line.get_linestyle()) for line in fig.axes[0].get_lines()]
        return []

    monkeypatch.setattr(figures, "save_figure", keep)
    figures.curve_figures(settings, runs, True, tmp_path, external)
    for stem in ("pr_rail_test", "fcurve_rail_test"):
        styles = dict((label.rsplit(" (", 1)[0], style) for label, style in drawn[stem])
        assert styles["ACLNet-S* (released weights)"] == LINESTYLE and styles["ACLNet-S*"] == "-"
