"""Plain-YAML params: load, merge presets, and read sections with errors that name the key.

``params.yaml`` is the single source of truth. Presets (``config/smoke.yaml``, ``config/paper.yaml``) are
extra YAML files deep-merged over it, in order. Nothing here executes config.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

from aclnet_kd.errors import AclnetError


def deep_merge(base: dict, override: dict) -> dict:
    """Return ``base`` with ``override`` merged in; nested dicts merge, everything else replaces."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_yaml(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise AclnetError(f"{path}: params file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise AclnetError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(data, dict):
        raise AclnetError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def load_params(paths: list[str | os.PathLike] | str | os.PathLike) -> dict:
    """Load one or more params files, later files deep-merged over earlier ones."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    params: dict = {}
    for path in paths:
        params = deep_merge(params, load_yaml(path))
    return params


def section(params: dict, dotted_key: str, source: str = "params") -> Any:
    """``section(p, "train.teacher")`` -> ``p["train"]["teacher"]``, or an error naming the missing key."""
    node: Any = params
    walked = []
    for part in dotted_key.split("."):
        walked.append(part)
        if not isinstance(node, dict) or part not in node:
            raise AclnetError(f"{source}: missing key '{'.'.join(walked)}'")
        node = node[part]
    return node
