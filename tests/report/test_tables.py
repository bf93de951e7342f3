"""aclnet tables from fixture metric files; reported.csv against the paper's README."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from aclnet_kd.cli import main as aclnet
from aclnet_kd.report.reported import REPORTED_CSV, load_reported
from record_helper import run_record_json

# (run, seed) -> Sm on the rail test split; MAE = 1 - Sm - 0.15 etc. keep the numbers easy to check.
# The teacher is trained once (seeds[0]), the students at every seed (plan.STUDENT_RUNS).
RAIL_SM = {("teacher", 0): 0.80, ("student", 0): 0.70, ("student", 1): 0.72,
           ("student_kd", 0): 0.75, ("student_kd", 1): 0.78}


def write_results(root: Path, track: str, splits: list[str], sm: dict, synthetic: bool = True,
                  converged: dict | None = None) -> None:
    for (run, seed), value in sm.items():
        for split in splits:
            folder = root / "evaluate" / track / run / f"seed{seed}" / split
            folder.mkdir(parents=True, exist_ok=True)
            metrics = {"Sm": value, "MAE": round(0.9 - value, 6), "maxF": value + 0.05, "meanF": value,
                       "adpF": value, "maxE": value + 0.1, "meanE": value, "adpE": value, "wF": value - 0.1}
            (folder / "metrics.json").write_text(json.dumps(metrics))
        train = root / "train" / track / run / f"seed{seed}"
        train.mkdir(parents=True, exist_ok=True)
        (train / "run.json").write_text(run_record_json(dataset=f"synthetic-{track}", synthetic=synthetic,
                                                        selected_epoch=2,
                                                        converged=(converged or {}).get((run, seed), True)))


def write_params(path: Path, seeds: list[int], ablations: dict | None = None) -> Path:
    from params_helper import write_params as complete

    return complete(path, {"seeds": seeds, "tables": {"decimals": 3}, "ablations": ablations or {},
                           "tracks": {"rail": {"dataset": "synthetic-rail", "test_splits": ["test"]},
                                      "sod": {"dataset": "synthetic-sod", "test_splits": ["NJU2K", "NLPR", "STERE"]}}})


def run_tables(root: Path, params: Path) -> int:
    return aclnet(["tables", "--params", str(params), "--train-root", str(root / "train"),
                   "--eval-root", str(root / "evaluate"), "--complexity-dir", str(root / "complexity"),
                   "--latency-dir", str(root / "latency"), "--out-dir", str(root / "tables")])


def md_rows(markdown: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in markdown.splitlines()
            if line.startswith("|") and not line.startswith("|---")]


def test_table1_from_fixture_metrics(tmp_path: Path) -> None:
    write_results(tmp_path, "rail", ["test"], RAIL_SM)
    (tmp_path / "complexity").mkdir()
    for name, macs, excl, params in (("aclnet_t", 22.02, 20.02, 79.07), ("aclnet_s", 3.16, 2.77, 11.91)):
        (tmp_path / "complexity" / f"{name}.json").write_text(json.dumps(
            {"model": name, "input_size": 256, "params": int(params * 1e6), "params_m": params, "macs_g": macs,
             "macs_g_excl_matmul": excl, "by_op": {}}))
    (tmp_path / "latency").mkdir()
    for name, ms in (("aclnet_t", 812.34), ("aclnet_s", 150.06)):
        (tmp_path / "latency" / f"{name}.json").write_text(json.dumps(
            {"model": name, "median_ms": ms, "p90_ms": ms + 5, "threads": 2, "cpu": "Test CPU 9000"}))
    assert run_tables(tmp_path, write_params(tmp_path / "params.yaml", [0, 1])) == 0
    md = (tmp_path / "tables" / "table1.md").read_text()
    assert "SYNTHETIC" in md.splitlines()[0]
    assert "teacher's recipe is our inference" in md  # the release's teacher script is only a template
    rows = md_rows(md)
    header = rows[0]
    assert header[:3] == ["Model", "Source", "S<sub>m</sub> ↑"] and "FLOPs/G ↓" in header
    assert all(len(r) == len(header) for r in rows)  # the Markdown table is rectangular
    ours = {r[0]: r for r in rows if r[1].startswith("ours")}
    delta = {r[0]: r for r in rows if r[1].startswith("Δ")}
    # mean ± sample std of (0.70, 0.72) = 0.710 ± 0.014; the teacher has one seed: no ±
    assert ours["ACLNet-S"][2] == "0.710 ± 0.014" and ours["ACLNet-T"][2] == "0.800"
    assert delta["ACLNet-T"][2] == "−0.060"  # 0.800 - 0.860 (paper)
    assert delta["ACLNet-S*"][2] == "−0.091"  # 0.765 - 0.856
    assert ours["ACLNet-S"][6] == "3.16 / 2.77" and ours["ACLNet-S"][7] == "11.9"
    assert header[8].startswith("ms/img") and ours["ACLNet-T"][8] == "812.3" and ours["ACLNet-S*"][8] == "150.1"
    assert {r[8] for r in rows[1:] if r[1] == "paper"} == {"—"}  # the paper reports no latency
    assert "Test CPU 9000" in md and "2 thread(s)" in md
    assert "best_val" in ours["ACLNet-S"][1] and "synthetic-rail (synthetic)" in ours["ACLNet-S"][1]
    assert "n=2" in ours["ACLNet-S"][1]
    assert "2 x 2.77G = 5.54G" in md  # the note explains the paper's 5.6G
    competitors = [r[0] for r in rows[1:] if r[1] == "paper" and not r[0].startswith("ACLNet")]
    assert len(competitors) == 15 and competitors[0] == "S2MA 2020"
    # S* − S per seed 0.05, 0.06: mean 0.055, t(0.975, 1) = 12.706 -> ± 0.0635: the interval holds 0
    assert "**Verdict.**" in md and "S* − S, n = 2: Sm +0.055 (95% CI [−0.009, +0.119]; no detectable " \
        "difference; paper +0.014)" in md
    # T − S: the one teacher against each seed's student: 0.10, 0.08 -> 0.090 ± 0.127
    assert "T − S, n = 2: Sm +0.090 (95% CI [−0.037, +0.217]" in md
    assert "Decision rule" in md and "Student's t" in md and "†" not in md  # every run converged

    frame = pd.read_csv(tmp_path / "tables" / "table1.csv")
    ours_t = frame[(frame["model"] == "ACLNet-T") & (frame["kind"] == "ours")].iloc[0]
    ours_s = frame[(frame["model"] == "ACLNet-S") & (frame["kind"] == "ours")].iloc[0]
    assert ours_t["Sm"] == pytest.approx(0.80) and ours_s["Sm:std"] == pytest.approx(0.0141421, abs=1e-6)
    assert ours_t["selection"] == "best_val" and bool(ours_t["synthetic"]) is True
    assert not (tmp_path / "tables" / "table2.md").exists()  # no sod results, no Table II


def test_single_seed_verdict_gives_no_interval(tmp_path: Path) -> None:
    write_results(tmp_path, "rail", ["test"], {k: v for k, v in RAIL_SM.items() if k[1] == 0})
    assert run_tables(tmp_path, write_params(tmp_path / "params.yaml", [0])) == 0
    md = (tmp_path / "tables" / "table1.md").read_text()
    assert "n=1" in md and "S* − S, n = 1: Sm +0.050 (no interval can be given with n = 1; paper +0.014)" in md
    assert "no interval (n = 1)" in md
    assert "n/a" in md and "ms/img: not measured" in md  # no complexity or latency files


def test_table2_unswaps_and_ablation(tmp_path: Path) -> None:
    sm = {(run, 0): value for run, value in (("teacher", 0.9), ("student", 0.8), ("student_kd", 0.85),
                                              ("kd_cld", 0.82))}
    write_results(tmp_path, "sod", ["NJU2K", "NLPR", "STERE"], sm, converged={("kd_cld", 0): False})
    assert run_tables(tmp_path, write_params(tmp_path / "params.yaml", [0])) == 0
    md = (tmp_path / "tables" / "table2.md").read_text()
    assert "†" not in md  # the unconverged ablation run is not in Table II
    rows = md_rows(md)
    bbs = next(r for r in rows if r[0] == "BBS 2020")
    # NJU2K columns: Sm, MAE, maxF, maxE: BBS-Net's own numbers, after un-swapping Table II
    assert bbs[2:6] == ["0.921", "0.035", "0.920", "0.949"]
    assert "swapped" in md
    ablation = (tmp_path / "tables" / "ablation_sod.md").read_text()
    assert "label + CLD†" in ablation and "(+0.020)" in ablation and "label + MGMD | not run" in ablation
    assert "did not converge by the plateau rule" in ablation


def test_custom_ablation_alone_gets_its_table(tmp_path: Path) -> None:
    """A `kd_*` run of params `ablations` other than the paper's three is a row of the ablation table, and
    is enough for the table (the workflow declares ablation_<track> whenever ablations are configured)."""
    sm = {("student", 0): 0.70, ("student_kd", 0): 0.75, ("kd_cld_mgmd", 0): 0.74}
    write_results(tmp_path, "rail", ["test"], sm)
    params = write_params(tmp_path / "params.yaml", [0], {"kd_cld_mgmd": "cld=1,mgmd=1,atd=0"})
    assert run_tables(tmp_path, params) == 0
    rows = {r[0]: r for r in md_rows((tmp_path / "tables" / "ablation_rail.md").read_text())}
    assert rows["kd_cld_mgmd (cld=1,mgmd=1,atd=0)"][2].endswith("(+0.040)")
    assert rows["label + CLD"][1] == "not run"


def test_missing_seed_is_an_error(tmp_path: Path, capsys) -> None:
    write_results(tmp_path, "rail", ["test"], {k: v for k, v in RAIL_SM.items() if k != ("student", 1)})
    assert run_tables(tmp_path, write_params(tmp_path / "params.yaml", [0, 1])) == 2
    assert "seeds [1]" in capsys.readouterr().err
    assert not (tmp_path / "tables").exists()


def _seed_readme_rows(text: str) -> dict[tuple[str, str], list[float]]:
    """Parse both tables of the seed README independently of reported.csv's transcription."""
    def clean(cell: str) -> str:
        return re.sub(r"<[^>]+>|\*\*", "", cell).strip()

    parsed: dict[tuple[str, str], list[float]] = {}
    table1, table2 = text.split("Table I ")[1].split("Table II")
    for line in table1.splitlines():
        cells = [clean(c) for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 7 and re.match(r"^[\d.]+$", cells[1]):
            name = re.sub(r"\s*\d{4}\s*$", "", cells[0]).strip()
            parsed[(name, "test")] = [float(c) for c in cells[1:]]
    for line in table2.splitlines():
        cells = [clean(c) for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 13 and re.match(r"^[\d.]+$", cells[1]):
            name = re.sub(r"\s*\d{4}\s*$", "", cells[0]).strip()
            for k, split in enumerate(("NJU2K", "NLPR", "STERE")):
                parsed[(name, split)] = [float(c) for c in cells[1 + 4 * k: 5 + 4 * k]]
    return parsed


def test_reported_numbers_match_the_seed_readme(shared_dir: Path) -> None:
    readme = shared_dir / "seed" / "ACLNet-KD-README.md"
    if not readme.is_file():
        pytest.skip(f"{readme} not available")
    expected = _seed_readme_rows(readme.read_text(encoding="utf-8"))
    raw = pd.read_csv(REPORTED_CSV, comment="#")
    assert len(expected) == 18 + 15 * 3 == len(raw)
    for _, row in raw.iterrows():
        columns = ["Sm", "MAE", "maxF", "maxE"] + (["flops_g", "params_m"] if row["table"] == "I" else [])
        assert [float(row[c]) for c in columns] == expected[(row["model"], row["split"])], row["model"]
    # load_reported puts Table II's swapped columns back; Table I is left as printed
    fixed = load_reported()
    bbs = fixed[(fixed["model"] == "BBS") & (fixed["split"] == "NJU2K")].iloc[0]
    assert (bbs["maxF"], bbs["maxE"]) == (0.920, 0.949)
    rail = fixed[(fixed["model"] == "ACLNet-S*") & (fixed["split"] == "test")].iloc[0]
    assert (rail["maxF"], rail["maxE"]) == (0.896, 0.936)
    assert "swap" in REPORTED_CSV.read_text().split("table,")[0]


def test_unconverged_run_is_flagged(tmp_path: Path) -> None:
    write_results(tmp_path, "rail", ["test"], RAIL_SM, converged={("student", 1): False})
    assert run_tables(tmp_path, write_params(tmp_path / "params.yaml", [0, 1])) == 0
    md = (tmp_path / "tables" / "table1.md").read_text()
    ours = {r[0]: r for r in md_rows(md) if r[1].startswith("ours")}
    assert set(ours) == {"ACLNet-T", "ACLNet-S†", "ACLNet-S*"}
    assert "did not converge by the plateau rule" in md and "ACLNet-S† (seed 1)" in md
    frame = pd.read_csv(tmp_path / "tables" / "table1.csv", dtype={"not_converged_seeds": str})
    assert frame[frame["kind"] == "ours"]["not_converged_seeds"].fillna("").tolist() == ["", "1", ""]
    assert "ACLNet-S† (seed 1)" in (tmp_path / "tables" / "differences.md").read_text()
