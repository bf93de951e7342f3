"""Data stage: synthetic generators, real-layout adapters, validation, the prepared cache and datasets.

The torch datasets load on first use (PEP 562), so the torch-free modules (``images``, ``preprocess``,
``prepared``) can be imported without torch: the ONNX inference path, ``aclnet prepare`` and ``aclnet evaluate``
rely on it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PreparedData", "SaliencyDataset", "TrainingSet", "normalize_batch", "open_prepared"]


def __getattr__(name: str) -> Any:
    if name in ("PreparedData", "open_prepared"):  # torch-free: evaluate and figures open folders without torch
        from aclnet_kd.data import prepared

        return getattr(prepared, name)
    if name in __all__:
        from aclnet_kd.data import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module 'aclnet_kd.data' has no attribute {name!r}")
