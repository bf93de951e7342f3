"""`aclnet latency --params --role`: the workflow's latency stage times the model configured in
`models.<role>` (backbone included), as the complexity stage counts it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from params_helper import write_params

from aclnet_kd import cli


def test_role_times_the_configured_backbone(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    params = write_params(tmp_path / "params.yaml", {"models": {"student": {"backbone": "test_convnext"}}})
    out = tmp_path / "aclnet_s.json"
    args = ["latency", "--size", "64", "--threads", "1", "--warmup", "0", "--iters", "2", "--out", str(out)]
    assert cli.main(args + ["--params", str(params), "--role", "student"]) == 0
    result = json.loads(out.read_text())
    assert (result["model"], result["backbone"], result["calls"]) == ("aclnet_s", "test_convnext", 2)
    assert 0 < result["median_ms"] <= result["p90_ms"]
    out.unlink()
    capsys.readouterr()
    assert cli.main(args + ["--params", str(params), "--role", "student", "--model", "aclnet_s"]) == 2
    assert cli.main(args + ["--role", "student"]) == 2  # --role needs --params
    assert not out.exists()
    assert "--params and --role go together" in capsys.readouterr().err
