"""The plan owns every path: each job's log and benchmark follow from its stage's entry (the stage's folder
and log group), every stage has its dvc.yaml groups."""

from __future__ import annotations

import pytest

from conftest import REPO_ROOT

from aclnet_kd.config import load_params
from aclnet_kd.workflow import plan

ABLATIONS = {"kd_cld": "cld=1,mgmd=0,atd=0"}
EXTERNAL = {"rel_s": {"track": "rail", "label": "S", "paper_row": "ACLNet-S", "checkpoint": "s.pth",
                      "arch": "student"}}


@pytest.fixture(scope="module")
def params() -> dict:
    """The smoke preset with every optional stage switched on (ablations, KD methods, an external row)."""
    params = load_params([REPO_ROOT / "params.yaml", REPO_ROOT / "config" / "smoke.yaml"])
    return {**params, "ablations": ABLATIONS, "external": EXTERNAL}


def _jobs(params: dict) -> list[tuple[plan.Stage, dict]]:
    return [(stage, fields) for stage in plan.STAGES.values() for fields in plan.JOBS[stage.name](params)]


def test_every_job_has_its_own_log_and_benchmark(params) -> None:
    jobs = _jobs(params)
    assert {stage.name for stage, _ in jobs} == set(plan.STAGES)  # every stage has a job here
    logs = [plan.fill(plan.log_path(stage), **fields) for stage, fields in jobs]
    benchmarks = [plan.fill(plan.benchmark_path(stage), **fields) for stage, fields in jobs]
    assert len(set(logs)) == len(logs) and len(set(benchmarks)) == len(benchmarks)
    assert all(plan.under(p, plan.LOGS_ROOT) and p.endswith(".log") for p in logs)
    assert all(plan.under(p, plan.BENCHMARKS_ROOT) and p.endswith(".tsv") for p in benchmarks)


@pytest.mark.parametrize("stage, fields, log", [
    ("train_kd_method", dict(track="rail", run="kd_fitnet", seed=1), "results/logs/train/rail/kd_fitnet/seed1.log"),
    ("predict_evaluate", dict(track="sod", run="teacher", seed=0, split="NJU2K"),
     "results/logs/predict_evaluate/sod/teacher/seed0/NJU2K.log"),
    ("complexity", dict(model="aclnet_t"), "results/logs/complexity/aclnet_t.log"),
    ("prepare", dict(dataset="synthetic-rail"), "results/logs/prepare/synthetic-rail.log"),
    ("tables", {}, "results/logs/tables.log"),
])
def test_log_names_follow_the_stage_folder(stage: str, fields: dict, log: str) -> None:
    assert plan.fill(plan.log_path(plan.STAGES[stage]), **fields) == log
    assert plan.fill(plan.benchmark_path(plan.STAGES[stage]), **fields) == (
        log.replace(plan.LOGS_ROOT, plan.BENCHMARKS_ROOT).removesuffix(".log") + ".tsv")


def test_pattern_leaves_the_other_fields_as_wildcards() -> None:
    assert plan.pattern(plan.log_path(plan.STAGES["train_student"]), run="student") == (
        "results/logs/train/{track}/student/seed{seed}.log")


def test_every_stage_has_jobs_and_dvc_groups() -> None:
    assert set(plan.JOBS) == set(plan.STAGES)
    groups = plan.dvc_groups()
    assert {stage for stage, *_ in groups.values()} == set(plan.STAGES)


def test_dvc_addresses_writing_are_the_stages_holding_a_written_path(params) -> None:
    seed, split = params["seeds"][0], params["tracks"]["rail"]["test_splits"][0]
    predict = plan.fill(plan.PREDICT_DIR, track="rail", run="student", seed=seed, split=split)
    prepared = plan.fill(plan.PREPARED, dataset=params["tracks"]["sod"]["dataset"])
    written = {f"{predict}/a.png", f"{prepared}/train/rgb/0.png", f"{plan.TABLES_DIR}/table1.md",
               "results/logs/tables.log", "results/other.txt", f"{plan.EXTERNAL_ROOT}/rel_s/metrics.json"}
    assert plan.dvc_addresses_writing(params, written) == [  # in dvc.yaml's order; a log or a stray file: none
        "prepare_sod", f"predict_evaluate_rail@student-{seed}-{split}", "external@rel_s", "tables"]
    assert plan.dvc_addresses_writing(params, set()) == []


def test_dvc_addresses_follow_dvcs_naming_rules() -> None:
    """DVC's names for the loops dvc.yaml uses: a foreach over a dict by key, over a list of scalars by value
    (booleans lower case), over a list of dicts by index; a matrix joins its values with '-'."""
    assert plan._dvc_iterations("${d}", None, {"d": {"a": 1, "b": 2}}) == [
        ("a", {"key": "a", "item": 1}), ("b", {"key": "b", "item": 2})]
    assert [name for name, _ in plan._dvc_iterations("${l}", None, {"l": [3, True]})] == ["3", "true"]
    assert [name for name, _ in plan._dvc_iterations("${l}", None, {"l": [{"x": 1}, 2]})] == ["0", "1"]
    matrix = {"run": "${m}", "seed": "${s}", "opt": [[1], "z"]}
    params = {"m": {"kd_at": {"at": 1.0}}, "s": [0, 1]}
    assert [name for name, _ in plan._dvc_iterations(None, matrix, params)] == [
        "kd_at-0-opt0", "kd_at-0-z", "kd_at-1-opt0", "kd_at-1-z"]
    assert plan._dvc_resolve("a/${s[1]}/${m.kd_at.at}", params) == "a/1/1.0"
