"""The training loop, in-process on tiny configs: learning, distillation, selection, records, NaN stop."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess

import pytest
import torch

import aclnet_kd.train.loop as loop
import aclnet_kd.train.training as training_module
from aclnet_kd.checkpoint import safe_load
from aclnet_kd.cli import main as aclnet_main
from aclnet_kd.config import deep_merge
from aclnet_kd.errors import AclnetError
from aclnet_kd.train.loop import NonFiniteLossError, select_epoch, train
from aclnet_kd.train.convergence import plateau
from aclnet_kd.train.record import RunRecord
from aclnet_kd.train.recipe import resolve_recipe


def _recipe(params, edit=None, **kwargs):
    return resolve_recipe(deep_merge(params, edit or {}), **kwargs)


def test_overfit_drives_label_loss_down(params, tiny_data, tmp_path):
    recipe = _recipe(params, {"train": {"epochs": 12, "lr": 1.0e-3, "weight_decay": 0.0, "selection": "last"}},
                     role="student")
    record = train(recipe, tiny_data, tmp_path / "run")
    history = safe_load(tmp_path / "run" / "last.pt")["train_state"]["history"]
    labels = [epoch["train/label"] for epoch in history]
    assert len(labels) == 12 and record["selected_epoch"] == 12
    assert labels[-1] < 0.7 * labels[0], str([round(v, 2) for v in labels])


@pytest.fixture(scope="module")
def kd_run(base_params, tiny_data, teacher_ckpt, tmp_path_factory):
    """One distillation epoch (8 images, batch 4: two optimizer steps), non-default switches, teacher spied on."""
    spied = {}
    original, build = training_module.load_teacher, loop.build_training

    def spy(*args, **kwargs):
        spied["teacher"] = original(*args, **kwargs)
        return spied["teacher"]

    def spy_training(*args, **kwargs):  # a finished last.pt keeps no optimizer state: read it here
        spied["training"] = build(*args, **kwargs)
        return spied["training"]

    out = tmp_path_factory.mktemp("kd") / "run"
    recipe = resolve_recipe(deep_merge(base_params, {"kd": {"train_kd_modules": True, "atd_teacher_fix": True}}),
                            role="student", kd=True, kd_weights_override={"mgmd": 0.5})
    training_module.load_teacher, loop.build_training = spy, spy_training
    try:
        record = train(recipe, tiny_data, out, teacher_checkpoint=teacher_ckpt)
    finally:
        training_module.load_teacher, loop.build_training = original, build
    return {"record": record, "out": out, "teacher": spied["teacher"], "training": spied["training"]}


def test_teacher_gets_no_gradients_during_distillation(kd_run, teacher_ckpt):
    teacher = kd_run["teacher"]
    assert not teacher.training
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    saved = safe_load(teacher_ckpt)["state_dict"]
    for name, value in teacher.state_dict().items():  # weights and BN statistics untouched
        assert torch.equal(value, saved[name]), name


def test_distillation_runs_two_optimizer_steps(kd_run, teacher_ckpt):
    last = safe_load(kd_run["out"] / "last.pt")
    state = last["train_state"]
    optimizer = kd_run["training"].optimizer.state_dict()
    steps = {int(s["step"]) for s in optimizer["state"].values()}
    assert steps == {2}
    # train_kd_modules: true -> the KD modules are a second parameter group, optimised too
    assert len(optimizer["param_groups"]) == 2
    epoch = state["history"][0]
    for term in ("label", "cld", "mgmd", "atd"):
        assert torch.isfinite(torch.tensor(epoch[f"train/{term}"])), term
    assert epoch["train/loss"] == pytest.approx(sum(epoch[f"train/{t}"] for t in ("label", "cld", "mgmd", "atd")),
                                                rel=1e-5)


def test_run_records_kd_switches(kd_run):
    record = json.loads((kd_run["out"] / "run.json").read_text())
    assert record == kd_run["record"]
    assert record["kd"] is True and record["kd_weights"] == {"label": 1.0, "cld": 1.0, "mgmd": 0.5, "atd": 1.0, "response": 0.0, "fitnet": 0.0, "at": 0.0, "cwd": 0.0, "cirkd": 0.0}
    assert record["train_kd_modules"] is True and record["atd_teacher_fix"] is True
    assert record["synthetic"] is True and record["dataset"] == "tiny-rail"
    assert (record["device"], record["precision"], record["world_size"]) == ("cpu", "fp32", 1)
    meta = safe_load(kd_run["out"] / "best.pt")["meta"]
    assert meta["train_kd_modules"] is True and meta["atd_teacher_fix"] is True and meta["kd"] is True
    log = (kd_run["out"] / "train.log").read_text()
    assert "train_kd_modules=True" in log and "atd_teacher_fix=True" in log and "world_size=1" in log


def test_bad_teacher_fails_before_writing(kd_run, base_params, tiny_data, tmp_path):
    recipe = resolve_recipe(base_params, role="student", kd=True)
    with pytest.raises(AclnetError, match="RGB-only model"):
        train(recipe, tiny_data, tmp_path / "out", teacher_checkpoint=kd_run["out"] / "best.pt")  # a student
    with pytest.raises(AclnetError, match="--kd on needs --teacher"):
        train(recipe, tiny_data, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_selection_protocols(params, tiny_data, tmp_path):
    history = [{"epoch": 1, "val/mae": 0.3}, {"epoch": 2, "val/mae": 0.2}, {"epoch": 3, "val/mae": 0.2},
               {"epoch": 4, "val/mae": 0.25}]
    assert select_epoch(history, "best_val", "val/mae") == 2  # earliest of equal bests
    assert select_epoch(history, "last", None) == 4
    paper = [{"epoch": r["epoch"], "test/mae": r["val/mae"]} for r in history]
    assert select_epoch(paper, "paper", "test/mae") == 3  # the release's `<=`: the later of equal bests

    recipe = _recipe(params, {"train": {"epochs": 2, "selection": "paper"}}, role="student")
    record = train(recipe, tiny_data, tmp_path / "paper")
    assert record["selection"]["protocol"] == "paper" and record["selection"]["test_set_selection"] is True
    assert "TEST-SET SELECTION" in record["selection"]["note"] and record["selection"]["splits"] == ["test"]
    history = safe_load(tmp_path / "paper" / "last.pt")["train_state"]["history"]
    assert record["selected_epoch"] == select_epoch(history, "paper", "test/mae")
    assert record["selection"]["ties"].startswith("latest")
    # trained on every train image: train (8) + the held-out val (2), which is then not monitored
    assert record["train_images"] == {"splits": ["train", "val"], "count": 10}
    assert "val/mae" not in history[-1] and "10 train images (train + val)" in (tmp_path / "paper" / "train.log").read_text()
    meta = safe_load(tmp_path / "paper" / "best.pt")["meta"]
    assert meta["selection"]["test_set_selection"] is True and "TEST-SET SELECTION" in meta["selection"]["note"]
    assert meta["selected_epoch"] == record["selected_epoch"] and "test/mae" in meta["best_metrics"]
    assert "TEST-SET SELECTION" in (tmp_path / "paper" / "train.log").read_text()
    assert record["converged"] is None and "selection 'paper'" in record["plateau"]["reason"]

    recipe = _recipe(params, {"train": {"epochs": 2, "selection": "best_val"}}, role="student")
    record = train(recipe, tiny_data, tmp_path / "val")
    history = safe_load(tmp_path / "val" / "last.pt")["train_state"]["history"]
    assert record["selected_epoch"] == select_epoch(history, "best_val", "val/mae")
    assert record["selection"]["test_set_selection"] is False and record["selection"]["ties"] == "earliest epoch"
    assert record["train_images"] == {"splits": ["train"], "count": 8}  # val stays held out
    assert not any(key.startswith("test/") for key in history[0])  # the test split is never looked at
    best = safe_load(tmp_path / "val" / "best.pt")
    assert best["meta"]["selected_epoch"] == record["selected_epoch"] and "train_state" not in best
    # the plateau rule on the val Sm history, written into run.json (and read back unchanged)
    converged, figures = plateau([log["val/sm"] for log in history])
    assert record["converged"] is converged and record["plateau"] == {"metric": "val/sm", **figures}
    assert RunRecord.read(tmp_path / "val" / "run.json") == RunRecord.from_dict(record)
    assert safe_load(tmp_path / "val" / "last.pt")["meta"]["converged"] is converged


def test_nan_loss_stops_with_clear_message(params, tiny_data, tmp_path):
    # lr 1e30: the first step blows the weights up, the second forward gives a NaN loss.
    recipe = _recipe(params, {"train": {"epochs": 2, "lr": 1.0e30, "selection": "last"}}, role="student")
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss at epoch 1/2, step 2/2: label = nan"):
        train(recipe, tiny_data, tmp_path / "run")
    assert not (tmp_path / "run" / "run.json").exists()
    assert "non-finite loss at epoch 1/2" in (tmp_path / "run" / "train.log").read_text()


def test_finished_run_is_a_noop_and_settings_are_guarded(params, tiny_data, tmp_path, capsys):
    recipe = _recipe(params, {}, role="student")
    out = tmp_path / "run"
    first = train(recipe, tiny_data, out)

    def files() -> dict[str, tuple[bytes, int]]:
        return {str(p.relative_to(out)): (p.read_bytes(), p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()}

    before = files()
    capsys.readouterr()
    again = train(recipe, tiny_data, out)
    # nothing trained, logged or written: no epoch, no log line, every file's bytes and time as they were
    assert again == first and files() == before
    assert f"is already finished (epoch {first['epochs']}); nothing to do" in capsys.readouterr().out
    with pytest.raises(AclnetError, match=r"different settings \(recipe\.lr\)"):
        train(_recipe(params, {"train": {"lr": 5.0e-4}}, role="student"), tiny_data, out)


def test_a_restarted_run_appends_to_its_own_train_log_not_a_hardlinked_cache_copy(params, tiny_data, tmp_path):
    """With DVC's hardlink cache, train.log shares its bytes with the cache: a restarted run (the workflow's
    --restart-finished after a change) appends to a copy of its own, and the cache's bytes stay as committed."""
    recipe = _recipe(params, {"train": {"epochs": 1}}, role="student")
    out = tmp_path / "run"
    train(recipe, tiny_data, out)
    cached = tmp_path / "cache_entry"
    os.link(out / "train.log", cached)
    committed = cached.read_bytes()
    (out / "last.pt").unlink()  # what --restart-finished does
    train(recipe, tiny_data, out)
    log = (out / "train.log").read_bytes()
    assert cached.read_bytes() == committed and (out / "train.log").stat().st_nlink == 1
    assert log.startswith(committed) and log.count(b"finished: selected epoch") == 2


def test_cli_bad_params_exit_2_without_output(params, tiny_data, tmp_path, capsys):
    from params_helper import write_params

    bad = write_params(tmp_path / "bad.yaml", {"train": {"learning_rate": 0.1}})
    out = tmp_path / "out"
    code = aclnet_main(["train", "--role", "student", "--data", str(tiny_data), "--out", str(out),
                        "--params", str(bad)])
    assert code == 2 and not out.exists()
    assert "train.learning_rate" in capsys.readouterr().err


def test_dvclive_curves_without_touching_the_repo(params, tiny_data, tmp_path, monkeypatch):
    """Inside a git repo without DVC, stock dvclive would run `dvc init`; ours writes only its folder."""
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    monkeypatch.chdir(repo)
    recipe = _recipe(params, {"train": {"epochs": 2}}, role="student")
    train(recipe, tiny_data, repo / "out")
    assert not (repo / ".dvc").exists() and not (repo / "dvc.yaml").exists()
    live = repo / "out" / "dvclive"
    lines = (live / "plots" / "metrics" / "val" / "mae.tsv").read_text().splitlines()
    assert lines[0].split("\t") == ["step", "mae"] and len(lines) == 3
    for name in ("train/label.tsv", "train/loss.tsv", "lr.tsv", "images_per_s.tsv", "val/sm.tsv"):
        assert (live / "plots" / "metrics" / name).is_file(), name
    assert json.loads((live / "metrics.json").read_text())["step"] == 2


def test_one_run_record_in_run_json_and_both_checkpoints(kd_run):
    from aclnet_kd.train.record import RunRecord

    record = RunRecord.read(kd_run["out"] / "run.json")
    last = RunRecord.from_dict(safe_load(kd_run["out"] / "last.pt")["meta"])
    best = RunRecord.from_dict(safe_load(kd_run["out"] / "best.pt")["meta"])
    assert last == record  # the finished last.pt holds exactly run.json's record
    assert best.selected_epoch == record.selected_epoch and best.best_metrics == record.best_metrics
    assert record.image_size == 64 and record.kd is True
    # where it came from: this checkout's commit and the installed torch (aclnet_kd.provenance)
    assert len(record.provenance["git"]["commit"]) == 40 and record.provenance["torch_build"] == torch.__version__
    assert record.provenance["versions"]["torch"] == importlib.metadata.version("torch")  # as metrics.json says
    # one epoch: nothing before the plateau window, so the run cannot be shown to have converged
    assert record.converged is False and record.plateau["epochs"] == 1 and record.plateau["gain"] is None


def test_operating_point_chosen_on_validation_at_the_end(params, tiny_data, tmp_path):
    """run.json, best.pt and last.pt record the threshold that `aclnet predict`'s own maps of the val split give."""
    import numpy as np

    from aclnet_kd.data import open_prepared
    from aclnet_kd.evaluate.io import list_images, read_gray_map
    from aclnet_kd.evaluate.operating_point import operating_point

    cfg = {"rule": "max_f", "target_recall": 0.9, "min_area": 2}
    recipe = _recipe(params, {"train": {"epochs": 1, "selection": "best_val"}}, role="student")
    record = train(recipe, tiny_data, tmp_path / "run", operating_point=cfg)
    op = record["operating_point"]
    assert 0 < op["threshold"] <= 1 and op["threshold"] == op["level"] / 255 and op["split"] == "val"
    assert op["rule"] == "max_f" and op["min_area"] == 2 and 0 <= op["precision"] <= 1 and 0 <= op["recall"] <= 1
    assert RunRecord.read(tmp_path / "run" / "run.json").operating_point == op
    assert safe_load(tmp_path / "run" / "best.pt")["meta"]["operating_point"] == op
    assert safe_load(tmp_path / "run" / "last.pt")["meta"]["operating_point"] == op
    # independently: the maps `aclnet predict` writes for the val split give the same choice
    maps = tmp_path / "maps"
    assert aclnet_main(["predict", "--checkpoint", str(tmp_path / "run" / "best.pt"), "--dataset", str(tiny_data),
                        "--split", "val", "--out", str(maps), "--device", "cpu"]) == 0
    prepared = open_prepared(tiny_data)
    pairs = [(read_gray_map(path), np.asarray(prepared.gt_original("val", stem)))
             for stem, path in sorted(list_images(maps).items())]
    assert {k: v for k, v in operating_point(pairs).items()} == {k: op[k] for k in operating_point(pairs)}
    # paper selection trains on val: no threshold, and the reason
    recipe = _recipe(params, {"train": {"epochs": 1, "selection": "paper"}}, role="student")
    record = train(recipe, tiny_data, tmp_path / "paper", operating_point=cfg)
    assert record["operating_point"]["threshold"] is None and "paper" in record["operating_point"]["reason"]


def _saves(monkeypatch) -> list[str]:
    """The file names of every atomic_save of the loop, in order."""
    names: list[str] = []
    save = loop.atomic_save
    monkeypatch.setattr(loop, "atomic_save", lambda obj, path: names.append(path.name) or save(obj, path))
    return names


@pytest.mark.parametrize("every_s, expected", [(0, ["best.pt", "last.pt"] * 3), (3600, ["best.pt", "last.pt"])])
def test_last_pt_written_by_wall_clock_and_at_the_end(params, tiny_data, tmp_path, monkeypatch, every_s, expected):
    """checkpoint_every_s 0: last.pt (after a pending best.pt) at every epoch end; an hour: only at the end.
    selection `last`: every epoch is the best so far, so best.pt goes with each last.pt, never ahead of it."""
    names = _saves(monkeypatch)
    recipe = _recipe(params, {"train": {"epochs": 3, "selection": "last", "checkpoint_every_s": every_s}},
                     role="student")
    train(recipe, tiny_data, tmp_path / "run")
    assert names == expected


def test_finished_last_pt_keeps_the_record_not_the_resume_state(params, tiny_data, tmp_path):
    from aclnet_kd.models import load_model_checkpoint

    out = tmp_path / "run"
    record = train(_recipe(params, {"train": {"epochs": 2}}, role="student"), tiny_data, out)
    last = safe_load(out / "last.pt")
    assert set(last) == {"format", "meta", "train_state"}
    assert set(last["train_state"]) == {"epoch", "batch", "finished", "history", "fingerprint"}
    assert last["train_state"]["finished"] and len(last["train_state"]["history"]) == 2
    assert RunRecord.from_dict(last["meta"]) == RunRecord.from_dict(record)
    assert (out / "last.pt").stat().st_size < (out / "best.pt").stat().st_size / 10
    with pytest.raises(AclnetError, match="finished run's last.pt holds its record, not its weights"):
        load_model_checkpoint(out / "last.pt")


def test_a_kill_before_the_first_checkpoint_leaves_no_best_pt_ahead(params, tiny_data, tmp_path, monkeypatch):
    """best.pt is written with last.pt: a run stopped in epoch 3 of a run that writes last.pt hourly has
    neither, and the same command starts it afresh (not from a best.pt of an epoch no last.pt reached)."""
    original, calls = loop.train_step, []

    def failing_step(parts, batch):
        calls.append(1)
        if len(calls) == 5:  # epoch 3, step 1 (two steps per epoch)
            raise RuntimeError("killed")
        return original(parts, batch)

    recipe = _recipe(params, {"train": {"epochs": 3, "selection": "last", "checkpoint_every_s": 3600}},
                     role="student")
    monkeypatch.setattr(loop, "train_step", failing_step)
    with pytest.raises(RuntimeError, match="killed"):
        train(recipe, tiny_data, tmp_path / "run")
    assert not (tmp_path / "run" / "last.pt").exists() and not (tmp_path / "run" / "best.pt").exists()
