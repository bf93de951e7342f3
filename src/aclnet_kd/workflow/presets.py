"""`aclnet params`: merge and check params files (params.yaml, then presets), and say a preset to DVC.

    aclnet params --params params.yaml --params config/kd-methods.yaml           the merged params (YAML)
    aclnet params --params params.yaml --params config/kd-methods.yaml --dvc-set the preset as `dvc exp run -S`

Snakemake merges a preset itself (`--configfile`) and writes what every job reads (workflow.plan.RUN_PARAMS).
DVC reads params.yaml only; ``--dvc-set`` turns the presets into Hydra overrides of params.yaml's values
(``++key=value``, one per value a preset sets), which DVC's `dvc exp run --set-param` applies to params.yaml
before it runs the changed stages:

    eval "dvc exp run $(aclnet params --params params.yaml --params config/kd-methods.yaml --dvc-set)"

A file that is not valid YAML, or merged params that the schema rejects, is an error naming the file and
line, or the key: the check to run before `snakemake --configfile` (Snakemake reads a preset before the
workflow's own code runs, and its message names neither; docs/workflow.md).
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
from typing import Any

import yaml

from aclnet_kd.config import deep_merge, load_params, load_yaml

_BARE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")  # a Hydra key or string that needs no quotes


def hydra_value(value: Any) -> str:
    """``value`` in Hydra's override grammar (lists, dicts, quoted strings, numbers, true/false/null)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {hydra_value(item)}" for key, item in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(hydra_value(item) for item in value) + "]"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return json.dumps(value)  # bool -> true/false, None -> null, numbers as written by repr


def dvc_overrides(base: dict, preset: dict, prefix: str = "") -> list[str]:
    """The Hydra overrides that turn ``base`` into ``deep_merge(base, preset)``: one ``++key=value`` per value
    ``preset`` sets (a dict merged key by key where ``base`` has a dict, as the deep merge does)."""
    overrides = []
    for key, value in preset.items():
        if not _BARE.match(str(key)):
            raise ValueError(f"{prefix}{key}: DVC's --set-param cannot name this key")
        if isinstance(value, dict) and value and isinstance(base.get(key), dict):
            overrides += dvc_overrides(base[key], value, f"{prefix}{key}.")
        else:
            overrides.append(f"++{prefix}{key}={hydra_value(value)}")
    return overrides


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", action="append", required=True,
                        help="params file; repeat for presets, merged in order (params.yaml first)")
    parser.add_argument("--dvc-set", action="store_true",
                        help="print the presets (every file after the first) as `dvc exp run` -S arguments")


def main(args: argparse.Namespace) -> int:
    load_params(args.params)  # validated: bad YAML names the file and line, a bad value its key
    if not args.dvc_set:
        print(yaml.safe_dump(load_params(args.params, validate=False), sort_keys=False, allow_unicode=True), end="")
        return 0
    merged, words = load_yaml(args.params[0]), []
    for path in args.params[1:]:
        preset = load_yaml(path)
        words += [f"-S {shlex.quote(override)}" for override in dvc_overrides(merged, preset)]
        merged = deep_merge(merged, preset)
    print(" ".join(words))
    return 0
