"""The runtimes that run an exported model without torch: ``openvino`` and ``onnxruntime``.

Both read the same ``.onnx`` and return the ``saliency`` output (B, 1, H, W) for a dict of named inputs.

* ``onnxruntime``: one CPU session with all graph optimisations; the model's dynamic batch and size.
* ``openvino``: the model is reshaped to the static shape of the batch it is given and compiled for the CPU
  with ``INFERENCE_PRECISION_HINT: f32``. Without that hint OpenVINO runs bf16 on CPUs with AVX512-BF16/AMX,
  about 1e-3 off the PyTorch maps, outside the export's 1e-4. A static shape lets OpenVINO plan its memory
  once; each new input shape (another batch size or image size) gets its own reshape and compile, kept in a
  cache for the next batch of that shape.

The default is OpenVINO where it is installed: on this project's 2-core CPU it ran ACLNet-S at 256²
faster than onnxruntime at the same accuracy (``benchmarks/inference_latency.py``, docs/deploy.md).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from aclnet_kd.deploy.sidecar import OUTPUT_NAME
from aclnet_kd.errors import AclnetError

RUNTIMES = ("openvino", "onnxruntime")  # the default: the first one installed
OPENVINO_CONFIG = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}


def installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def default_runtime() -> str:
    return next((name for name in RUNTIMES if installed(name)), RUNTIMES[-1])


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


class OnnxRuntimeModel:
    """onnxruntime, CPU, all graph optimisations, dynamic shapes."""

    name = "onnxruntime"

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types for bad files
            raise AclnetError(f"{path}: onnxruntime cannot load it ({_first_line(err)})") from None

    def __call__(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run([OUTPUT_NAME], feeds)[0]


class OpenVinoModel:
    """OpenVINO, CPU, f32 inference precision, one compiled model per input shape (cached)."""

    name = "openvino"

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import openvino as ov

        self.core, self.path = ov.Core(), path
        self.config = dict(OPENVINO_CONFIG, **({"INFERENCE_NUM_THREADS": int(threads)} if threads else {}))
        try:
            self.model = self.core.read_model(str(path))
        except Exception as err:  # OpenVINO raises RuntimeError subclasses for bad files
            raise AclnetError(f"{path}: OpenVINO cannot read it ({_first_line(err)})") from None
        self.compiled: dict[tuple, Any] = {}

    def compiled_for(self, feeds: dict[str, np.ndarray]) -> Any:
        key = tuple((name, array.shape) for name, array in sorted(feeds.items()))
        if key not in self.compiled:
            model = self.model.clone()
            model.reshape({name: list(shape) for name, shape in key})
            self.compiled[key] = self.core.compile_model(model, "CPU", self.config)
        return self.compiled[key]

    def __call__(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        compiled = self.compiled_for(feeds)
        return np.asarray(compiled(feeds)[compiled.output(OUTPUT_NAME)])


def open_model(runtime: str | None, path: Path, threads: int | None = None) -> OnnxRuntimeModel | OpenVinoModel:
    """The exported model at ``path`` on ``runtime`` (None: :func:`default_runtime`)."""
    runtime = runtime or default_runtime()
    if runtime not in RUNTIMES:
        raise AclnetError(f"--runtime {runtime!r}: expected one of {list(RUNTIMES)}")
    if not installed(runtime):
        raise AclnetError(f"--runtime {runtime}: the Python package '{runtime}' is not installed")
    return OpenVinoModel(path, threads) if runtime == "openvino" else OnnxRuntimeModel(path, threads)
