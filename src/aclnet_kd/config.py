"""Plain-YAML params: load, merge presets, validate, and read sections with errors that name the key.

``params.yaml`` is the single source of truth. Presets (``config/smoke.yaml``, ``config/paper.yaml``) are
extra YAML files deep-merged over it, in order. The merged params are checked once, against
``workflow/schemas/params.schema.yaml`` (jsonschema) plus the cross-references a schema cannot express, by
every command that reads them and by the Snakefile: `snakemake`, `dvc repro` and a hand-run `aclnet`
command all fail with the same message. Nothing here executes config.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any

import yaml

from aclnet_kd.errors import AclnetError

# The repository's schema (the package is installed from the repository, editable).
SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "params.schema.yaml"


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


def load_params(paths: list[str | os.PathLike] | str | os.PathLike, validate: bool = True) -> dict:
    """Load one or more params files, later files deep-merged over earlier ones, and validate the result
    (``validate=False``: a partial file, e.g. a preset on its own)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    params: dict = {}
    for path in paths:
        params = deep_merge(params, load_yaml(path))
    if validate:
        validate_params(params, " + ".join(str(p) for p in paths))
        params = select_tracks(params)
    return params


def select_tracks(params: dict) -> dict:
    """``params`` with ``tracks`` cut down to ``only_tracks`` when that optional key is set (a rail-only
    preset, config/decisive.yaml: a deep merge cannot delete a track). Call it after validation, which
    sees both tracks; every command (load_params) and the Snakefile see the same cut."""
    only = params.get("only_tracks")
    if not only:
        return params
    return {**params, "tracks": {track: spec for track, spec in params["tracks"].items() if track in only}}


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def schema_with_names(schema: dict) -> dict:
    """The schema with the names that are written in the package, not in the YAML: a ``kd.weights``
    property per KD term and the pattern of an ``ablations`` value (the loss registry), the model names and
    the depth polarities (:mod:`aclnet_kd.constants`)."""
    from aclnet_kd.constants import DEPTH_POLARITIES, MODEL_NAMES
    from aclnet_kd.evaluate.operating_point import RULES as OPERATING_POINT_RULES
    from aclnet_kd.losses.registry import KD_TERMS, LABEL, weights_pattern

    schema["$defs"]["dataset"]["properties"]["depth_polarity"] = {"enum": list(DEPTH_POLARITIES)}
    schema["$defs"]["model"]["properties"]["name"] = {"enum": list(MODEL_NAMES)}
    schema["properties"]["operating_point"]["properties"]["rule"] = {"enum": list(OPERATING_POINT_RULES)}

    kd = schema["properties"]["kd"]["properties"]
    kd["weights"]["properties"].update({name: {"type": "number", "minimum": 0} for name in KD_TERMS})
    schema["properties"]["ablations"]["additionalProperties"]["pattern"] = weights_pattern()
    schema["properties"]["kd_methods"]["additionalProperties"]["properties"] = {
        name: {"type": "number", "minimum": 0} for name in (LABEL, *KD_TERMS)}
    return schema


def _schema_errors(params: dict) -> list[str]:
    import jsonschema  # here: the Snakefile and every command import this module; only loading validates

    if not SCHEMA.is_file():
        raise AclnetError(f"{SCHEMA}: params schema not found (install the package from the repository)")
    validator = jsonschema.Draft202012Validator(schema_with_names(yaml.safe_load(SCHEMA.read_text())))
    errors = sorted(validator.iter_errors(params), key=lambda e: list(map(str, e.absolute_path)))
    lines = []
    for error in errors:
        key = ".".join(map(str, error.absolute_path))
        line = f"{key or '<top level>'}: {error.message}"
        if error.validator == "additionalProperties":  # name the full dotted key of each misspelt one
            extra = re.findall(r"'([^']+)'", error.message.rpartition("(")[2])
            line += f" (unknown key {', '.join(f'{key}.{name}'.lstrip('.') for name in extra)})"
        if error.validator == "type" and isinstance(error.instance, str) and _is_number(error.instance):
            line += f" (YAML 1.1 reads {error.instance} as text: write it with a dot, e.g. 1.0e-4)"
        lines.append(line)
    return lines


def _reference_errors(params: dict) -> list[str]:
    """What the schema cannot see: a track names a dataset that exists; the launcher fits the GPU count."""
    errors = [f"tracks.{track}.dataset: '{spec['dataset']}' is not a key of 'datasets'"
              for track, spec in params["tracks"].items() if spec["dataset"] not in params["datasets"]]
    gpus, launcher = params["compute"]["train_gpus"], params["compute"]["launcher"]
    if gpus > 1 and f"--nproc_per_node {gpus}" not in launcher and f"--nproc_per_node={gpus}" not in launcher:
        errors.append(f"compute.launcher: train_gpus is {gpus}, so training needs "
                      f"'torchrun --standalone --nproc_per_node {gpus} -m aclnet_kd.cli' (got '{launcher}')")
    errors += kd_method_errors(params)
    from aclnet_kd.external import external_errors  # params `external` (issue 20)

    errors += external_errors(params)
    # train_gpus 0 with torchrun: N CPU processes (gloo), e.g. to test DDP without a GPU (tests/workflow).
    if gpus == 1 and launcher != "aclnet":
        errors.append(f"compute.launcher: '{launcher}' with compute.train_gpus 1: one GPU runs one process, "
                      "use 'aclnet' (torchrun needs train_gpus > 1, or 0 for CPU processes)")
    return errors


def kd_method_errors(params: dict) -> list[str]:
    """A KD-method run distils with at least one KD term (else it is the plain `student` run, the table's
    no-KD baseline, trained already) and does not share its name with an ablation (one run folder each)."""
    from aclnet_kd.losses.registry import LABEL

    ablations = params.get("ablations") or {}
    errors = []
    for run, weights in (params.get("kd_methods") or {}).items():
        if not any(value > 0 for name, value in weights.items() if name != LABEL):
            errors.append(f"kd_methods.{run}: no KD weight > 0; that is the plain student (the `student` run, "
                          "table3's no-KD row): remove the entry")
        if run in ablations:
            errors.append(f"kd_methods.{run}: also a key of 'ablations'; a run name names one run folder")
    return errors


def validate_params(params: dict, source: str = "params") -> None:
    """Check merged params against the schema and the cross-references; one AclnetError lists every
    problem, each led by its dotted key."""
    errors = _schema_errors(params) or _reference_errors(params)
    if errors:
        raise AclnetError(f"{source}: invalid params ({SCHEMA.name}):\n  " + "\n  ".join(errors))


def lookup(params: dict, dotted_key: str) -> Any:
    """``lookup(p, "train.teacher")`` -> ``p["train"]["teacher"]``; a missing key is a KeyError whose argument
    is the dotted key up to the first part that is not there."""
    node: Any = params
    walked = []
    for part in dotted_key.split("."):
        walked.append(part)
        if not isinstance(node, dict) or part not in node:
            raise KeyError(".".join(walked))
        node = node[part]
    return node


def section(params: dict, dotted_key: str, source: str = "params") -> Any:
    """``section(p, "train.teacher")`` -> ``p["train"]["teacher"]``, or an error naming the missing key."""
    try:
        return lookup(params, dotted_key)
    except KeyError as err:
        raise AclnetError(f"{source}: missing key '{err.args[0]}'") from None
