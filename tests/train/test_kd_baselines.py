"""The dense-prediction KD baselines in the trainer: CWD and CIRKD train, their terms are logged, and CIRKD's
memory bank is saved in last.pt and continued by a resumed run (bit for bit)."""

from __future__ import annotations

import pytest
import torch

from aclnet_kd.checkpoint import safe_load
from aclnet_kd.config import deep_merge
from aclnet_kd.train import loop
from aclnet_kd.train.recipe import resolve_recipe


class Interrupted(RuntimeError):
    pass


def test_cirkd_bank_is_checkpointed_and_a_resumed_run_continues_it(params, tiny_data, teacher_ckpt, tmp_path,
                                                                     monkeypatch):
    params = deep_merge(params, {"train": {"epochs": 2, "deterministic": True, "checkpoint_every": 1,
                                           "selection": "last"}})
    recipe = resolve_recipe(params, "student", kd=True, kd_weights_override={"cld": 0, "mgmd": 0, "atd": 0,
                                                                             "cwd": 1, "cirkd": 1}, seed=1)
    loop.train(recipe, tiny_data, tmp_path / "straight", teacher_checkpoint=teacher_ckpt)
    straight = safe_load(tmp_path / "straight" / "last.pt")
    history = straight["train_state"]["history"]
    assert all(torch.isfinite(torch.tensor(h[f"train/{t}"])) and h[f"train/{t}"] > 0
               for h in history for t in ("cwd", "cirkd"))

    original, calls = loop.train_step, []

    def failing_step(parts, batch):  # stop in the second epoch, after last.pt of the first was written
        calls.append(1)
        if len(calls) == 3:
            raise Interrupted
        return original(parts, batch)

    out = tmp_path / "resumed"
    monkeypatch.setattr(loop, "train_step", failing_step)
    with pytest.raises(Interrupted):
        loop.train(recipe, tiny_data, out, teacher_checkpoint=teacher_ckpt)
    interrupted = safe_load(out / "last.pt")["train_state"]
    assert not interrupted["finished"]
    assert {"cirkd.region_queue", "cirkd.region_ptr"} <= set(interrupted["kd_modules"])  # the bank is resume state
    monkeypatch.setattr(loop, "train_step", original)
    loop.train(recipe, tiny_data, out, teacher_checkpoint=teacher_ckpt)  # resume
    # the final weights (best.pt under selection `last`) and every loss depend on the bank: equal, bit for bit
    final, resumed = safe_load(tmp_path / "straight" / "best.pt"), safe_load(out / "best.pt")
    for key, value in final["state_dict"].items():
        assert torch.equal(resumed["state_dict"][key], value), key
    resumed_history = safe_load(out / "last.pt")["train_state"]["history"]
    for name in ("train/cwd", "train/cirkd", "train/loss"):
        assert [h[name] for h in resumed_history] == [h[name] for h in history], name
