"""report.differences: S* − S and T − S with Student-t intervals (golden values), and the not-converged flag."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aclnet_kd.report.collect import RunResults
from aclnet_kd.report.differences import compare, differences, differences_markdown, flag_label
from aclnet_kd.report.stats import GAIN, NO_INTERVAL
from aclnet_kd.report.reported import load_reported
from aclnet_kd.train.record import RunRecord
from aclnet_kd.workflow.plan import DIFFERENCES, table_stems
from record_helper import run_record_json


def result(run: str, sm: dict[int, float], converged: dict[int, bool | None] | None = None) -> RunResults:
    """One run on the rail ``test`` split: Sm per seed, MAE = 0.9 - Sm (lower is better), maxF/maxE = Sm."""
    metrics = {"test": [{"Sm": v, "MAE": 0.9 - v, "maxF": v, "maxE": v} for v in sm.values()]}
    info = {seed: RunRecord.from_dict(json.loads(run_record_json(seed=seed, converged=flag)))
            for seed, flag in (converged or {}).items()}
    return RunResults("rail", run, list(sm), metrics, {s: Path(".") for s in sm}, info)


def test_three_seed_gain_golden():
    # per seed S* − S = 0.05, 0.06, 0.07: mean 0.06, sd 0.01, t(0.975, 2) = 4.3027 -> half 0.024841
    s, skd = result("student", {0: 0.70, 1: 0.71, 2: 0.72}), result("student_kd", {0: 0.75, 1: 0.77, 2: 0.79})
    sm = compare(skd, s, "test", "Sm")
    assert sm.n == 3 and sm.mean == pytest.approx(0.06) and sm.verdict == GAIN
    assert (sm.ci_low, sm.ci_high) == pytest.approx((0.06 - 0.0248414, 0.06 + 0.0248414), abs=1e-6)
    mae = compare(skd, s, "test", "MAE")  # MAE falls by the same amount: lower is better, so also a gain
    assert mae.mean == pytest.approx(-0.06) and mae.verdict == GAIN


def test_teacher_trained_once_against_each_seed():
    t, s = result("teacher", {0: 0.90}), result("student", {0: 0.70, 1: 0.80, 2: 0.75})
    diff = compare(t, s, "test", "Sm")  # 0.20, 0.10, 0.15: sd 0.05 -> half 4.302653 * 0.05 / sqrt(3) = 0.124207
    assert diff.n == 3 and diff.mean == pytest.approx(0.15)
    assert diff.ci_low == pytest.approx(0.15 - 0.124207, abs=1e-6) and diff.verdict == GAIN  # just above 0


def test_rows_markdown_paper_claim_and_n1():
    runs = {"teacher": result("teacher", {0: 0.9}), "student": result("student", {0: 0.7}),
            "student_kd": result("student_kd", {0: 0.75})}
    reported = load_reported()
    rows = differences("rail", runs, ["test"], reported[reported["table"] == "I"])
    assert len(rows) == 8 and {r["comparison"] for r in rows} == {"S* − S", "T − S"}
    sm = next(r for r in rows if r["comparison"] == "S* − S" and r["metric"] == "Sm")
    assert sm["verdict"] == NO_INTERVAL and sm["ci_low"] is None and sm["paper"] == pytest.approx(0.856 - 0.842)
    md = differences_markdown(rows, 3, synthetic=True)
    assert "SYNTHETIC" in md and "no interval can be given (n = 1)" in md and "Student's t" in md
    assert "| rail | test | Sm | 1 | +0.050 |" in md and "+0.014" in md  # ours beside the paper's


def test_not_converged_is_flagged():
    s = result("student", {0: 0.7, 1: 0.72}, converged={0: True, 1: False})
    skd = result("student_kd", {0: 0.75, 1: 0.77}, converged={0: None, 1: True})  # None: not judged
    assert flag_label(s) == "ACLNet-S† (seed 1)" and flag_label(skd) == "ACLNet-S*"
    rows = differences("rail", {"student": s, "student_kd": skd}, ["test"], load_reported().iloc[:0])
    assert {r["not_converged"] for r in rows} == {"ACLNet-S† (seed 1)"}
    assert "did not converge by the plateau rule" in differences_markdown(rows, 3, synthetic=True)


def test_plan_declares_the_file():
    assert DIFFERENCES in table_stems({"tracks": {"rail": {}}, "ablations": {}})
    assert table_stems({"tracks": {}, "ablations": {}}) == []


def test_rows_carry_mde_and_the_verdict_on_the_papers_claim():
    # rail test, paper S* − S on Sm: 0.856 − 0.842 = +0.014.
    # S* − S per seed 0.05, 0.06, 0.07: interval [0.035159, 0.084841] does not hold +0.014 -> "claim excluded";
    # MDE(sd 0.01, n 3). T − S: 0.9 − (0.70, 0.71, 0.72) = 0.20, 0.19, 0.18, interval 0.19 ± 0.024841; the paper's
    # T − S on Sm is 0.891 − 0.842 = 0.049 -> also excluded. With S* − S = 0.00, 0.03, −0.01 (mean 0.006667, sd
    # 0.020817, half 4.302653 × 0.020817 / sqrt 3 = 0.051713) the claim +0.014 is inside -> "consistent".
    from aclnet_kd.report.differences import DIFFERENCE_COLUMNS
    from aclnet_kd.report.stats import CLAIM_CONSISTENT, CLAIM_EXCLUDED, minimum_detectable_effect

    reported = load_reported()
    table = reported[reported["table"] == "I"]
    s = result("student", {0: 0.70, 1: 0.71, 2: 0.72})
    runs = {"teacher": result("teacher", {0: 0.9}), "student": s,
            "student_kd": result("student_kd", {0: 0.75, 1: 0.77, 2: 0.79})}
    rows = differences("rail", runs, ["test"], table)
    assert set(rows[0]) == set(DIFFERENCE_COLUMNS)
    sm = {r["comparison"]: r for r in rows if r["metric"] == "Sm"}
    assert sm["S* − S"]["paper"] == pytest.approx(0.014) and sm["S* − S"]["vs_paper"] == CLAIM_EXCLUDED
    assert sm["S* − S"]["mde"] == pytest.approx(minimum_detectable_effect(0.01, 3), rel=1e-6)
    assert sm["T − S"]["vs_paper"] == CLAIM_EXCLUDED
    runs["student_kd"] = result("student_kd", {0: 0.70, 1: 0.74, 2: 0.71})
    close = next(r for r in differences("rail", runs, ["test"], table)
                 if r["comparison"] == "S* − S" and r["metric"] == "Sm")
    assert close["ci_low"] < 0.014 < close["ci_high"] and close["vs_paper"] == CLAIM_CONSISTENT
    md = differences_markdown(rows, 3, synthetic=True)
    assert "| MDE | vs paper |" in md and "claim excluded" in md and "80% power" in md
    n1 = differences("rail", {k: result(k, {0: 0.8}) for k in ("teacher", "student", "student_kd")}, ["test"], table)
    assert {r["vs_paper"] for r in n1} == {"—"} and {r["mde"] for r in n1} == {None}
