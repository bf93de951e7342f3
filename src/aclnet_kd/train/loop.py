"""The training loop for the teacher, the plain student and the distilled student, top to bottom.

    train(recipe, data_dir, out_dir, teacher_checkpoint) -> run record (also written to run.json)

The file reads in the order of a run: :class:`Run` (what a run in progress is), then ``_train`` (the whole run
in one page), then each of its steps as it first happens: check the inputs (``inputs.py``), resume or start,
data, model (and frozen teacher and KD losses, ``training.py``), output folder, log and dvclive, then epochs of
[``train_step`` x N -> ``evaluate_on_val`` -> model selection -> ``save_checkpoint`` -> logs], then the record.

Everything a resumed run needs is in ``last.pt``; it is rewritten atomically at an epoch end once
``checkpoint_every_s`` seconds have passed since the last write (0: every epoch end), every
``checkpoint_every`` steps if set, and at the end, so a run killed at any moment restarts from there and, on
CPU with ``deterministic``, ends with bit-identical weights. ``best.pt`` is kept in memory when selected and
written just before each ``last.pt``, so the two files on disk always belong to the same point of the run.
A finished run's ``last.pt`` keeps only its record, history and fingerprint (what the finished-run no-op and
``--restart-finished`` read): no weights, optimizer or RNG state, which nothing reads once the run is done.

Outputs (rank 0 only): last.pt, best.pt, config.yaml, train.log, run.json (:class:`RunRecord`; also the
checkpoints' ``meta``), dvclive/.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from dvclive import Live
from py_sod_metrics import Smeasure
from torch.utils.data import DataLoader
from tqdm import tqdm

from aclnet_kd import provenance
from aclnet_kd.checkpoint import FORMAT
from aclnet_kd.data.dataset import normalize_batch
from aclnet_kd.errors import AclnetError
from aclnet_kd.io import atomic_save, atomic_write_text, safe_load
from aclnet_kd.train.convergence import judge_history
from aclnet_kd.train.distributed import (
    DistInfo,
    all_reduce_sum,
    barrier,
    gather_to_all,
    init_distributed,
    shutdown_distributed,
)
from aclnet_kd.train.inputs import Data, check_inputs, open_data
from aclnet_kd.train.operating_point import run_operating_point
from aclnet_kd.train.precision import autocast, to_memory_format
from aclnet_kd.train.recipe import Recipe
from aclnet_kd.train.record import RunRecord
from aclnet_kd.train.state import capture_rng, restore_rng, seed_everything
from aclnet_kd.train.training import NonFiniteLossError, Training, build_training, train_step

LOG = logging.getLogger("aclnet_kd.train")

# Keys that may change between a run and its resumption (they do not change what is computed).
RUNTIME_KEYS = ("device", "num_workers", "compile", "checkpoint_every", "checkpoint_every_s")


@dataclass
class Run:
    """One run in progress: its settings, data, modules and loggers, then its position and history (what
    last.pt saves; a resumed run continues them, :func:`restore`)."""

    recipe: Recipe
    info: DistInfo
    out_dir: Path
    teacher_checkpoint: str | None
    data: Data
    training: Training
    live: Live | None  # the dvclive logger (rank 0)
    epoch: int = 0  # epochs finished
    batch: int = 0  # batches of the current epoch finished
    history: list[dict[str, Any]] = field(default_factory=list)
    epoch_sums: dict[str, float] = field(default_factory=dict)
    operating_point: dict[str, Any] | None = None  # chosen once the last epoch is done (train/operating_point.py)
    # Collected once, so last.pt, best.pt and run.json of one process carry the same record (and date).
    provenance_info: dict[str, Any] = field(default_factory=provenance.collect)
    best_entry: dict[str, Any] | None = None  # best.pt selected but not yet written (written with last.pt)
    last_saved: float = field(default_factory=time.monotonic)  # when last.pt was last written (or the start)

    @property
    def last_path(self) -> Path:
        return self.out_dir / "last.pt"

    @property
    def steps_per_epoch(self) -> int:
        return self.data.steps_per_epoch

    def selected(self) -> int | None:
        """The epoch the selection protocol keeps so far (rank 0, which validates); None before epoch 1 ends."""
        if not self.history:
            return None
        return select_epoch(self.history, self.recipe.selection, self.data.selection["metric"])


# ------------------------------------------------------------------------------------------- the run


def train(
    recipe: Recipe,
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    teacher_checkpoint: str | os.PathLike | None = None,
    operating_point: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run (or resume, or recognise as finished) one training. Returns the run record of run.json.
    ``operating_point``: params ``operating_point``, chosen on the validation split at the end (None: not chosen)."""
    info = init_distributed(recipe.device)
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    handlers: list[logging.Handler] = []
    try:
        return _train(recipe, Path(data_dir), Path(out_dir), teacher_checkpoint, info, handlers, operating_point)
    finally:
        for handler in handlers:
            LOG.removeHandler(handler)
            handler.close()
        torch.use_deterministic_algorithms(previous_deterministic)
        shutdown_distributed(info)


def _train(recipe: Recipe, data_dir: Path, out_dir: Path, teacher_checkpoint, info: DistInfo,
           handlers: list[logging.Handler], operating_point: dict[str, Any] | None = None) -> dict[str, Any]:
    inputs = check_inputs(recipe, data_dir, teacher_checkpoint, info)
    resume = read_resume(out_dir, fingerprint(recipe, inputs.meta["name"]))
    if resume is not None and resume["train_state"]["finished"]:
        return _already_finished(out_dir, resume, info)  # a finished run started again is a no-op
    configure_backends(recipe, info)
    seed_everything(recipe.seed + info.rank)  # per-rank dropout streams; data order is seeded separately
    data = open_data(inputs, recipe, info)
    training = build_training(recipe, info, teacher_checkpoint)
    # every input is checked: now create the output folder, the log and the dvclive logger
    if info.is_main:
        start_out_dir(out_dir, recipe, data, teacher_checkpoint)
    handlers += _setup_logging(out_dir, info.is_main)
    run = Run(recipe, info, out_dir, str(teacher_checkpoint) if recipe.kd else None, data, training,
              live=start_live(out_dir, recipe) if info.is_main else None)
    log_start(run)
    if resume is not None:
        restore(run, resume)  # last, so the restored RNG streams are the next thing the run draws from

    while run.epoch < recipe.epochs:
        log = train_epoch(run)
        log.update(evaluate_on_val(run))
        run.history.append(log)
        run.epoch += 1
        finished = run.epoch == recipe.epochs
        if info.is_main:  # only rank 0 validates, so only it selects
            LOG.info("epoch %d/%d: %s", run.epoch, recipe.epochs,
                     " ".join(f"{k}={v:.5g}" for k, v in log.items() if k != "epoch"))
            if run.selected() == run.epoch:
                keep_best(run)
            if finished and operating_point is not None:
                write_best(run)  # the operating point is chosen on best.pt as written
                choose_operating_point(run, operating_point)
        if finished or checkpoint_due(run):
            save_checkpoint(run, finished=finished)
        if info.is_main:
            log_metrics(run.live, log)
        barrier(info)

    if not info.is_main:
        return {"role": recipe.role, "rank": info.rank, "world_size": info.world_size, "epochs": recipe.epochs}
    record = make_record(run, run.selected())
    run.live.end()
    atomic_write_text(out_dir / "run.json", record.to_json())
    LOG.info("finished: selected epoch %d (%s); converged %s %s; run.json written", record.selected_epoch,
             data.selection["protocol"], record.converged, record.plateau)
    return record.to_dict()


def _already_finished(out_dir: Path, resume: dict[str, Any], info: DistInfo) -> dict[str, Any]:
    """A finished run started again: its record (run.json rewritten if missing), nothing else touched."""
    record = RunRecord.from_dict(resume["meta"], str(out_dir / "last.pt"))
    if info.is_main and not (out_dir / "run.json").exists():
        atomic_write_text(out_dir / "run.json", record.to_json())
    if info.is_main:
        print(f"aclnet train: {out_dir} is already finished (epoch {record.epochs}); nothing to do")
    return record.to_dict()


# --------------------------------------------------------------------------------- resume or start


def read_resume(out_dir: Path, expected: dict[str, Any]) -> dict[str, Any] | None:
    """last.pt of an earlier start of the same run (its fingerprint is ``expected``), or None; a different
    run's folder is an error."""
    last_path = out_dir / "last.pt"
    if not last_path.exists():
        return None
    resume = safe_load(last_path)
    if not isinstance(resume, dict) or resume.get("format") != FORMAT or "train_state" not in resume:
        raise AclnetError(f"{last_path}: not a resumable aclnet-kd checkpoint")
    changed = _diff_keys(resume["train_state"]["fingerprint"], expected)
    if changed:
        raise AclnetError(f"{out_dir}: holds a run with different settings ({', '.join(changed[:6])}); "
                          "use a new --out or delete the folder")
    return resume


def fingerprint(recipe: Recipe, dataset: str) -> dict[str, Any]:
    """What must match for a resume to continue the same run."""
    config = {k: v for k, v in recipe.to_dict().items() if k not in RUNTIME_KEYS}
    return {"recipe": config, "dataset": dataset}


def _diff_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _diff_keys(a.get(k), b.get(k), f"{prefix}{k}.")]
    return [] if a == b else [prefix.rstrip(".")]


def configure_backends(recipe: Recipe, info: DistInfo) -> None:
    """Deterministic kernels if asked; on CUDA otherwise cuDNN autotuning and TF32."""
    torch.use_deterministic_algorithms(recipe.deterministic, warn_only=True)
    if recipe.deterministic and info.device.type == "cuda":
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    elif info.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


# --------------------------------------------------------------------- output folder, log, dvclive


def start_out_dir(out_dir: Path, recipe: Recipe, data: Data, teacher_checkpoint) -> None:
    """Rank 0: the output folder, without temp files a kill left, and the resolved config.yaml."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob(".*.pt.*.tmp"):  # left by a kill during atomic_save
        stale.unlink(missing_ok=True)
    atomic_write_text(out_dir / "config.yaml", yaml.safe_dump(
        {"recipe": recipe.to_dict(), "data": str(data.data_dir),
         "teacher": str(teacher_checkpoint) if recipe.kd else None}, sort_keys=False))


def _setup_logging(out_dir: Path, is_main: bool) -> list[logging.Handler]:
    """Log to stderr and (rank 0) append to train.log; returns the handlers to remove at the end. Other
    ranks log warnings only."""
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if is_main:
        handlers.append(logging.FileHandler(own_file(out_dir / "train.log")))
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    for handler in handlers:
        handler.setFormatter(formatter)
        LOG.addHandler(handler)
    LOG.setLevel(logging.INFO if is_main else logging.WARNING)
    LOG.propagate = False
    return handlers


def start_live(out_dir: Path, recipe: Recipe) -> Live:
    """A dvclive logger writing to ``out_dir/dvclive`` only, through dvclive's public options.

    It is started as a standalone logger, outside any repository: from a fresh empty folder as the working
    directory, so it finds no Git or DVC repo (inside a Git repo without DVC it would run ``dvc init``; a
    training stage must not touch the repository), with ``save_dvc_exp=False`` (no DVC experiment),
    ``dvcyaml=None`` (no dvc.yaml entry), no report, and ``DVC_STUDIO_OFFLINE`` (DVC's documented switch)
    so nothing is posted to DVC Studio. The files it writes (metrics.json, plots/metrics/*.tsv, params.yaml)
    are the ones ``dvc plots`` and the figures read. A resumed run rebuilds its curves (:func:`restore`).
    """
    folder = (out_dir / "dvclive").resolve()
    with tempfile.TemporaryDirectory() as outside, contextlib.chdir(outside), _env(DVC_STUDIO_OFFLINE="true"):
        live = Live(dir=str(folder), resume=False, save_dvc_exp=False, dvcyaml=None, report=None)
    live.log_params({"recipe": recipe.to_dict()})
    return live


def own_file(path: Path) -> Path:
    """``path``, first replaced by its own copy when another name shares its bytes (a DVC cache with
    ``cache.type`` hardlink, .dvc/config) or it is read-only (DVC's links are), so that appending to it never
    writes into the cache; a restarted or resumed run appends to the earlier attempt's train.log."""
    if path.exists() and (path.stat().st_nlink > 1 or not os.access(path, os.W_OK)):
        private = path.with_name(f".{path.name}.own.tmp")
        shutil.copyfile(path, private)  # the bytes only: a new, writable file (DVC makes its links read-only)
        os.replace(private, path)
    return path


@contextlib.contextmanager
def _env(**values: str):
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def log_start(run: Run) -> None:
    """What the run is, in train.log's first lines: role, KD, model, device, data, selection, teacher."""
    recipe, info, data, meta = run.recipe, run.info, run.data, run.data.meta
    kd_text = "off"
    if recipe.kd:
        weights = ", ".join(f"{k}={v:g}" for k, v in recipe.kd_weights.items())
        kd_text = (f"on ({weights}; tau={recipe.kd_tau:g}; train_kd_modules={recipe.train_kd_modules}; "
                   f"atd_teacher_fix={recipe.atd_teacher_fix})")
    LOG.info("run %s: role=%s kd=%s model=%s %s seed=%d", run.out_dir, recipe.role, kd_text, recipe.model_name,
             recipe.model_cfg, recipe.seed)
    LOG.info("device=%s precision=%s world_size=%d channels_last=%s compile=%s deterministic=%s",
             info.device, recipe.precision, info.world_size, recipe.channels_last, recipe.compile,
             recipe.deterministic)
    LOG.info("data %s: dataset=%s%s, %d train images (%s), batch %d (per rank %d), %d epochs at %d px",
             data.data_dir, meta["name"], " (SYNTHETIC)" if meta["synthetic"] else "", data.num_train,
             " + ".join(data.train_splits), recipe.batch_size, recipe.batch_size // info.world_size,
             recipe.epochs, recipe.image_size)
    LOG.info("selection=%s: %s", data.selection["protocol"], data.selection["note"])
    if recipe.kd:
        LOG.info("teacher %s (frozen, eval mode, no_grad); KD terms: %s", run.teacher_checkpoint,
                 ", ".join(run.training.kd_loss.active_terms) or "none")
    if info.enabled and not run.training.sync_bn:
        LOG.warning("DDP on CPU: BatchNorm (model, MGMD) normalises each rank's %d images, not the global batch "
                    "of %d (torch's SyncBatchNorm is CUDA-only)", recipe.batch_size // info.world_size,
                    recipe.batch_size)


def restore(run: Run, resume: dict[str, Any]) -> None:
    """Continue from last.pt: weights, optimizer, schedule, scaler, KD modules, position, history (and its
    dvclive curves, so they match the checkpoint), then the RNG streams."""
    state, training, info = resume["train_state"], run.training, run.info
    training.model.load_state_dict(resume["state_dict"])  # the wrapped step modules share these tensors
    training.optimizer.load_state_dict(state["optimizer"])
    training.scheduler.load_state_dict(state["scheduler"])
    if training.scaler is not None and state.get("scaler"):
        training.scaler.load_state_dict(state["scaler"])
    if training.kd_loss is not None:
        training.kd_loss.load_state_dict(state["kd_modules"])
    run.epoch, run.batch = state["epoch"], state["batch"]
    run.history, run.epoch_sums = list(state["history"]), dict(state["epoch_sums"])
    if run.live is not None:
        for log in run.history:
            log_metrics(run.live, log)
    rng_states = state["rng"]
    if len(rng_states) == info.world_size:
        restore_rng(rng_states[info.rank])
    else:
        LOG.warning("last.pt was written by %d ranks, this run has %d: RNG streams are reseeded, so the "
                    "result will not be bit-identical to an uninterrupted run", len(rng_states), info.world_size)
        seed_everything(run.recipe.seed + 1000 * (run.epoch + 1) + info.rank)
    LOG.info("resumed from %s at epoch %d, batch %d/%d", run.last_path, run.epoch + 1, run.batch,
             run.steps_per_epoch)


# ---------------------------------------------------------------------------------------- an epoch


def train_epoch(run: Run) -> dict[str, Any]:
    """The steps of epoch ``run.epoch`` from batch ``run.batch`` -> its log (epoch, lr, train/*, speed)."""
    recipe, info, training, data = run.recipe, run.info, run.training, run.data
    data.sampler.set_position(run.epoch, run.batch)
    data.train_set.set_epoch(run.epoch)
    training.step_model.train()
    if training.step_kd_loss is not None:
        training.step_kd_loss.train()  # as released: MGMD's BatchNorm uses batch statistics
    lr = training.optimizer.param_groups[0]["lr"]
    bar = tqdm(data.loader, desc=f"epoch {run.epoch + 1}/{recipe.epochs}", total=run.steps_per_epoch,
               initial=run.batch, disable=not info.is_main, leave=False, dynamic_ncols=True,
               mininterval=0.5 if sys.stderr.isatty() else 30.0)  # logs to files stay short
    first_batch, images_seen, started = run.batch, 0, time.perf_counter()
    for step, batch in enumerate(bar, start=run.batch):
        values = _checked_step(run, normalize_batch(batch, info.device), step)
        for name, value in values.items():
            run.epoch_sums[name] = run.epoch_sums.get(name, 0.0) + value
        images_seen += recipe.batch_size
        bar.set_postfix(loss=f"{values['loss']:.4f}", img_s=f"{images_seen / (time.perf_counter() - started):.1f}")
        run.batch = step + 1
        if recipe.checkpoint_every and run.batch % recipe.checkpoint_every == 0 and run.batch < run.steps_per_epoch:
            save_checkpoint(run)
    bar.close()
    seconds = time.perf_counter() - started
    training.scheduler.step()
    log = {"epoch": run.epoch + 1, "lr": lr}
    log.update({f"train/{name}": total / run.steps_per_epoch for name, total in run.epoch_sums.items()})
    log["images_per_s"] = (run.steps_per_epoch - first_batch) * recipe.batch_size / max(seconds, 1e-9)
    log["seconds"] = seconds  # this process's wall time of the epoch's steps (table3's time per epoch)
    run.epoch_sums, run.batch = {}, 0
    return log


def _checked_step(run: Run, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
    """:func:`train_step`, with a non-finite loss reported at its epoch and step."""
    try:
        return train_step(run.training, batch)
    except NonFiniteLossError as err:
        saved = (f"{run.last_path} holds the last checkpoint" if run.last_path.exists()
                 else "no checkpoint was written yet")
        message = (f"non-finite loss at epoch {run.epoch + 1}/{run.recipe.epochs}, step {step + 1}/"
                   f"{run.steps_per_epoch}: {err}. Stopped before this optimizer step; {saved}. "
                   "Try a lower train.lr or train.precision fp32.")
        LOG.error(message)
        raise NonFiniteLossError(message) from None


def evaluate_on_val(run: Run) -> dict[str, float]:
    """Rank 0: MAE and S-measure of each monitored split (``val``, or ``test`` under paper selection)."""
    if not run.info.is_main:
        return {}
    metrics = {}
    eval_batch = max(1, run.recipe.batch_size // run.info.world_size)
    for label, datasets in run.data.monitor_sets.items():
        values = evaluate_splits(run.training.model, datasets, eval_batch, run.info, run.recipe)
        metrics.update({f"{label}/{key}": value for key, value in values.items()})
    return metrics


@torch.no_grad()
def evaluate_splits(model: torch.nn.Module, datasets: list, batch_size: int, info: DistInfo, recipe: Recipe
                    ) -> dict[str, float]:
    """MAE and S-measure of sigmoid maps at network resolution, over all images of ``datasets``.

    These are for model selection and monitoring only; the paper's numbers come from ``aclnet evaluate``
    on maps resized to each GT's original size.
    """
    was_training = model.training
    model.eval()
    smeasure, abs_errors = Smeasure(), []
    for dataset in datasets:
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=recipe.num_workers,
                            generator=torch.Generator())  # leaves the global RNG alone
        for batch in loader:
            rgb = to_memory_format(batch["rgb"].to(info.device), recipe.channels_last)
            with autocast(recipe.precision, info.device):
                if model.is_rgbd:
                    logits = model(rgb, to_memory_format(batch["depth"].to(info.device), recipe.channels_last))
                else:
                    logits = model(rgb)
            prob = torch.sigmoid(logits.float()).cpu()
            gt = batch["gt"]
            abs_errors += (prob - gt).abs().flatten(1).mean(1).tolist()
            pred_u8 = (prob * 255).round().to(torch.uint8).numpy()
            gt_u8 = (gt * 255).to(torch.uint8).numpy()
            for p, g in zip(pred_u8, gt_u8):
                smeasure.step(pred=p[0], gt=g[0])
    model.train(was_training)
    return {"mae": float(np.mean(abs_errors)), "sm": float(smeasure.get_results()["sm"])}


# -------------------------------------------------------------- model selection, checkpoints, logs


def select_epoch(history: list[dict[str, Any]], protocol: str, metric_key: str | None) -> int:
    """The 1-based epoch that ``protocol`` keeps: ``last``, or the lowest ``metric_key``. Ties go to the
    earliest epoch for ``best_val``, to the LATEST for ``paper`` (the release updates its best on ``<=``)."""
    if protocol == "last" or metric_key is None:
        return history[-1]["epoch"]
    later = -1 if protocol == "paper" else 1
    best = min(history, key=lambda record: (record[metric_key], later * record["epoch"]))
    return best["epoch"]


def keep_best(run: Run) -> None:
    """The weights of the epoch just finished, kept by the selection protocol: copied in memory now, written
    to best.pt (no training state) with the next last.pt, so a kill never leaves a best.pt ahead of it."""
    state_dict = {name: value.detach().to("cpu", copy=True) if torch.is_tensor(value) else value
                  for name, value in run.training.model.state_dict().items()}
    run.best_entry = {**_model_entry(run, state_dict), "meta": make_record(run, run.epoch).to_dict()}
    LOG.info("best so far: epoch %d (%s)", run.epoch, run.data.selection["note"])


def write_best(run: Run) -> None:
    """best.pt <- the pending best (rank 0); nothing when none is pending."""
    if run.best_entry is not None:
        atomic_save(run.best_entry, run.out_dir / "best.pt")
        LOG.info("best.pt <- epoch %d", run.best_entry["meta"]["epochs_done"])
        run.best_entry = None


def choose_operating_point(run: Run, cfg: dict[str, Any]) -> None:
    """Rank 0, after the last epoch: the selected model's operating point on the validation split."""
    split = run.recipe.val_split
    held_out = split in run.data.monitor_sets  # validated each epoch: present and not trained on
    run.operating_point = run_operating_point(run.out_dir / "best.pt", run.data.data_dir, split, held_out, cfg,
                                              run.recipe.batch_size, run.info.device)
    LOG.info("operating point on '%s': %s", split, run.operating_point)


def checkpoint_due(run: Run) -> bool:
    """At an epoch end: is last.pt to be written? When ``checkpoint_every_s`` seconds have passed since the
    last write (0: always), or the epoch's last step is one of every ``checkpoint_every`` steps. Collective:
    rank 0's clock decides for every rank (save_checkpoint gathers from all of them)."""
    recipe = run.recipe
    due = (not recipe.checkpoint_every_s or time.monotonic() - run.last_saved >= recipe.checkpoint_every_s
           or (recipe.checkpoint_every and run.steps_per_epoch % recipe.checkpoint_every == 0))
    flag = torch.tensor([float(due and run.info.is_main)], device=run.info.device)
    return bool(all_reduce_sum(flag, run.info).item() > 0)


def save_checkpoint(run: Run, finished: bool = False) -> None:
    """best.pt if a new one is pending, then last.pt at (run.epoch, run.batch): the model, its record, and
    everything a resume needs; a finished run's keeps only its record, history and fingerprint. Collective:
    every rank's RNG is gathered (each has its own dropout stream); rank 0 writes."""
    gathered = {name: gather_to_all(value, run.info) for name, value in sorted(capture_rng().items())}
    run.last_saved = time.monotonic()
    if not run.info.is_main:
        return
    write_best(run)
    checkpoint = {"format": FORMAT, "meta": make_record(run, run.selected()).to_dict()}
    state = {"epoch": run.epoch, "batch": run.batch, "finished": finished, "history": run.history,
             "fingerprint": fingerprint(run.recipe, run.data.meta["name"])}
    if not finished:  # resume state: nothing reads it once the run is done
        per_rank = [{name: values[r] for name, values in gathered.items()} for r in range(run.info.world_size)]
        training = run.training
        kd_loss = training.kd_loss
        checkpoint.update(_model_entry(run, training.model.state_dict()))
        state.update({
            "optimizer": training.optimizer.state_dict(), "scheduler": training.scheduler.state_dict(),
            "scaler": training.scaler.state_dict() if training.scaler is not None else None,
            "kd_modules": kd_loss.state_dict() if kd_loss is not None else None,
            "rng": per_rank, "epoch_sums": run.epoch_sums,
        })
    checkpoint["train_state"] = state
    atomic_save(checkpoint, run.last_path)


def _model_entry(run: Run, state_dict: dict) -> dict[str, Any]:
    recipe = run.recipe
    return {"format": FORMAT, "model_name": recipe.model_name,
            "model_cfg": {k: v for k, v in recipe.model_cfg.items() if k != "pretrained"}, "state_dict": state_dict}


def log_metrics(live: Live, log: dict[str, Any]) -> None:
    """One epoch's log into dvclive (rank 0)."""
    live.step = log["epoch"]
    for key, value in log.items():
        if key != "epoch":
            live.log_metric(key, value)
    live.next_step()


# ---------------------------------------------------------------------------------- the run record


def make_record(run: Run, selected: int | None) -> RunRecord:
    """The run's record after ``run.epoch`` epochs, with ``selected`` as the kept epoch."""
    recipe, meta, data = run.recipe, run.data.meta, run.data
    return RunRecord(
        role=recipe.role, kd=recipe.kd, kd_weights=recipe.kd_weights if recipe.kd else None,
        kd_tau=recipe.kd_tau if recipe.kd else None,
        # The faithfulness switches apply to the distilled student only (None for other runs).
        train_kd_modules=recipe.train_kd_modules, atd_teacher_fix=recipe.atd_teacher_fix,
        teacher_checkpoint=run.teacher_checkpoint, model={"name": recipe.model_name, "cfg": recipe.model_cfg},
        dataset=meta["name"], synthetic=bool(meta["synthetic"]), data_dir=str(data.data_dir),
        train_images={"splits": data.train_splits, "count": data.num_train}, track=recipe.track,
        selection=data.selection, selected_epoch=selected, epochs_done=run.epoch, seed=recipe.seed,
        device=str(run.info.device), precision=recipe.precision, world_size=run.info.world_size,
        epochs=recipe.epochs, image_size=recipe.image_size, batch_size=recipe.batch_size,
        final_metrics=run.history[-1] if run.history else None,
        best_metrics=run.history[selected - 1] if selected else None,
        seconds_per_epoch=_mean([h["seconds"] for h in run.history if "seconds" in h]),
        kd_params=sum(p.numel() for p in run.training.kd_params),
        provenance=run.provenance_info,
        operating_point=run.operating_point,
        **judge_convergence(run),
    )


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def judge_convergence(run: Run) -> dict[str, Any]:
    """The plateau rule on the validation Sm history, once the run is finished (``converged`` None before)."""
    converged, figures = judge_history(run.history, run.recipe.selection, run.recipe.val_split, run.recipe.epochs)
    return {"converged": converged, "plateau": figures}
