"""params.yaml is checked against workflow/schemas/params.schema.yaml, once per command, in
aclnet_kd.config.load_params: `snakemake -n`, `dvc repro` and a hand-run `aclnet` command fail with the
same message naming the key, before any job or output. The presets and the default pass.
"""

from __future__ import annotations

import pytest
import yaml

from conftest import BIN_DIR, REPO_ROOT, copy_repo, run

SCHEMA = REPO_ROOT / "workflow" / "schemas" / "params.schema.yaml"


def _validate(params: dict) -> None:
    from aclnet_kd.config import SCHEMA as USED, validate_params
    assert USED == SCHEMA
    validate_params(params)


def _params(*presets: str) -> dict:
    from aclnet_kd.config import load_params
    return load_params([REPO_ROOT / "params.yaml", *(REPO_ROOT / p for p in presets)])


@pytest.mark.parametrize("presets", [(), ("config/smoke.yaml",), ("config/paper.yaml",), ("config/kd-methods.yaml",)])
def test_default_and_presets_are_valid(presets):
    _validate(_params(*presets))


def test_torchrun_on_cpu_is_valid():
    """train_gpus 0 with the torchrun launcher: N CPU processes (gloo), as tests/workflow/test_scaleout.py runs."""
    from aclnet_kd.config import deep_merge

    _validate(deep_merge(_params("config/smoke.yaml"),
                         {"compute": {"launcher": "torchrun --standalone --nproc_per_node 2 -m aclnet_kd.cli"}}))


@pytest.mark.parametrize("edit, names", [
    ({"train": {"epochs": "two"}}, ["epochs", "'two' is not of type 'integer'"]),
    ({"train": {"epochz": 3}}, ["epochz"]),
    ({"kd": {"weights": {"cld": -1}}}, ["cld"]),
    ({"tracks": {"rail": {"test_splits": []}}}, ["test_splits"]),
    ({"datasets": {"synthetic-rail": {"source": "rail", "root": None}}}, ["root"]),
    ({"ablations": {"kd_cld": "cld=one"}}, ["kd_cld"]),
    ({"compute": {"train_gpus": 1.5}}, ["train_gpus"]),
    ({"kd_methods": {"kd_x": {"responze": 1}}}, ["kd_methods.kd_x", "responze"]),
    ({"kd_methods": {"kd_x": {"at": -1}}}, ["kd_methods.kd_x.at"]),
    ({"kd_methods": {"kd_x": {}}}, ["kd_methods.kd_x"]),
    ({"kd_methods": {"fitnet": {"fitnet": 1}}}, ["kd_methods", "fitnet"]),
    ({"kd_methods": {"kd_none": {"label": 1}}}, ["kd_methods.kd_none: no KD weight > 0"]),
    ({"kd_methods": {"kd_cld": {"cld": 1}}, "ablations": {"kd_cld": "cld=1"}}, ["kd_methods.kd_cld: also a key"]),
    ({"kd": {"options": {"response_mode": "l2"}}}, ["kd.options.response_mode"]),
    ({"tracks": {"rail": {"dataset": "nope"}}}, ["tracks.rail.dataset: 'nope' is not a key of 'datasets'"]),
    ({"compute": {"launcher": "torchrun --standalone --nproc_per_node 2 -m aclnet_kd.cli", "train_gpus": 1}},
     ["compute.launcher", "train_gpus 1"]),
    ({"compute": {"launcher": "torchrun --standalone --nproc_per_node 2 -m aclnet_kd.cli", "train_gpus": 4}},
     ["compute.launcher", "--nproc_per_node 4"]),
])
def test_schema_rejects_and_names_the_key(edit, names):
    from aclnet_kd.config import deep_merge
    from aclnet_kd.errors import AclnetError

    with pytest.raises(AclnetError) as err:
        _validate(deep_merge(_params(), edit))
    for name in names:
        assert name in str(err.value)


LIGHT = ["Snakefile", "params.yaml", ".dvc/config", ".dvcignore"]


def _light_copy(tmp_path, edit):
    files = LIGHT + [str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "workflow").rglob("*") if p.is_file()]
    return copy_repo(tmp_path / "repo", preset=None, edit=edit, files=files, validate=False)


@pytest.mark.parametrize("edit, message", [
    ({"predict": {"protokol": "sigmoid"}}, "'protokol' was unexpected"),
    ({"datasets": {"neu": {"source": "rail", "root": "no/such/folder"}}, "tracks": {"rail": {"dataset": "neu"}}},
     "datasets.neu.root: folder 'no/such/folder' does not exist"),
    ({"compute": {"train_gpus": 2}}, "compute.launcher"),
])
def test_workflow_fails_before_any_job(tmp_path, edit, message):
    repo = _light_copy(tmp_path, edit)
    proc = run([str(BIN_DIR / "snakemake"), "-n", "--cores", "1"], repo, timeout=60, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert message in output, output[-3000:]
    assert "Building DAG of jobs" not in output  # failed while loading, before planning any job


def test_preset_via_configfile_matches_merged_params(tmp_path):
    """`--configfile config/smoke.yaml` plans the same jobs, with the same commands, as params.yaml with the
    preset merged in: every command reads the run's merged params (plan.RUN_PARAMS), whichever preset.
    It also guards common.smk's _configfiles, the one read of Snakemake's undocumented
    `workflow.overwrite_configfiles`: if Snakemake changes it, this fails."""
    from conftest import snakemake_jobs

    files = LIGHT + ["config/smoke.yaml"]
    files += [str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "workflow").rglob("*") if p.is_file()]
    plain = copy_repo(tmp_path / "plain", preset=None, files=files)
    merged = copy_repo(tmp_path / "merged", preset="config/smoke.yaml", files=files)
    via_cli = sorted(j["raw_cmd"] for j in snakemake_jobs(plain, ["--configfile", "config/smoke.yaml"]))
    via_merge = sorted(j["raw_cmd"] for j in snakemake_jobs(merged))
    assert via_cli == via_merge and not any("config/smoke.yaml" in c for c in via_cli)
    assert yaml.safe_load((merged / "params.yaml").read_text())["train"]["epochs"] == 1


def test_every_front_end_gives_the_same_error(tmp_path):
    """Bad params: `snakemake -n`, `dvc repro` and a hand-run `aclnet` command all stop with the message of
    config.validate_params, and nothing is written."""
    files = LIGHT + ["dvc.yaml"] + [str(p.relative_to(REPO_ROOT)) for folder in ("workflow", "src")
                                    for p in (REPO_ROOT / folder).rglob("*") if p.is_file() and "__pycache__" not in str(p)]
    repo = copy_repo(tmp_path / "repo", preset=None, edit={"predict": {"protokol": "sigmoid"}}, files=files,
                     validate=False)
    message = "predict: Additional properties are not allowed ('protokol' was unexpected)"
    snake = run([str(BIN_DIR / "snakemake"), "-n", "--cores", "1"], repo, timeout=60, check=False)
    by_hand = run([str(BIN_DIR / "aclnet"), "prepare", "--params", "params.yaml", "--dataset", "synthetic-rail",
                   "--out", "data/prepared/synthetic-rail"], repo, timeout=120, check=False)
    dvc = run([str(BIN_DIR / "dvc"), "repro", "prepare_rail"], repo, timeout=120, check=False)
    for proc in (snake, by_hand, dvc):
        assert proc.returncode != 0 and message in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-3000:]
    assert not (repo / "data" / "prepared").exists()
