"""`aclnet params` (aclnet_kd.workflow.presets): the merged params of params.yaml + presets, a broken preset's
file and line, and a preset as `dvc exp run -S` overrides that give DVC the same params Snakemake merges.
The real `dvc exp run` with them runs in tests/workflow/test_e2e.py."""

from __future__ import annotations

import shlex

import pytest
import yaml

from conftest import BIN_DIR, REPO_ROOT, run

from aclnet_kd.config import deep_merge, load_params, load_yaml
from aclnet_kd.workflow.presets import dvc_overrides, hydra_value

PRESETS = sorted(p.name for p in (REPO_ROOT / "config").glob("*.yaml"))


def _aclnet_params(*args: str, cwd=REPO_ROOT, check: bool = True):
    return run([str(BIN_DIR / "aclnet"), "params", *args], cwd, timeout=60, check=check)


def _apply_with_hydra(params: dict, overrides: list[str]) -> dict:
    """Apply Hydra `++key=value` overrides as DVC's --set-param does (Hydra's parser, OmegaConf's update)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    config = OmegaConf.create(params)
    for override in OverridesParser.create().parse_overrides(overrides):
        assert override.is_force_add()
        OmegaConf.update(config, override.key_or_group, override.value(), merge=True, force_add=True)
    return OmegaConf.to_container(config)


@pytest.mark.parametrize("preset", PRESETS)
def test_dvc_overrides_give_the_merged_params(preset):
    base = load_yaml(REPO_ROOT / "params.yaml")
    overrides = dvc_overrides(base, load_yaml(REPO_ROOT / "config" / preset))
    assert overrides and all(item.startswith("++") for item in overrides)
    assert _apply_with_hydra(base, overrides) == deep_merge(base, load_yaml(REPO_ROOT / "config" / preset))


def test_dvc_set_prints_shell_words_of_every_preset_in_order(tmp_path):
    (tmp_path / "a.yaml").write_text("seeds: [4]\ntrain: {precision: fp32}\n")
    (tmp_path / "b.yaml").write_text("train: {epochs: 2}\nkd_methods: {kd_at: {at: 1.0}}\n")
    out = _aclnet_params("--params", "params.yaml", "--params", str(tmp_path / "a.yaml"), "--params",
                         str(tmp_path / "b.yaml"), "--dvc-set").stdout
    words = shlex.split(out)
    assert words[::2] == ["-S"] * 4
    assert words[1::2] == ["++seeds=[4]", '++train.precision="fp32"', "++train.epochs=2", "++kd_methods.kd_at={at: 1.0}"]


def test_without_dvc_set_prints_the_merged_params():
    out = _aclnet_params("--params", "params.yaml", "--params", "config/kd-methods.yaml").stdout
    assert yaml.safe_load(out) == load_params([REPO_ROOT / "params.yaml", REPO_ROOT / "config/kd-methods.yaml"],
                                              validate=False)


def test_a_preset_that_is_not_yaml_is_named_with_its_line(tmp_path):
    """Snakemake reads a --configfile before the workflow's code and says only "Config file is not valid
    JSON or YAML"; `aclnet params` (which `make kd-methods` runs first) names the file and the line."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("seeds: [0, 1, 2]\ntrain:\n  epochs: [4\n  lr: 1.0e-4\n")
    proc = _aclnet_params("--params", "params.yaml", "--params", str(bad), check=False)
    assert proc.returncode == 2
    message = proc.stderr
    assert f"{bad}: not valid YAML" in message and f'in "{bad}", line 3' in message, message


def test_a_preset_with_a_wrong_key_is_named(tmp_path):
    preset = tmp_path / "typo.yaml"
    preset.write_text("train: {epoch: 3}\n")
    proc = _aclnet_params("--params", "params.yaml", "--params", str(preset), "--dvc-set", check=False)
    assert proc.returncode == 2 and "train.epoch" in proc.stderr and not proc.stdout


@pytest.mark.parametrize("value, text", [
    ("a'b \"c\"", '"a\'b \\"c\\""'), (None, "null"), (True, "true"), (1.0e-4, "0.0001"), ([], "[]"), ({}, "{}"),
])
def test_hydra_values(value, text):
    assert hydra_value(value) == text
