"""The JSON sidecar written beside an exported model (``student.onnx`` -> ``student.json``): everything a
runtime needs to feed the model, where the model came from, and its operating point (the threshold of
``--binary``, chosen on the validation split by ``aclnet train``; None if the checkpoint records none). Torch-free.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aclnet_kd.errors import AclnetError

FORMAT = "aclnet-kd-onnx/1"
OUTPUT_NAME = "saliency"  # (B, 1, H, W) probabilities in [0, 1]: the sigmoid is inside the graph
SIZE_MULTIPLE = 32  # H and W must be multiples of the backbone's total stride
REQUIRED = ("format", "inputs", "output", "input_size", "mean", "std", "layout")


def sidecar_path(onnx_path: str | Path) -> Path:
    """``model.onnx`` -> ``model.json``."""
    return Path(onnx_path).with_suffix(".json")


def read_sidecar(onnx_path: str | Path) -> dict[str, Any]:
    """The sidecar of ``onnx_path``, checked for the keys inference needs; errors name the file."""
    path = sidecar_path(onnx_path)
    if not Path(onnx_path).is_file():
        raise AclnetError(f"{onnx_path}: no such ONNX model file")
    if not path.is_file():
        raise AclnetError(f"{path}: missing: `aclnet export` writes it beside {Path(onnx_path).name}")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise AclnetError(f"{path}: not readable JSON ({err})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise AclnetError(f"{path}: not an aclnet-kd ONNX sidecar (expected format {FORMAT!r})")
    missing = [key for key in REQUIRED if key not in data]
    if missing:
        raise AclnetError(f"{path}: missing keys {missing}")
    return data
