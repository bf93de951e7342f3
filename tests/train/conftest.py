"""Tiny fixtures for the training tests: a 64 px synthetic rail dataset and params with tiny backbones.

Sizes keep every test to a few seconds on 2 CPU cores: 8 training images (2 steps of batch 4), 2 validation,
2 test; timm's ``test_convnext`` backbone (0.2M parameters) in both the teacher and the student.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from aclnet_kd.checkpoint import FORMAT, atomic_save
from aclnet_kd.config import deep_merge, load_params
from aclnet_kd.data.prepare import PrepareSpec, prepare_dataset
from aclnet_kd.models import build_model

TINY_BACKBONE = "test_convnext"
TINY = {
    "models": {
        "teacher": {"name": "aclnet_t", "backbone": TINY_BACKBONE, "pretrained": None},
        "student": {"name": "aclnet_s", "backbone": TINY_BACKBONE, "pretrained": None},
    },
    "train": {"image_size": 64, "batch_size": 4, "epochs": 1, "precision": "fp32", "num_workers": 0,
              "device": "cpu", "compile": False, "teacher": {}, "student": {},
              "lr_schedule": "step", "lr_step": 20},   # constant lr in these short runs, whatever the demo uses
}


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """One intra-op thread: tiny models gain nothing from two, and on a busy 2-core machine two threads
    spin against each other (10x slower). Subprocesses get OMP_NUM_THREADS=1 for the same reason."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """A prepared synthetic-rail dataset: train 8, val 2, test 2, cached at 64 px."""
    root = tmp_path_factory.mktemp("tiny_rail")
    spec = PrepareSpec(name="tiny-rail", source="synthetic-rail", seed=0, image_size=64, num_train=10,
                       num_test=2, val_size=2, cache_size=64)
    spec.check("tiny")
    prepare_dataset(spec, root / "prepared", raw_out=root / "raw", workers=1)
    return root / "prepared"


@pytest.fixture(scope="session")
def base_params(repo_root) -> dict:
    """The repository's params.yaml with the tiny models and recipe merged over it."""
    return deep_merge(load_params(repo_root / "params.yaml"), TINY)


@pytest.fixture
def params(base_params) -> dict:
    return deep_merge(base_params, {})  # a fresh copy each test may edit


@pytest.fixture(scope="session")
def teacher_ckpt(tmp_path_factory) -> Path:
    """A randomly initialised tiny teacher in the training-checkpoint format (distillation needs no trained one)."""
    torch.manual_seed(123)
    teacher = build_model("aclnet_t", backbone=TINY_BACKBONE)
    path = tmp_path_factory.mktemp("teacher") / "best.pt"
    atomic_save({"format": FORMAT, "model_name": "aclnet_t", "model_cfg": {"backbone": TINY_BACKBONE},
                 "state_dict": teacher.state_dict(), "meta": {"role": "teacher"}}, path)
    return path
