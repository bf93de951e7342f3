"""profiles/slurm: every training rule and predict_evaluate get the GPU partition and a runtime of their own
(a rule left out falls back to default-resources: the CPU partition and 60 minutes)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _rule_names() -> set[str]:
    names: set[str] = set()
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        names |= set(re.findall(r"^rule (\w+):", smk.read_text(), flags=re.MULTILINE))
    return names


def test_every_gpu_rule_has_its_slurm_resources():
    profile = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    gpu_rules = {name for name in _rule_names() if name.startswith("train_") or name == "predict_evaluate"}
    assert "train_kd_method" in gpu_rules  # the parser sees the rules
    missing = sorted(gpu_rules - set(profile["set-resources"]))
    assert not missing, f"profiles/slurm/config.yaml set-resources lacks {missing}"
    for name in gpu_rules:
        assert profile["set-resources"][name]["slurm_partition"] == "gpu", name
        assert profile["set-resources"][name]["runtime"] > 0, name
