"""Fixtures for the model tests: each big network is built once per session (a few seconds on 2 cores)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from aclnet_kd.models import build_model


@pytest.fixture(scope="session")
def teacher() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("aclnet_t").eval()


@pytest.fixture(scope="session")
def student() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("aclnet_s").eval()


@pytest.fixture(scope="session")
def released(shared_dir: Path) -> dict:
    """The authors' released models as listed in ../shared/reference/released_models.json."""
    path = shared_dir / "reference" / "released_models.json"
    if not path.is_file():
        pytest.skip(f"{path} is absent: the release's key/shape listing is needed for this check")
    return json.loads(path.read_text())
