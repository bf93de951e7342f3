"""Robustness and scale-out with real processes: kill -9 and resume bit for bit; DDP on 2 CPU processes."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

from aclnet_kd.checkpoint import safe_load
from aclnet_kd.config import deep_merge
from aclnet_kd.train import loop
from aclnet_kd.train.loop import train
from aclnet_kd.train.recipe import resolve_recipe

ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def _params_file(params: dict, path) -> str:
    path.write_text(yaml.safe_dump(params))
    return str(path)


def _train_cmd(data, out, params_path, *extra) -> list[str]:
    return [sys.executable, "-m", "aclnet_kd.cli", "train", "--role", "student", "--data", str(data),
            "--out", str(out), "--params", params_path, *extra]


def _assert_same_tensors(a: dict, b: dict, what: str) -> None:
    assert a.keys() == b.keys(), what
    for key in a:
        assert torch.equal(a[key], b[key]), f"{what}: {key} differs"


def test_resume_after_kill_9_is_bit_identical(params, tiny_data, tmp_path):
    # bf16 autocast (the default) on CPU, deterministic kernels, last.pt after every optimizer step.
    params = deep_merge(params, {"train": {"epochs": 3, "precision": "bf16", "deterministic": True,
                                           "checkpoint_every": 1, "selection": "best_val"}})
    recipe = resolve_recipe(params, "student", seed=3)
    train(recipe, tiny_data, tmp_path / "straight")

    out = tmp_path / "killed"
    proc = subprocess.Popen(_train_cmd(tiny_data, out, _params_file(params, tmp_path / "p.yaml"), "--seed", "3"),
                            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while not (out / "last.pt").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)  # the first checkpoint exists: kill mid-run, without any cleanup
    proc.wait()
    interrupted = safe_load(out / "last.pt")["train_state"]
    assert not interrupted["finished"] and not (out / "run.json").exists()

    train(recipe, tiny_data, out)  # resume
    straight, resumed = safe_load(tmp_path / "straight" / "last.pt"), safe_load(out / "last.pt")
    # A finished last.pt keeps the record, not the resume state; every epoch's losses and val metrics (the
    # last epoch's come from the final weights, moved by Adam's moments) must be equal, bit for bit.
    assert "state_dict" not in resumed and "optimizer" not in resumed["train_state"]
    timing = ("seconds", "images_per_s")
    assert ([{k: v for k, v in h.items() if k not in timing} for h in straight["train_state"]["history"]]
            == [{k: v for k, v in h.items() if k not in timing} for h in resumed["train_state"]["history"]])
    _assert_same_tensors(safe_load(tmp_path / "straight" / "best.pt")["state_dict"],
                         safe_load(out / "best.pt")["state_dict"], "best.pt")
    assert "resumed from" in (out / "train.log").read_text()
    assert len((out / "dvclive" / "plots" / "metrics" / "lr.tsv").read_text().splitlines()) == 1 + 3


LAUNCHER = """
import os
import sys
from torch import nn
import aclnet_kd.models as models
from aclnet_kd.losses import mgmd
from aclnet_kd.models import loading
from aclnet_kd.train import training

_build_model = models.build_model


def build_without_batch_coupling(name, **cfg):
    # BatchNorm couples the images of a batch and dropout draws from each process's RNG: both make a rank's
    # half batch behave differently from the same images inside a full batch. torch's SyncBatchNorm, which
    # the trainer uses on CUDA, rejects CPU tensors, so under gloo BatchNorm cannot be matched: it is removed
    # from the student (the teacher runs in eval mode, with running statistics: batch-independent).
    model = _build_model(name, **cfg)
    if name == "aclnet_s":
        for parent in list(model.modules()):
            for child_name, child in list(parent.named_children()):
                if isinstance(child, (nn.BatchNorm2d, nn.Dropout2d)):
                    setattr(parent, child_name, nn.Identity())
    return model


def mgmd_branches_without_batchnorm(channels, g):
    return nn.Sequential(nn.Conv2d(channels, g * channels, kernel_size=1), nn.ReLU())  # MGMD's BN, same reason


def patch():
    models.build_model = build_without_batch_coupling
    training.build_model = build_without_batch_coupling  # the trainer builds through it
    loading.build_model = build_without_batch_coupling  # best.pt read back (operating point) builds through it
    mgmd.MGMD._branches = staticmethod(mgmd_branches_without_batchnorm)


def dump_adam_state_at_exit(path):
    # A finished last.pt keeps no optimizer state: rank 0 saves Adam's after the run, for the comparison.
    import atexit
    import os
    import torch
    from aclnet_kd.train import loop

    build = loop.build_training

    def spy(*args, **kwargs):
        training = build(*args, **kwargs)
        if os.environ.get("RANK", "0") == "0":
            atexit.register(lambda: torch.save(training.optimizer.state_dict(), path))
        return training

    loop.build_training = spy


if __name__ == "__main__":
    patch()
    dump_adam_state_at_exit(os.environ["ADAM_STATE_OUT"])
    from aclnet_kd.cli import main
    sys.exit(main())
"""


def _assert_same_gradients(single: dict, ddp: dict, rel: float) -> None:
    """Adam's moments after ONE step are (1 - beta) times the averaged gradient (and its square), whatever the
    CPU: compare them per tensor, to ``rel`` of that tensor's largest entry.

    Float summation order (per-rank vs whole-batch reductions, vector widths) moves each gradient by a few
    float32 ulps of the terms summed into it, far below ``rel``; gradients summed instead of averaged over the
    ranks (x2), a BCE batch sum over half the batch, CLD with half the negatives or a wrong shard of the
    batch move them by O(1) of the scale. Weights after Adam steps are not compared: Adam moves a weight by
    ~lr whatever |g|, so a near-zero gradient's rounding noise flips its step.
    """
    single_states, ddp_states = single["state"], ddp["state"]
    assert single_states.keys() == ddp_states.keys()
    for index, state in single_states.items():
        assert int(state["step"]) == int(ddp_states[index]["step"]) == 1
        for moment in ("exp_avg", "exp_avg_sq"):
            scale = state[moment].abs().max()
            assert (ddp_states[index][moment] - state[moment]).abs().max() <= rel * scale, (index, moment)


@pytest.mark.slow
def test_ddp_two_cpu_processes_match_single_process(params, tiny_data, teacher_ckpt, tmp_path, monkeypatch):
    """torchrun, 2 gloo processes of batch 4 vs one process of batch 8, distilling with the release's loss
    (label_bce batch_sum, CLD + MGMD + ATD, KD modules trained so that their gradients are compared too):
    the same step-0 loss and terms (1e-5 relative), the same averaged gradients, rank 0 writes the outputs.

    BatchNorm and dropout are removed from the student and MGMD in both runs (see LAUNCHER: SyncBatchNorm is
    CUDA-only). One optimizer step (8 training images, batch 8), so that Adam's moments are the averaged
    gradient itself and nothing depends on how Adam amplified rounding noise in an earlier step.
    """
    launcher = tmp_path / "launch.py"
    launcher.write_text(LAUNCHER)
    spec = importlib.util.spec_from_file_location("launch", launcher)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr("aclnet_kd.models.build_model", module.build_without_batch_coupling)
    monkeypatch.setattr("aclnet_kd.models.loading.build_model", module.build_without_batch_coupling)
    monkeypatch.setattr("aclnet_kd.train.training.build_model", module.build_without_batch_coupling)
    monkeypatch.setattr("aclnet_kd.losses.mgmd.MGMD._branches", staticmethod(module.mgmd_branches_without_batchnorm))

    params = deep_merge(params, {"train": {"epochs": 1, "batch_size": 8, "label_bce": "batch_sum",
                                           "selection": "last"}, "kd": {"train_kd_modules": True}})
    trainings = []
    build = loop.build_training
    monkeypatch.setattr(loop, "build_training", lambda *a, **k: trainings.append(build(*a, **k)) or trainings[-1])
    train(resolve_recipe(params, "student", kd=True, seed=5), tiny_data, tmp_path / "single",
          teacher_checkpoint=teacher_ckpt)

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(launcher),
           *_train_cmd(tiny_data, tmp_path / "ddp", _params_file(params, tmp_path / "p.yaml"), "--seed", "5",
                       "--kd", "on", "--teacher", str(teacher_ckpt))[3:]]
    result = subprocess.run(cmd, env=dict(ENV, ADAM_STATE_OUT=str(tmp_path / "adam_rank0.pt")),
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]

    record = json.loads((tmp_path / "ddp" / "run.json").read_text())
    assert record["world_size"] == 2 and record["device"] == "cpu"
    assert "world_size=2" in (tmp_path / "ddp" / "train.log").read_text()
    single, ddp = safe_load(tmp_path / "single" / "last.pt"), safe_load(tmp_path / "ddp" / "last.pt")
    single_step0, ddp_step0 = single["train_state"]["history"][0], ddp["train_state"]["history"][0]
    for term in ("loss", "label", "cld", "mgmd", "atd"):
        assert ddp_step0[f"train/{term}"] == pytest.approx(single_step0[f"train/{term}"], rel=1e-5), term
    _assert_same_gradients(trainings[0].optimizer.state_dict(), safe_load(tmp_path / "adam_rank0.pt"), rel=1e-3)
