"""The loss registry is where loss names are written: the schema, the recipe, the loss module, the loop's log
and the report read them from there, and the registry itself imports no torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from aclnet_kd.losses import registry


def test_registry_imports_without_torch():
    code = "import sys, aclnet_kd.losses.registry, aclnet_kd.config; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_schema_weight_keys_and_ablation_pattern_come_from_the_registry():
    import re

    import yaml

    from aclnet_kd.config import SCHEMA, schema_with_names

    schema = schema_with_names(yaml.safe_load(SCHEMA.read_text()))
    weights = schema["properties"]["kd"]["properties"]["weights"]
    assert tuple(weights["properties"]) == registry.WEIGHT_KEYS
    pattern = schema["properties"]["ablations"]["additionalProperties"]["pattern"]
    assert re.match(pattern, "cld=1,mgmd=0,atd=0") and not re.match(pattern, "kl=1")


def test_every_term_builds_and_its_builder_matches_its_declaration():
    from aclnet_kd.losses import DistillationLoss

    loss = DistillationLoss({name: 1.0 for name in registry.KD_TERMS})
    assert loss.active_terms == registry.KD_TERMS
    for term in registry.TERMS:
        assert hasattr(getattr(loss, term.name), "distill"), term.name


def test_recipe_and_report_read_the_registry():
    from aclnet_kd.report.collect import ABLATION_RUNS
    from aclnet_kd.train.recipe import parse_kd_weights

    assert parse_kd_weights(",".join(f"{k}=1" for k in registry.WEIGHT_KEYS)) == dict.fromkeys(
        registry.WEIGHT_KEYS, 1.0)
    assert [run for run in ABLATION_RUNS if run.startswith("kd_")] == [f"kd_{t}" for t in registry.RELEASE_TERMS]


def test_train_kd_modules_switch_and_always_terms():
    from aclnet_kd.losses import DistillationLoss

    loss = DistillationLoss({"cld": 1.0, "atd": 1.0})
    assert loss.trainable_parameters(False) == []
    assert not any(p.requires_grad for p in loss.parameters())
    assert len(loss.trainable_parameters(True)) == len(list(loss.parameters()))
    assert all(p.requires_grad for p in loss.parameters())


def test_a_bad_declaration_is_refused():
    with pytest.raises(ValueError, match="consumes"):
        registry.KDTerm("x", "X", "m:f", ("logits",))
    with pytest.raises(KeyError, match="registered"):
        registry.get_term("nope")


def test_schema_names_come_from_constants():
    import yaml

    from aclnet_kd.config import SCHEMA, schema_with_names
    from aclnet_kd.constants import DEPTH_POLARITIES, MODEL_NAMES

    schema = schema_with_names(yaml.safe_load(SCHEMA.read_text()))
    assert schema["$defs"]["model"]["properties"]["name"]["enum"] == list(MODEL_NAMES)
    assert schema["$defs"]["dataset"]["properties"]["depth_polarity"]["enum"] == list(DEPTH_POLARITIES)
