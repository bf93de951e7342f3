"""dvc.yaml is rendered from the plan (`aclnet dvc-yaml`); `--check` says whether the committed file is
what the plan renders, and a misspelt params key is an error, not an empty value."""

from __future__ import annotations

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
    assert "+      - src/aclnet_kd/config.py" in proc.stdout  # the diff shows what the plan wants back
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
