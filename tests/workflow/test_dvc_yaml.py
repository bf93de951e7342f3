"""dvc.yaml is rendered from the plan (`aclnet dvc-yaml`); `--check` says whether the committed file is
what the plan renders, and a misspelt params key is an error, not an empty value."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import REPO_ROOT

from aclnet_kd.workflow import dvc_yaml, plan


def _check(path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aclnet_kd.cli", "dvc-yaml", "--check", "--file", str(path)],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)


def test_committed_dvc_yaml_is_the_render():
    proc = _check(REPO_ROOT / "dvc.yaml")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr


def test_check_fails_on_a_hand_edited_dvc_yaml(tmp_path):
    edited = tmp_path / "dvc.yaml"
    text = (REPO_ROOT / "dvc.yaml").read_text()
    assert "- src/aclnet_kd/config.py\n" in text
    edited.write_text(text.replace("- src/aclnet_kd/config.py\n", "", 1))  # drop one code dep by hand
    proc = _check(edited)
    assert proc.returncode == 1
    assert re.search(r"^\+ +- src/aclnet_kd/config.py$", proc.stdout, re.M)  # the diff shows what the plan wants back
    assert "aclnet dvc-yaml" in proc.stderr
    assert _check(tmp_path / "missing.yaml").returncode == 1


def test_write_then_check(tmp_path):
    from aclnet_kd import cli

    target = tmp_path / "dvc.yaml"
    assert cli.main(["dvc-yaml", "--file", str(target)]) == 0
    assert target.read_text() == dvc_yaml.render()
    assert cli.main(["dvc-yaml", "--check", "--file", str(target)]) == 0


def test_reads_rejects_a_misspelt_key():
    import yaml

    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    stage = plan.STAGES["train_teacher"]
    assert plan.reads(stage, params, track="rail")["models.teacher"] == params["models"]["teacher"]
    with pytest.raises(KeyError, match="tracks.rial"):
        plan.reads(stage, params, track="rial")
    with pytest.raises(KeyError, match="predict.protokol"):
        plan.get_key(params, "predict.protokol")


def test_seed_folder_regex_follows_the_template():
    match = plan.template_regex(plan.TRAIN_DIR).match("results/train/rail/kd_cld/seed3")
    assert match and match.groupdict() == {"track": "rail", "run": "kd_cld", "seed": "3"}
    assert plan.SEED_DIR.match("seed12").group("seed") == "12" and not plan.SEED_DIR.match("seedx/1")


def _stage_bodies() -> dict[str, dict]:
    """Each dvc.yaml stage group's body (a foreach's ``do``)."""
    import yaml

    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
    return {name: body.get("do", body) for name, body in stages.items()}


def test_code_deps_are_module_files_not_package_folders():
    """Issue 23: a stage depends on the modules it runs, never on a whole package folder (an edit to cld.py
    must not rerun prepare): every dep under src/ is one existing .py file."""
    for name, body in _stage_bodies().items():
        code = [dep for dep in body["deps"] if dep.startswith("src/")]
        assert code, name
        for dep in code:
            assert dep.endswith(".py") and (REPO_ROOT / dep).is_file(), f"{name}: code dep {dep} is not a module file"


def test_code_deps_per_stage_follow_what_its_jobs_load_by_name():
    """The modules a job loads by name (the loss terms, a dataset's generator) are deps of the stages that load
    them only: cld.py is no dep of prepare, the teachers, the plain students, complexity or latency; a track's
    prepare depends on its own generator only; every KD training group lists every loss module, because DVC
    fixes a group's deps before it reads the weights and run names that choose the terms."""
    bodies = _stage_bodies()
    cld, rail_gen, sod_gen = ("src/aclnet_kd/losses/cld.py", "src/aclnet_kd/data/synthetic_rail.py",
                              "src/aclnet_kd/data/synthetic_sod.py")
    for name, body in bodies.items():
        loads_losses = name.startswith(("train_student_kd_", "train_ablation_", "train_kd_method_"))
        assert (cld in body["deps"]) == loads_losses, name
        assert (rail_gen in body["deps"]) == (name == "prepare_rail"), name
        assert (sod_gen in body["deps"]) == (name == "prepare_sod"), name
    assert "src/aclnet_kd/losses/fitnet.py" in bodies["train_kd_method_sod"]["deps"]


def test_job_code_is_per_job():
    """Snakemake's inputs (plan.job_code): a job lists exactly the loss modules of its own KD terms."""
    from aclnet_kd.config import load_params

    params = load_params([REPO_ROOT / "params.yaml", REPO_ROOT / "config/smoke.yaml"])
    params = {**params, "ablations": {"kd_mgmd": "cld=0,mgmd=1,atd=0"}}
    losses = {"src/aclnet_kd/losses/" + name + ".py" for name in ("cld", "mgmd", "atd", "response", "fitnet",
                                                                   "at", "cwd", "cirkd")}

    def loss_files(stage: str, **fields) -> set[str]:
        return set(plan.job_code(plan.STAGES[stage], params, **fields)) & losses

    assert loss_files("train_teacher", track="rail") == set() == loss_files("train_student", track="sod")
    assert loss_files("train_student_kd", track="rail") == {f"src/aclnet_kd/losses/{n}.py" for n in ("cld", "mgmd", "atd")}
    assert loss_files("train_ablation", track="rail", run="kd_mgmd") == {"src/aclnet_kd/losses/mgmd.py"}
    # AT reuses ATD's attention map (an import), so both are its code
    assert loss_files("train_kd_method", track="rail", run="kd_at") == {"src/aclnet_kd/losses/at.py",
                                                                         "src/aclnet_kd/losses/atd.py"}
    assert loss_files("train_kd_method", track="rail", run="kd_fitnet") == {"src/aclnet_kd/losses/fitnet.py"}
    prepare_sod = plan.job_code(plan.STAGES["prepare"], params, dataset="synthetic-sod")
    assert "src/aclnet_kd/data/synthetic_sod.py" in prepare_sod
    assert "src/aclnet_kd/data/synthetic_rail.py" not in prepare_sod
    # the parent packages run on import; the loss modules' own imports are followed
    assert {"src/aclnet_kd/losses/__init__.py", "src/aclnet_kd/losses/distillation.py"} <= set(
        plan.job_code(plan.STAGES["train_student"], params, track="rail"))


def _dvc_cases() -> dict[str, dict]:
    from test_dag import CASES  # default, smoke, seeds+ablations, external: every foreach / matrix of dvc.yaml

    return {**CASES, "kd-methods": dict(preset="config/kd-methods.yaml", edit=None)}


@pytest.fixture(scope="module", params=list(_dvc_cases()))
def dvc_copy(request, tmp_path_factory):
    """A scratch repo with only what DVC reads to list the stages: dvc.yaml, .dvc/config and params.yaml
    with the case's preset merged in (as a DVC user applies one)."""
    from conftest import copy_repo

    case = _dvc_cases()[request.param]
    files = ["dvc.yaml", "params.yaml", ".dvc/config"] + ([case["preset"]] if case["preset"] else [])
    return copy_repo(tmp_path_factory.mktemp(request.param) / "repo", files=files, **case)


def test_plan_names_every_dvc_stage_with_its_outputs(dvc_copy):
    """plan.dvc_addresses (what common.smk passes to `dvc commit`) names the stages as DVC does
    (`dvc stage list`) and gives each the outputs DVC resolves from dvc.yaml (outs, metrics, plot data)."""
    import yaml

    from conftest import BIN_DIR, dvc_stages, run

    params = yaml.safe_load((dvc_copy / "params.yaml").read_text())
    addresses = plan.dvc_addresses(params)
    listed = run([str(BIN_DIR / "dvc"), "stage", "list", "--all", "--name-only"], dvc_copy, timeout=180).stdout.split()
    assert len(listed) == len(set(listed))
    assert sorted(addresses) == sorted(listed)
    resolved = {stage["name"]: sorted(stage["outs"]) for stage in dvc_stages(dvc_copy)}
    assert {address: sorted(outs) for address, outs in addresses.items()} == resolved
