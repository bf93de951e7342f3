"""Shared test fixtures: repository paths, and the tiny prepared rail set and random-weight student checkpoint
that the predict/evaluate (tests/evaluate) and deploy (tests/deploy) tests share. Stage-specific fixtures live
in tests/<stage>/conftest.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
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


# ---- a tiny prepared rail set and a student checkpoint (tests/evaluate, tests/deploy) ----------------------


def write_rail_folder(root: Path, sizes: dict[str, list[tuple[int, int]]], seed: int = 0) -> None:
    """A NEU RSDDS-AUG-like folder {train,test}/{rgb,d,gt} with one bright defect block per image."""
    rng = np.random.default_rng(seed)
    for split, shapes in sizes.items():
        for sub in ("rgb", "d", "gt"):
            (root / split / sub).mkdir(parents=True, exist_ok=True)
        for i, (h, w) in enumerate(shapes):
            gt = np.zeros((h, w), np.uint8)
            gt[h // 4: h // 2 + i, w // 4: w // 2] = 255
            rgb = np.clip(rng.normal(90, 15, (h, w, 3)) + gt[..., None] * 0.5, 0, 255).astype(np.uint8)
            stem = f"{split}_{i:02d}"
            cv2.imwrite(str(root / split / "rgb" / f"{stem}.bmp"), rgb)
            cv2.imwrite(str(root / split / "d" / f"{stem}.png"), (gt // 2 + 40).astype(np.uint8))
            cv2.imwrite(str(root / split / "gt" / f"{stem}.png"), gt)


@pytest.fixture(scope="session")
def tiny_prepared(tmp_path_factory) -> Path:
    from aclnet_kd.cli import main as aclnet

    root = tmp_path_factory.mktemp("rail")
    write_rail_folder(root / "raw", {"train": [(40, 56)] * 2, "test": [(40, 56), (48, 64), (36, 60)]})
    out = root / "prepared"
    assert aclnet(["prepare", "--layout", "rail", "--root", str(root / "raw"), "--out", str(out),
                   "--cache-size", "64"]) == 0
    return out


@pytest.fixture(scope="session")
def student_checkpoint(tmp_path_factory) -> Path:
    """aclnet_s with random weights at 64 px, saved in the training checkpoint format."""
    import torch

    from aclnet_kd.checkpoint import FORMAT, atomic_save
    from aclnet_kd.models import build_model

    torch.manual_seed(0)
    model = build_model("aclnet_s")
    path = tmp_path_factory.mktemp("ckpt") / "student.pt"
    atomic_save({"format": FORMAT, "model_name": "aclnet_s", "model_cfg": {}, "state_dict": model.state_dict(),
                 "meta": {"image_size": 64, "role": "student"}}, path)
    return path
@pytest.fixture(scope="session")
def released(shared_dir: Path) -> dict:
    """The authors' released models as listed in ../shared/reference/released_models.json."""
    path = shared_dir / "reference" / "released_models.json"
    if not path.is_file():
        pytest.skip(f"{path} is absent: the release's key/shape listing is needed for this check")
    return json.loads(path.read_text())
