"""One DAG, two front ends: Snakemake's plan and DVC's stages must be the same jobs, commands, edges,
params keys and code deps.

Each side is read through its own tool (`snakemake -n -p` for the rules, DVC's own resolver for dvc.yaml),
never from the other's file. Checked for the default params, the smoke preset, and a wider setting (three
seeds, the three KD ablations, the smoke preset's KD methods, four test splits) that exercises every foreach / matrix: dvc.yaml is
rendered once, and a changed params.yaml needs no new render.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import copy_repo, dvc_stages, snakemake_jobs, under

from aclnet_kd.cli import SUBCOMMANDS
from aclnet_kd.workflow import plan
from aclnet_kd.workflow.code import module_closure

LIGHT_FILES = ["Snakefile", "dvc.yaml", "params.yaml", "config/smoke.yaml", "config/paper.yaml",
               ".dvc/config", ".dvc/.gitignore", ".dvcignore", ".gitignore"]
ABLATIONS = {"kd_cld": "cld=1,mgmd=0,atd=0", "kd_mgmd": "cld=0,mgmd=1,atd=0", "kd_atd": "cld=0,mgmd=0,atd=1"}
CASES = {
    "default": dict(preset=None, edit=None),
    "smoke": dict(preset="config/smoke.yaml", edit=None),
    "seeds+ablations": dict(preset="config/smoke.yaml", edit={
        "seeds": [0, 1, 2], "ablations": ABLATIONS, "tracks": {"sod": {"test_splits": ["NJU2K", "NLPR", "STERE", "SIP"]}},
        }),
    # params `external` (issue 20): a released checkpoint (rail) and published maps (sod, one folder a split)
    "external": dict(preset="config/smoke.yaml", edit={"external": {
        "rel_s": {"track": "rail", "label": "S (released)", "paper_row": "ACLNet-S", "checkpoint": "downloads/s.pth",
                  "arch": "student"},
        "bbs": {"track": "sod", "label": "BBS (maps)", "paper_row": "BBS", "maps": "downloads/bbs/{split}"}}}),
}
EXTERNAL_FILES = ["downloads/s.pth", "downloads/bbs/NJU2K/a.png"]  # what the "external" case's readers bring


def _smoke_kd_methods() -> list[str]:
    import yaml

    from conftest import REPO_ROOT

    return list(yaml.safe_load((REPO_ROOT / "config/smoke.yaml").read_text())["kd_methods"])


def _light_copy(tmp_path, preset, edit):
    from conftest import REPO_ROOT
    files = LIGHT_FILES + [str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "workflow").rglob("*") if p.is_file()]
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
    if request.param == "external":
        for name in EXTERNAL_FILES:
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            (repo / name).write_bytes(b"")
    return request.param, snakemake_jobs(repo), dvc_stages(repo), repo


def test_same_commands(both):
    case, jobs, stages, _ = both
    snake = sorted(job["cmd"] for job in jobs)
    dvc = sorted(stage["cmd"] for stage in stages)
    assert len(snake) == len(set(snake)), "two Snakemake jobs run the same command"
    assert set(snake) - set(dvc) == set(), f"{case}: Snakemake jobs missing from dvc.yaml"
    assert set(dvc) - set(snake) == set(), f"{case}: dvc.yaml stages missing from the Snakefile"
    if case == "seeds+ablations":
        # 2 tracks x (teacher + 2 student runs x 3 seeds + 3 ablations + M smoke kd_methods x 3 seeds) trainings
        methods = len(_smoke_kd_methods())
        assert methods == 5  # response, fitnet, at, cwd, cirkd
        assert sum(cmd.split()[1] == "train" for cmd in snake) == 2 * (1 + 6 + 3 + 3 * methods)
        assert sum("--kd-method kd_fitnet" in cmd for cmd in snake) == 2 * 3
        assert sum("--kd-method kd_cwd" in cmd for cmd in snake) == sum("--kd-method kd_cirkd" in cmd for cmd in snake)
        assert sum("--kd-method kd_cirkd" in cmd for cmd in snake) == 2 * 3
        # (1 + 6 + 3 + 3 M) models x (1 rail split + 4 sod splits)
        assert sum(cmd.split()[1] == "predict" for cmd in snake) == (10 + 3 * methods) * 5
    if case == "external":
        assert sorted(cmd for cmd in snake if cmd.split()[1] == "external") == [
            f"aclnet external --params params.yaml --name {name} --data-root data/prepared "
            f"--out results/evaluate/external/{name}" for name in ("bbs", "rel_s")]


def test_same_stage_kinds(both):
    """A Snakemake rule and a DVC stage group run the same `aclnet` subcommand (names differ only by track)."""
    _, jobs, stages, _ = both
    by_cmd = {stage["cmd"]: stage["name"] for stage in stages}
    for job in jobs:
        group = by_cmd[job["cmd"]].split("@")[0]
        for track in plan.TRACKS:
            group = group.removesuffix(f"_{track}")
        group = {"predict_evaluate_teacher": "predict_evaluate",
                 "predict_evaluate_ablation": "predict_evaluate",
                 "predict_evaluate_kd_method": "predict_evaluate"}.get(group, group)
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


def test_resume_state_is_declared_by_neither(both):
    """A training's last.pt (plan.RESUME_STATE) is no output of either front end: Snakemake never deletes it (a
    killed job resumes from it), DVC never caches or pushes it, and a clone that pulled the results is complete."""
    _, jobs, stages, _ = both
    trainings = [job for job in jobs if job["rule"].startswith("train_")]
    assert trainings and all(any(path.endswith("/best.pt") for path in job["output"]) for job in trainings)
    assert not [path for job in jobs for path in job["output"] if path.endswith("/" + plan.RESUME_STATE)]
    assert not [out for stage in stages for out in stage["outs"] if out.endswith("/" + plan.RESUME_STATE)]


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
            if path.startswith(("downloads/", "src/")):
                continue  # the readers' own files (params `external`) and the code: from outside the DAG
            assert _producer(path, outputs), f"{job['rule']}: input {path} has no producer"


def test_same_params_keys(both):
    """Each DVC stage lists the params keys that the plan gives the Snakemake job running the same command
    (its rule and wildcards), and each names a value of params.yaml (a misspelt key would track nothing).
    That each rule's `params: reads` reruns on exactly these keys is exercised by the e2e tests."""
    import yaml

    _, jobs, stages, repo = both
    params = yaml.safe_load((repo / "params.yaml").read_text())
    role_of_model = {params["models"][role]["name"]: role for role in plan.ROLES}
    dvc_params = {stage["cmd"]: stage["params"] for stage in stages}
    for job in jobs:
        fields = dict(job["wildcards"])
        if job["rule"] == "external":  # one job per entry: its track is a value of the entry
            fields["track"] = params["external"][fields["name"]]["track"]
        if "track" in fields:
            fields["dataset"] = params["tracks"][fields["track"]]["dataset"]
        if "model" in fields:
            fields["role"] = role_of_model[fields["model"]]
        keys = plan.reads(plan.STAGES[job["rule"]], params, **fields)  # raises on a key params.yaml lacks
        assert keys, f"{job['rule']}: no params keys"
        assert sorted(keys) == dvc_params[job["cmd"]], job["cmd"]


def _source_files(deps: list[str]) -> set[str]:
    """The .py files a list of code deps (folders or files under src/) stands for."""
    from conftest import REPO_ROOT

    files = set()
    for dep in deps:
        path = REPO_ROOT / dep
        files |= {str(p.relative_to(REPO_ROOT)) for p in path.rglob("*.py")} if path.is_dir() else {dep}
    return files


def test_code_deps_cover_what_each_command_imports(both):
    """A stage's code deps hold every module its `aclnet` commands import, transitively (config.py,
    checkpoint.py, errors.py, data/, ...): a change to any of them reruns the stage in `dvc repro`."""
    from conftest import REPO_ROOT

    _, _, stages, _ = both
    for stage in stages:
        code = [dep for dep in stage["deps"] if dep.startswith("src/")]
        words = stage["cmd"].split()
        subcommands = [words[i + 1] for i, word in enumerate(words[:-1])
                       if word in ("aclnet", "aclnet_kd.cli") and words[i + 1] in SUBCOMMANDS]
        assert subcommands, stage["cmd"]
        imported = module_closure([SUBCOMMANDS[name][0] for name in subcommands])
        needed = {str(Path("src", *m.split(".")).with_suffix(".py")) for m in imported}
        needed = {p if (REPO_ROOT / p).is_file() else p.removesuffix(".py") + "/__init__.py" for p in needed}
        needed.discard("src/aclnet_kd/__init__.py")
        missing = needed - _source_files(code)
        assert not missing, f"{stage['name']}: code deps {code} leave out {sorted(missing)}"


def test_same_code_deps_per_job(both):
    """Snakemake's code inputs of a job are DVC's code deps of the stage running the same command, module by
    module; only a KD training may list fewer in Snakemake (its own terms' loss modules, where DVC's one
    stage definition over the params lists every loss module, plan.dvc_loads)."""
    _, jobs, stages, _ = both
    dvc_code = {stage["cmd"]: {d for d in stage["deps"] if d.startswith("src/")} for stage in stages}
    for job in jobs:
        snake = {path for path in job["input"] if path.startswith("src/")}
        dvc = dvc_code[job["cmd"]]
        assert snake and all(path.endswith(".py") for path in snake), job["rule"]
        if job["rule"] in ("train_student_kd", "train_ablation", "train_kd_method"):
            assert snake <= dvc and not {p for p in dvc - snake if not p.startswith("src/aclnet_kd/losses/")}, job
        else:
            assert snake == dvc, f"{job['cmd']}: only Snakemake {snake - dvc}, only DVC {dvc - snake}"


def test_dvc_status_plans_a_fresh_clone(both):
    """What docs/workflow.md offers instead of `dvc repro --dry` before the first run: `dvc status` lists every
    stage of a repository where nothing has run yet, and exits 0."""
    from conftest import BIN_DIR, run

    _, _, stages, repo = both
    out = run([str(BIN_DIR / "dvc"), "status"], repo, timeout=120).stdout
    listed = {line.rstrip(":") for line in out.splitlines() if line and not line[0].isspace()}
    assert {stage["name"] for stage in stages} <= listed, out


def test_decisive_preset_validates_and_plans_rail_jobs_only(tmp_path):
    """config/decisive.yaml (issue 25): params only_tracks cuts the DAG to the rail track, for every command
    (load_params) and for Snakemake alike; its seeds come from the power analysis (stats.decisive_seeds)."""
    import math

    from scipy import stats

    from conftest import REPO_ROOT
    from aclnet_kd.config import load_params
    from aclnet_kd.report.stats import decisive_seeds

    params = load_params([REPO_ROOT / "params.yaml", REPO_ROOT / "config/decisive.yaml"])
    assert list(params["tracks"]) == ["rail"]
    demo_sd = 0.0205 * math.sqrt(3) / stats.t.ppf(0.975, 2)  # the demo's rail S* − S interval, [−0.020, +0.021]
    assert params["seeds"] == list(range(decisive_seeds(demo_sd, 0.014)))
    files = LIGHT_FILES + ["config/decisive.yaml"] + [str(p.relative_to(REPO_ROOT))
                                                       for p in (REPO_ROOT / "workflow").rglob("*") if p.is_file()]
    repo = copy_repo(tmp_path / "repo", preset=None, files=files)
    jobs = snakemake_jobs(repo, ["--configfile", "config/decisive.yaml"])
    tracks = {job["wildcards"].get("track") for job in jobs} - {None}
    assert tracks == {"rail"}
    assert not any("sod" in path for job in jobs for path in job["output"] + job["input"])
    trainings = [job["cmd"] for job in jobs if job["cmd"] and " train " in f" {job['cmd']} "]
    assert len(trainings) == 1 + 2 * len(params["seeds"])  # the teacher, then S and S* at every seed
    # the preset's values reach every job through the run's params file, not through the command
    assert not any("config/decisive.yaml" in job["raw_cmd"] for job in jobs)
    assert all(f"--params {plan.RUN_PARAMS} " in job["raw_cmd"] for job in jobs if " train " in job["raw_cmd"])
