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


def test_classic_methods_run_and_fitnet_adapters_always_train():
    """response, fitnet and at build from the registry, run on ACLNet-shaped outputs, give finite values; FitNet's
    adapters reach the optimizer whatever kd.train_kd_modules says and are in the state_dict (checkpoints)."""
    from types import SimpleNamespace

    import torch

    from aclnet_kd.losses import DistillationLoss

    torch.manual_seed(0)
    channels = (4, 6, 8, 10)
    loss = DistillationLoss({"response": 1.0, "fitnet": 1.0, "at": 1.0}, channels=channels,
                            options={"response_mode": "kl", "response_temperature": 2.0, "at_beta": 10.0})
    assert loss.active_terms == ("response", "fitnet", "at")
    assert (loss.response.mode, loss.response.temperature, loss.at.beta) == ("kl", 2.0, 10.0)

    def out(scale):
        feats = [scale * torch.randn(2, c, 16 // 2 ** i, 16 // 2 ** i) for i, c in enumerate(channels)]
        return SimpleNamespace(side_logits=[scale * torch.randn(2, 1, 16, 16) for _ in channels],
                               stage_feats=feats, decoder_feats=feats)

    values = loss(out(1.0), out(2.0))
    assert set(values) == {"response", "fitnet", "at"} and all(torch.isfinite(v) and v > 0 for v in values.values())
    trained = loss.trainable_parameters(False)
    assert trained and {id(p) for p in trained} == {id(p) for p in loss.fitnet.parameters()}
    assert sum(p.numel() for p in trained) == sum(c * c + c for c in channels)  # 1x1 conv + bias per stage
    assert any(key.startswith("fitnet.adapters.0.") for key in loss.state_dict())
