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
    assert load_params([tmp_path / "p.yaml", tmp_path / "q.yaml"]) == {"a": {"b": 1, "c": 3}}


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
