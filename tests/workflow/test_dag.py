"""One DAG, two front ends: Snakemake's plan and DVC's stages must be the same jobs, commands and edges.

Each side is read through its own tool (`snakemake -n -p` for the rules, DVC's own resolver for dvc.yaml),
never from the other's file. Checked for the default params, the smoke preset, and a wider setting (three
seeds, the three KD ablations) that exercises every foreach / matrix.
"""

from __future__ import annotations

import pytest

from conftest import copy_repo, dvc_stages, snakemake_jobs, under

LIGHT_FILES = ["Snakefile", "dvc.yaml", "params.yaml", "config/smoke.yaml", "config/paper.yaml",
               ".dvc/config", ".dvc/.gitignore", ".dvcignore", ".gitignore"]
ABLATIONS = {"kd_cld": "cld=1,mgmd=0,atd=0", "kd_mgmd": "cld=0,mgmd=1,atd=0", "kd_atd": "cld=0,mgmd=0,atd=1"}
CASES = {
    "default": dict(preset=None, edit=None),
    "smoke": dict(preset="config/smoke.yaml", edit=None),
    "seeds+ablations": dict(preset="config/smoke.yaml", edit={"seeds": [0, 1, 2], "ablations": ABLATIONS}),
}


def _light_copy(tmp_path, preset, edit):
    from conftest import REPO_ROOT
    files = LIGHT_FILES + [str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "rules").glob("*.smk")]
    files += [str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "workflow").rglob("*") if p.is_file()]
    return copy_repo(tmp_path / "repo", preset=preset, edit=edit, files=files)


def _producer(path: str, outputs: dict[str, list[str]]) -> set[str]:
    """Commands whose outputs are ``path``, lie inside it (a folder dep), or contain it (a file in a folder)."""
    return {cmd for cmd, outs in outputs.items() if any(under(path, o) or under(o, path) for o in outs)}


def _edges(consumers: dict[str, list[str]], outputs: dict[str, list[str]]) -> set[tuple[str, str]]:
    return {(producer, cmd) for cmd, deps in consumers.items() for dep in deps
            for producer in _producer(dep, outputs) if producer != cmd}


@pytest.fixture(scope="module", params=list(CASES))
def both(request, tmp_path_factory):
    repo = _light_copy(tmp_path_factory.mktemp(request.param), **CASES[request.param])
    return request.param, snakemake_jobs(repo), dvc_stages(repo), repo


def test_same_commands(both):
    case, jobs, stages, _ = both
    snake = sorted(job["cmd"] for job in jobs)
    dvc = sorted(stage["cmd"] for stage in stages)
    assert len(snake) == len(set(snake)), "two Snakemake jobs run the same command"
    assert set(snake) - set(dvc) == set(), f"{case}: Snakemake jobs missing from dvc.yaml"
    assert set(dvc) - set(snake) == set(), f"{case}: dvc.yaml stages missing from the Snakefile"
    if case == "seeds+ablations":
        # 2 tracks x (teacher + 2 student runs x 3 seeds + 3 ablations) trainings
        assert sum(cmd.split()[1] == "train" for cmd in snake) == 2 * (1 + 6 + 3)


def test_same_stage_kinds(both):
    """A Snakemake rule and a DVC stage group run the same `aclnet` subcommand (names differ only by track)."""
    _, jobs, stages, _ = both
    by_cmd = {stage["cmd"]: stage["name"] for stage in stages}
    for job in jobs:
        group = by_cmd[job["cmd"]].split("@")[0]
        for suffix in ("_rail", "_sod"):
            group = group.removesuffix(suffix)
        group = {"predict_evaluate_teacher": "predict_evaluate",
                 "predict_evaluate_ablation": "predict_evaluate"}.get(group, group)
        assert group == job["rule"], f"{job['cmd']}: Snakemake rule {job['rule']} vs DVC stage {by_cmd[job['cmd']]}"


def test_same_outputs(both):
    """Each DVC out is one Snakemake output or a folder holding some; each Snakemake output is covered."""
    _, jobs, stages, _ = both
    dvc_outs = {stage["cmd"]: stage["outs"] for stage in stages}
    for job in jobs:
        outs = dvc_outs[job["cmd"]]
        for path in job["output"]:
            assert any(under(path, o) for o in outs), f"{job['rule']}: output {path} not an out in dvc.yaml"
        for o in outs:
            assert any(under(path, o) for path in job["output"]), f"{job['rule']}: dvc out {o} not in the rule"


def test_same_edges(both):
    """The input -> output edges between jobs (data/ and results/ paths) are the same in both DAGs."""
    _, jobs, stages, _ = both
    snake_edges = _edges({j["cmd"]: j["input"] for j in jobs}, {j["cmd"]: j["output"] for j in jobs})
    data_deps = {s["cmd"]: [d for d in s["deps"] if d.startswith(("data/", "results/"))] for s in stages}
    dvc_edges = _edges(data_deps, {s["cmd"]: s["outs"] for s in stages})
    assert snake_edges, "no edges found: the parsers are broken"
    assert snake_edges - dvc_edges == set(), "edges only Snakemake has"
    assert dvc_edges - snake_edges == set(), "edges only DVC has"
    # every input of a Snakemake job is produced by some job (nothing is read from outside the DAG)
    outputs = {j["cmd"]: j["output"] for j in jobs}
    for job in jobs:
        for path in job["input"]:
            assert _producer(path, outputs), f"{job['rule']}: input {path} has no producer"


def test_dvc_params_exist(both):
    """Every `params:` key in dvc.yaml names a value of params.yaml (a typo would silently track nothing),
    and every stage but complexity (which reads no params) lists some."""
    import yaml

    from aclnet_kd.config import section

    _, _, stages, repo = both
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for stage in stages:
        for key in stage["params"]:
            section(params, key)  # raises naming the key
        assert stage["params"] or stage["name"].startswith("complexity"), f"{stage['name']} lists no params"
