"""Params loading: deep merge of presets, and errors that name the file or key."""

from __future__ import annotations

import pytest

from aclnet_kd.config import deep_merge, load_params, section
from aclnet_kd.errors import AclnetError


def test_deep_merge_merges_nested_and_replaces_leaves():
    base = {"train": {"lr": 1e-4, "teacher": {"epochs": 2}}, "seeds": [0, 1]}
    merged = deep_merge(base, {"train": {"teacher": {"epochs": 150}}, "seeds": [3]})
    assert merged == {"train": {"lr": 1e-4, "teacher": {"epochs": 150}}, "seeds": [3]}
    assert base["train"]["teacher"]["epochs"] == 2  # inputs untouched


def test_presets_merge_in_order(tmp_path):
    (tmp_path / "p.yaml").write_text("a: {b: 1, c: 2}\n")
    (tmp_path / "q.yaml").write_text("a: {c: 3}\n")
    assert load_params([tmp_path / "p.yaml", tmp_path / "q.yaml"], validate=False) == {"a": {"b": 1, "c": 3}}


def test_errors_name_file_and_key(tmp_path):
    with pytest.raises(AclnetError, match="missing.yaml: params file not found"):
        load_params(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("a: [1, 2\n")
    with pytest.raises(AclnetError, match="bad.yaml: not valid YAML"):
        load_params(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(AclnetError, match="list.yaml: expected a mapping"):
        load_params(tmp_path / "list.yaml")
    with pytest.raises(AclnetError, match="missing key 'train.student'"):
        section({"train": {"teacher": {}}}, "train.student")


def test_params_yaml_is_plain_yaml(repo_root):
    params = load_params(repo_root / "params.yaml")
    assert {"datasets", "tracks", "train", "kd"} <= set(params)


def test_load_params_validates_the_merged_params(repo_root, tmp_path):
    """Every command that loads params checks them against the schema, naming the files and each bad key."""
    (tmp_path / "typo.yaml").write_text("train: {epochz: 3, lr: 1e-4}\n")
    with pytest.raises(AclnetError) as err:
        load_params([repo_root / "params.yaml", tmp_path / "typo.yaml"])
    text = str(err.value)
    assert "typo.yaml" in text and "'epochz' was unexpected" in text
    assert "train.lr: '1e-4' is not of type 'number'" in text  # YAML 1.1 reads 1e-4 as text
    with pytest.raises(AclnetError, match="<top level>: 'seeds' is a required property"):
        load_params(tmp_path / "typo.yaml")
