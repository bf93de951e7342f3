"""`aclnet complexity`: the JSON, the paper-level targets and agreement with the release's own count."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from aclnet_kd import cli
from aclnet_kd.models import build_model
from aclnet_kd.measure.complexity import measure_complexity

# issue 2 targets at 256x256, batch 1: (params_m, macs_g_excl_matmul, macs_g) with tolerances
TARGETS = {"aclnet_t": ((79.07, 0.05), (20.0, 0.3), (22.0, 0.3)),
           "aclnet_s": ((11.91, 0.02), (2.77, 0.05), (3.16, 0.05))}
# The release forms the WF norm products with a k=1 bmm: sum(C^2) over the four decoder levels.
RELEASE_EXTRA_BMM_MACS = 64**2 + 128**2 + 256**2 + 512**2


@pytest.fixture(scope="module")
def measured() -> dict[str, dict]:
    result = {}
    for name in TARGETS:
        with torch.device("meta"):
            result[name] = measure_complexity(build_model(name), 256)
    return result


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_targets(name: str, measured: dict) -> None:
    (params, tol_p), (excl, tol_e), (macs, tol_m) = TARGETS[name]
    got = measured[name]
    assert abs(got["params_m"] - params) <= tol_p
    assert abs(got["macs_g_excl_matmul"] - excl) <= tol_e
    assert abs(got["macs_g"] - macs) <= tol_m
    assert got["macs_g"] == pytest.approx(sum(got["by_op"].values()) / 1e9, abs=1e-3)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_by_op_agrees_with_release(name: str, measured: dict, released: dict) -> None:
    release = {op: flops // 2 for op, flops in released[name]["flops_at_256_batch1_by_aten_op"].items()}
    got = measured[name]["by_op"]
    assert got["aten.convolution"] == release["aten.convolution"]
    assert got["aten.addmm"] == release["aten.addmm"]
    assert release["aten.bmm"] - got["aten.bmm"] == RELEASE_EXTRA_BMM_MACS
    assert measured[name]["params"] == released[name]["params_excluding_unused_classifier_heads"]


def test_real_tensors_count_like_meta(measured: dict) -> None:
    """On CPU tensors attention runs as one fused SDPA op; it must be counted like the meta (bmm) path."""
    torch.manual_seed(0)
    got = measure_complexity(build_model("aclnet_s"), 64)
    with torch.device("meta"):
        meta = measure_complexity(build_model("aclnet_s"), 64)
    assert got["macs_g"] == meta["macs_g"] and got["macs_g_excl_matmul"] == meta["macs_g_excl_matmul"]


def test_cli_prints_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "complexity" / "aclnet_s.json"
    assert cli.main(["complexity", "--model", "aclnet_s", "--size", "64", "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    assert {"model", "input_size", "params", "params_m", "macs_g", "macs_g_excl_matmul", "by_op"} <= set(printed)
    assert printed["model"] == "aclnet_s" and printed["input_size"] == 64
    assert list(out.parent.iterdir()) == [out]  # no temp file left behind


def test_cli_rejects_bad_size(tmp_path: Path) -> None:
    out = tmp_path / "x.json"
    assert cli.main(["complexity", "--model", "aclnet_s", "--size", "100", "--out", str(out)]) == 2
    assert not out.exists()


def test_role_counts_the_configured_backbone(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The workflow's complexity stage counts `models.<role>` as configured (the smoke preset's teacher is
    Shunted-T, not the default Shunted-B)."""
    repo = Path(__file__).resolve().parents[2]
    params = [str(repo / "params.yaml"), str(repo / "config" / "smoke.yaml")]
    from aclnet_kd.config import load_params

    assert load_params(params)["models"]["teacher"]["backbone"] == "shunted_t"
    out = tmp_path / "aclnet_t.json"
    args = ["complexity", "--size", "64", "--out", str(out)]
    assert cli.main(args + ["--params", params[0], "--params", params[1], "--role", "teacher"]) == 0
    configured = json.loads(out.read_text())
    assert cli.main(args + ["--model", "aclnet_t", "--backbone", "shunted_t"]) == 0
    by_hand = json.loads(out.read_text())
    assert cli.main(args + ["--model", "aclnet_t"]) == 0
    default = json.loads(out.read_text())
    assert configured["backbone"] == "shunted_t" and configured["params"] == by_hand["params"]
    assert configured["params"] < default["params"]  # Shunted-T is smaller than the default Shunted-B
    capsys.readouterr()
    assert cli.main(args + ["--params", params[0], "--role", "teacher", "--model", "aclnet_t"]) == 2
