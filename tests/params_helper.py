"""Complete params files for tests (importable from any test: tests/ is on sys.path via tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import yaml

from aclnet_kd.config import deep_merge, load_params

REPO_ROOT = Path(__file__).resolve().parents[1]


def write_params(path: Path, edit: dict | None = None) -> Path:
    """The repository's params.yaml with ``edit`` deep-merged in, written to ``path``: every command
    validates the params it loads against the schema, so a partial file is an error."""
    params = deep_merge(load_params(REPO_ROOT / "params.yaml"), edit or {})
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path
