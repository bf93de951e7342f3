"""Fixtures for the model tests: each big network is built once per session (a few seconds on 2 cores)."""

from __future__ import annotations

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

