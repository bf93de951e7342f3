"""Shared test fixtures: repository paths. Stage-specific fixtures live in tests/<stage>/conftest.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# ../shared sits beside the checkout (CI clones the repo with shared/ next to it).
SHARED_DIR = Path(os.environ.get("ACLNET_SHARED_DIR", REPO_ROOT.parent / "shared"))

# Keep the suite reproducible and quiet on the 2-core CI machine.
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return SHARED_DIR


@pytest.fixture(scope="session")
def released(shared_dir: Path) -> dict:
    """The authors' released models as listed in ../shared/reference/released_models.json."""
    path = shared_dir / "reference" / "released_models.json"
    if not path.is_file():
        pytest.skip(f"{path} is absent: the release's key/shape listing is needed for this check")
    return json.loads(path.read_text())
