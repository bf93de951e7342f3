"""The training loop for the teacher, the plain student and the distilled student, top to bottom.

    train(recipe, data_dir, out_dir, teacher_checkpoint) -> run record (also written to run.json)

``_train`` reads as the run goes: check the inputs, resume or start, data, model (and frozen teacher and KD
losses), optimizer, then epochs of [``train_step`` x N -> ``evaluate_on_val`` -> model selection ->
``save_checkpoint`` -> logs]. Everything a resumed run needs is in ``last.pt``; it is rewritten atomically at
an epoch end once ``checkpoint_every_s`` seconds have passed since the last write (0: every epoch end), every
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
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from aclnet_kd.checkpoint import FORMAT
from aclnet_kd.errors import AclnetError
from aclnet_kd.io import atomic_save, atomic_write_text, safe_load
from aclnet_kd import provenance
from aclnet_kd.losses.registry import KD_TERMS
from aclnet_kd.train.distributed import (
    DistInfo,
    all_reduce_sum,
    barrier,
    gather_to_all,
    init_distributed,
    shutdown_distributed,
)
from aclnet_kd.train.precision import autocast, check_precision, make_grad_scaler, to_memory_format
from aclnet_kd.train.recipe import Recipe
from aclnet_kd.train.convergence import judge_history
from aclnet_kd.train.record import RunRecord
from aclnet_kd.train.state import ResumableSampler, capture_rng, restore_rng, seed_everything

LOG = logging.getLogger("aclnet_kd.train")

# Keys that may change between a run and its resumption (they do not change what is computed).
RUNTIME_KEYS = ("device", "num_workers", "compile", "checkpoint_every", "checkpoint_every_s")
TEST_SELECTION_NOTE = "TEST-SET SELECTION (as released): the checkpoint kept is the one with the best test MAE"


class NonFiniteLossError(AclnetError):
    """A loss term became NaN or infinite: the run stops instead of training on garbage."""


# --------------------------------------------------------------------------------------------- helpers


def _setup_logging(out_dir: Path | None) -> list[logging.Handler]:
    """Log to stderr and (rank 0) append to train.log; returns the handlers to remove at the end."""
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if out_dir is not None:
        handlers.append(logging.FileHandler(out_dir / "train.log"))
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    for handler in handlers:
        handler.setFormatter(formatter)
        LOG.addHandler(handler)
    LOG.setLevel(logging.INFO)
    LOG.propagate = False
    return handlers


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


def _live(out_dir: Path):
    """A dvclive logger writing to ``out_dir/dvclive`` only, through dvclive's public options.

    It is started as a standalone logger, outside any repository: from a fresh empty folder as the working
    directory, so it finds no Git or DVC repo (inside a Git repo without DVC it would run ``dvc init``; a
    training stage must not touch the repository), with ``save_dvc_exp=False`` (no DVC experiment),
    ``dvcyaml=None`` (no dvc.yaml entry), no report, and ``DVC_STUDIO_OFFLINE`` (DVC's documented switch)
    so nothing is posted to DVC Studio. The files it writes (metrics.json, plots/metrics/*.tsv, params.yaml)
    are the ones ``dvc plots`` and the figures read.
    """
    import tempfile

    from dvclive import Live

    folder = (out_dir / "dvclive").resolve()
    with tempfile.TemporaryDirectory() as outside, contextlib.chdir(outside), _env(DVC_STUDIO_OFFLINE="true"):
        return Live(dir=str(folder), resume=False, save_dvc_exp=False, dvcyaml=None, report=None)


def _fingerprint(recipe: Recipe, dataset: str) -> dict[str, Any]:
    """What must match for a resume to continue the same run."""
    config = {k: v for k, v in recipe.to_dict().items() if k not in RUNTIME_KEYS}
    return {"recipe": config, "dataset": dataset}


def _diff_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _diff_keys(a.get(k), b.get(k), f"{prefix}{k}.")]
    return [] if a == b else [prefix.rstrip(".")]


def prepare_teacher(teacher: torch.nn.Module, device: torch.device, channels_last: bool) -> torch.nn.Module:
    """Freeze a teacher: eval mode, no parameter requires grad, on ``device`` in the run's memory format."""
    teacher.requires_grad_(False).eval()
    teacher = teacher.to(device)
    return teacher.to(memory_format=torch.channels_last) if channels_last else teacher


def load_teacher(path: str | os.PathLike, device: torch.device, channels_last: bool) -> torch.nn.Module:
    """The frozen teacher of a checkpoint (loaded with weights_only; see :func:`prepare_teacher`)."""
    from aclnet_kd.models import load_model_checkpoint

    teacher, meta = load_model_checkpoint(path)
    if not getattr(teacher, "is_rgbd", False):
        raise AclnetError(f"--teacher {path}: holds an RGB-only model ({meta.get('role', '?')}); "
                          "distillation needs the RGB-D teacher (aclnet_t)")
    return prepare_teacher(teacher, device, channels_last)


def forward_losses(model: torch.nn.Module, is_rgbd: bool, rgb: torch.Tensor, depth: torch.Tensor | None,
                   gt: torch.Tensor, label_loss: torch.nn.Module, label_weight: float = 1.0,
                   teacher: torch.nn.Module | None = None, kd_loss: torch.nn.Module | None = None
                   ) -> dict[str, torch.Tensor]:
    """One training forward pass -> ``{"label": ..., [KD terms]}``, weighted. Call under autocast.

    The teacher (distillation only) runs without autograd: its features are constants for the student.
    """
    out = model(rgb, depth) if is_rgbd else model(rgb)
    terms = {"label": label_weight * label_loss(out.side_logits, gt)}
    if teacher is not None:
        with torch.no_grad():
            teacher_out = teacher(rgb, depth, return_all=True)
        terms.update(kd_loss(out, teacher_out, gt))  # gt: for a term that reads it (CIRKD's regions)
    return terms


@torch.no_grad()
def evaluate_splits(model: torch.nn.Module, datasets: list, batch_size: int, info: DistInfo, recipe: Recipe
                    ) -> dict[str, float]:
    """MAE and S-measure of sigmoid maps at network resolution, over all images of ``datasets``.

    These are for model selection and monitoring only; the paper's numbers come from ``aclnet evaluate``
    on maps resized to each GT's original size.
    """
    from py_sod_metrics import Smeasure

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


def select_epoch(history: list[dict[str, Any]], protocol: str, metric_key: str | None) -> int:
    """The 1-based epoch that ``protocol`` keeps: ``last``, or the lowest ``metric_key``. Ties go to the
    earliest epoch for ``best_val``, to the LATEST for ``paper`` (the release updates its best on ``<=``)."""
    if protocol == "last" or metric_key is None:
        return history[-1]["epoch"]
    later = -1 if protocol == "paper" else 1
    best = min(history, key=lambda record: (record[metric_key], later * record["epoch"]))
    return best["epoch"]


def clip_gradients(optimizer: torch.optim.Optimizer, clip: float) -> None:
    """Clamp every gradient element to [-clip, clip] (0: nothing). The release's SOD config sets
    ``clip 0.5``; its lineage (BBS-Net's ``clip_gradient``) clamps values, not the norm."""
    if clip:
        for group in optimizer.param_groups:
            torch.nn.utils.clip_grad_value_(group["params"], clip)


def training_splits(recipe: Recipe, splits: list[str]) -> list[str]:
    """The splits a run trains on: ``train``, plus the held-out ``val_split`` under ``paper`` selection, which
    mirrors the release (it trained on every train image: 1500 rail, not 1350)."""
    return ["train"] + ([recipe.val_split] if recipe.selection == "paper" and recipe.val_split in splits else [])


def _selection_info(protocol: str, val_split: str, test_splits: list[str]) -> dict[str, Any]:
    if protocol == "best_val":
        return {"protocol": "best_val", "metric": f"{val_split}/mae", "splits": [val_split],
                "test_set_selection": False, "note": f"lowest MAE on the held-out '{val_split}' split",
                "ties": "earliest epoch"}
    if protocol == "paper":
        return {"protocol": "paper", "metric": "test/mae", "splits": list(test_splits),
                "test_set_selection": True, "note": TEST_SELECTION_NOTE,
                "ties": "latest epoch (the release keeps a new best on <=)"}
    return {"protocol": "last", "metric": None, "splits": [], "test_set_selection": False,
            "note": "the final epoch"}


# ------------------------------------------------------------------------------- one optimizer step


@dataclass
class StepParts:
    """What one optimizer step needs: the (possibly compiled / DDP-wrapped) model, losses and optimizer."""

    recipe: Recipe
    info: DistInfo
    model: torch.nn.Module
    label_loss: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scaler: Any = None  # torch.amp.GradScaler for fp16, else None
    teacher: torch.nn.Module | None = None
    kd_loss: torch.nn.Module | None = None

    @property
    def is_rgbd(self) -> bool:
        return self.recipe.role == "teacher"

    @property
    def needs_depth(self) -> bool:
        return self.is_rgbd or self.recipe.kd  # the student itself never receives depth


def train_step(parts: StepParts, batch: dict[str, torch.Tensor]) -> dict[str, float]:
    """One optimizer step on a normalised batch on the device -> the global mean of each weighted loss term
    and their sum ``loss``. A non-finite term raises :class:`NonFiniteLossError` before the step."""
    recipe, info, optimizer, scaler = parts.recipe, parts.info, parts.optimizer, parts.scaler
    rgb = to_memory_format(batch["rgb"], recipe.channels_last)
    depth = to_memory_format(batch["depth"], recipe.channels_last) if parts.needs_depth else None
    with autocast(recipe.precision, info.device):  # forward: the losses as a dict of named, weighted terms
        terms = forward_losses(parts.model, parts.is_rgbd, rgb, depth, batch["gt"], parts.label_loss,
                               recipe.label_weight, parts.teacher, parts.kd_loss)
        loss = sum(terms.values())
    # the global mean of each term (one small all-reduce), then stop on NaN/inf before stepping
    values = torch.stack([t.detach().float() for t in terms.values()])
    named = dict(zip(terms, (all_reduce_sum(values, info) / info.world_size).tolist()))
    total = sum(named.values())
    if not math.isfinite(total):
        bad = [f"{name} = {value}" for name, value in named.items() if not math.isfinite(value)]
        raise NonFiniteLossError(f"{', '.join(bad)} (total {total})")
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        if recipe.grad_clip:
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
        clip_gradients(optimizer, recipe.grad_clip)
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        clip_gradients(optimizer, recipe.grad_clip)
        optimizer.step()
    return {**named, "loss": total}


# ------------------------------------------------------------------------------ building a training


@dataclass
class Training:
    """The trained modules and their optimizer, before compile / DDP wrapping (what a checkpoint holds)."""

    model: torch.nn.Module
    label_loss: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: Any
    teacher: torch.nn.Module | None = None
    kd_loss: torch.nn.Module | None = None
    kd_params: list = field(default_factory=list)  # the KD modules' parameters the optimizer steps
    sync_bn: bool = False


def build_training(recipe: Recipe, info: DistInfo, teacher_checkpoint: str | os.PathLike | None = None,
                   teacher: torch.nn.Module | None = None) -> Training:
    """Model, frozen teacher (from ``teacher_checkpoint``, or an already frozen ``teacher``), label and KD
    losses, optimizer and the release's step schedule for ``recipe``."""
    # from their modules, not the package's lazy names: the workflow's code deps follow these imports
    from aclnet_kd.losses.distillation import DistillationLoss
    from aclnet_kd.losses.label import LabelLoss
    from aclnet_kd.models import build_model

    model = build_model(recipe.model_name, **recipe.model_cfg)
    if model.is_rgbd != (recipe.role == "teacher"):
        raise AclnetError(f"params: 'models.{recipe.role}.name' {recipe.model_name!r} is "
                          f"{'an RGB-D' if model.is_rgbd else 'an RGB-only'} model, wrong for --role {recipe.role}")
    # Batch statistics over the global batch, as in a single-process run, for the model and (below) the KD
    # modules. torch's SyncBatchNorm runs on CUDA only: under gloo on CPU each rank normalises its own images.
    sync_bn = info.enabled and info.device.type == "cuda"
    if sync_bn:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(info.device)
    if recipe.channels_last:
        model = model.to(memory_format=torch.channels_last)
    label_loss = LabelLoss(bce_reduction=recipe.label_bce, world_size=info.world_size)  # global-batch BCE sum
    kd_loss, kd_params = None, []
    if recipe.kd:
        if teacher is None:
            teacher = load_teacher(teacher_checkpoint, info.device, recipe.channels_last)
        kd_loss = DistillationLoss({k: recipe.kd_weights[k] for k in KD_TERMS}, tau=recipe.kd_tau,
                                   atd_teacher_fix=recipe.atd_teacher_fix, gather_across_ranks=info.enabled,
                                   options=recipe.kd_options)
        if sync_bn:
            kd_loss = torch.nn.SyncBatchNorm.convert_sync_batchnorm(kd_loss)
        kd_loss = kd_loss.to(info.device)
        # The release never optimises the KD modules' own parameters (they stay at their random init).
        kd_params = kd_loss.trainable_parameters(recipe.train_kd_modules)
    param_groups = [{"params": [p for p in model.parameters() if p.requires_grad]}]
    if kd_params:
        param_groups.append({"params": kd_params})
    optimizer_cls = torch.optim.Adam if recipe.optimizer == "adam" else torch.optim.AdamW
    # fused: one kernel for all parameters instead of ~10 elementwise passes each (same update rule).
    optimizer = optimizer_cls(param_groups, lr=recipe.lr, weight_decay=recipe.weight_decay, fused=True)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: recipe.lr_factor(epoch))
    return Training(model, label_loss, optimizer, scheduler, make_grad_scaler(recipe.precision, info.device),
                    teacher, kd_loss, kd_params, sync_bn)


def step_parts(training: Training, recipe: Recipe, info: DistInfo) -> StepParts:
    """Wrap for speed (``compile``) and for ranks (DDP): what :func:`train_step` runs."""
    model, kd_loss = training.model, training.kd_loss
    if recipe.compile:
        model = torch.compile(model)
    if info.enabled:
        device_ids = [info.device.index] if info.device.type == "cuda" else None
        model = DistributedDataParallel(model, device_ids=device_ids)
        if training.kd_params:
            kd_loss = DistributedDataParallel(kd_loss, device_ids=device_ids)
    return StepParts(recipe, info, model, training.label_loss, training.optimizer, training.scaler,
                     training.teacher, kd_loss)


# ------------------------------------------------------------------------------------- the run's data


@dataclass
class Data:
    """The prepared dataset, what the run trains on, and how it selects its checkpoint."""

    data_dir: Path
    meta: dict[str, Any]
    train_splits: list[str]
    num_train: int
    selection: dict[str, Any]
    train_set: Any = None
    sampler: ResumableSampler | None = None
    loader: DataLoader | None = None
    monitor_sets: dict[str, list] = field(default_factory=dict)  # label -> datasets validated each epoch


def check_inputs(recipe: Recipe, data_dir: Path, teacher_checkpoint, info: DistInfo) -> Data:
    """Every check that needs no model, before anything is written."""
    from aclnet_kd.data.prepared import open_prepared

    check_precision(recipe.precision, info.device)
    if recipe.kd and teacher_checkpoint is None:
        raise AclnetError("--kd on needs --teacher CKPT (a teacher's best.pt)")
    if not recipe.kd and teacher_checkpoint is not None:
        raise AclnetError("--teacher is only used with --kd on")
    if recipe.batch_size % info.world_size:
        raise AclnetError(f"params: 'train.batch_size' {recipe.batch_size} is the global batch and must be "
                          f"divisible by the world size {info.world_size}")
    prepared = open_prepared(data_dir)
    selection = _selection_info(recipe.selection, recipe.val_split, prepared.test_splits)
    if "train" not in prepared.splits:
        raise AclnetError(f"{data_dir}: no 'train' split (has {prepared.splits})")
    if recipe.selection == "best_val" and recipe.val_split not in prepared.splits:
        raise AclnetError(f"params: 'train.val_split' is '{recipe.val_split}', which {data_dir} does not have "
                          f"(splits {prepared.splits}); best_val selection needs a held-out split")
    train_splits = training_splits(recipe, prepared.splits)
    num_train = sum(prepared.meta["splits"][split] for split in train_splits)
    if num_train < recipe.batch_size:
        raise AclnetError(f"{data_dir}: {num_train} training images, fewer than one batch "
                          f"(train.batch_size {recipe.batch_size}); batches drop the remainder")
    return Data(data_dir, prepared.meta, train_splits, num_train, selection)


def open_data(data: Data, recipe: Recipe, info: DistInfo) -> None:
    """The training loader (resumable at any batch) and the datasets validated each epoch."""
    from aclnet_kd.data.dataset import SaliencyDataset, TrainingSet

    # uint8 items, normalised per batch on the device: the float conversion is the loader's largest cost.
    data.train_set = TrainingSet(data.data_dir, data.train_splits, recipe.image_size, seed=recipe.seed,
                                 output="uint8")
    data.sampler = ResumableSampler(len(data.train_set), recipe.batch_size, recipe.seed, info.rank,
                                    info.world_size)
    # Its own generator: a DataLoader otherwise draws a worker seed from the global RNG at every iter(),
    # which would shift the dropout stream of a run resumed mid-epoch.
    data.loader = DataLoader(data.train_set, batch_size=recipe.batch_size // info.world_size,
                             sampler=data.sampler, num_workers=recipe.num_workers,
                             pin_memory=info.device.type == "cuda", drop_last=True,
                             generator=torch.Generator().manual_seed(recipe.seed))
    splits = list(data.meta["splits"])
    if recipe.val_split in splits and recipe.val_split not in data.train_splits:
        data.monitor_sets[recipe.val_split] = [SaliencyDataset(data.data_dir, recipe.val_split, recipe.image_size)]
    if recipe.selection == "paper":
        data.monitor_sets["test"] = [SaliencyDataset(data.data_dir, split, recipe.image_size)
                                     for split in data.meta["test_splits"]]


# ------------------------------------------------------------------------------- the run's progress


@dataclass
class Run:
    """One run in progress: its settings, data, modules, position and history (what last.pt saves)."""

    recipe: Recipe
    info: DistInfo
    out_dir: Path
    teacher_checkpoint: str | None
    data: Data
    training: Training
    parts: StepParts | None = None
    epoch: int = 0  # epochs finished
    batch: int = 0  # batches of the current epoch finished
    history: list[dict[str, Any]] = field(default_factory=list)
    epoch_sums: dict[str, float] = field(default_factory=dict)
    live: Any = None
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
        return self.data.sampler.batches_per_epoch

    def selected(self) -> int | None:
        """The epoch the selection protocol keeps so far (rank 0, which validates); None before epoch 1 ends."""
        if not self.history:
            return None
        return select_epoch(self.history, self.recipe.selection, self.data.selection["metric"])


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


def _model_entry(run: Run, state_dict: dict) -> dict[str, Any]:
    recipe = run.recipe
    return {"format": FORMAT, "model_name": recipe.model_name,
            "model_cfg": {k: v for k, v in recipe.model_cfg.items() if k != "pretrained"}, "state_dict": state_dict}


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
             "fingerprint": _fingerprint(run.recipe, run.data.meta["name"])}
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
    from aclnet_kd.train.operating_point import run_operating_point

    split = run.recipe.val_split
    held_out = split in run.data.monitor_sets  # validated each epoch: present and not trained on
    run.operating_point = run_operating_point(run.out_dir / "best.pt", run.data.data_dir, split, held_out, cfg,
                                              run.recipe.batch_size, run.info.device)
    LOG.info("operating point on '%s': %s", split, run.operating_point)


def read_resume(out_dir: Path, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
    """last.pt of an earlier start of the same run, or None; a different run's folder is an error."""
    last_path = out_dir / "last.pt"
    if not last_path.exists():
        return None
    resume = safe_load(last_path)
    if not isinstance(resume, dict) or resume.get("format") != FORMAT or "train_state" not in resume:
        raise AclnetError(f"{last_path}: not a resumable aclnet-kd checkpoint")
    changed = _diff_keys(resume["train_state"]["fingerprint"], fingerprint)
    if changed:
        raise AclnetError(f"{out_dir}: holds a run with different settings ({', '.join(changed[:6])}); "
                          "use a new --out or delete the folder")
    return resume


def restore(run: Run, resume: dict[str, Any]) -> None:
    """Continue from last.pt: weights, optimizer, schedule, scaler, KD modules, position, history, RNG."""
    state, training, info = resume["train_state"], run.training, run.info
    training.model.load_state_dict(resume["state_dict"])
    training.optimizer.load_state_dict(state["optimizer"])
    training.scheduler.load_state_dict(state["scheduler"])
    if training.scaler is not None and state.get("scaler"):
        training.scaler.load_state_dict(state["scaler"])
    if training.kd_loss is not None:
        training.kd_loss.load_state_dict(state["kd_modules"])
    run.epoch, run.batch = state["epoch"], state["batch"]
    run.history, run.epoch_sums = list(state["history"]), dict(state["epoch_sums"])
    rng_states = state["rng"]
    if len(rng_states) == info.world_size:
        restore_rng(rng_states[info.rank])
    else:
        LOG.warning("last.pt was written by %d ranks, this run has %d: RNG streams are reseeded, so the "
                    "result will not be bit-identical to an uninterrupted run", len(rng_states), info.world_size)
        seed_everything(run.recipe.seed + 1000 * (run.epoch + 1) + info.rank)
    LOG.info("resumed from %s at epoch %d, batch %d/%d", run.last_path, run.epoch + 1, run.batch,
             run.steps_per_epoch)


# ------------------------------------------------------------------------------------------- an epoch


def train_epoch(run: Run) -> dict[str, Any]:
    """The steps of epoch ``run.epoch`` from batch ``run.batch`` -> its log (epoch, lr, train/*, speed)."""
    from aclnet_kd.data.dataset import normalize_batch

    recipe, info, parts, data = run.recipe, run.info, run.parts, run.data
    data.sampler.set_position(run.epoch, run.batch)
    data.train_set.set_epoch(run.epoch)
    parts.model.train()
    if parts.kd_loss is not None:
        parts.kd_loss.train()  # as released: MGMD's BatchNorm uses batch statistics
    lr = parts.optimizer.param_groups[0]["lr"]
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
    run.training.scheduler.step()
    log = {"epoch": run.epoch + 1, "lr": lr}
    log.update({f"train/{name}": total / run.steps_per_epoch for name, total in run.epoch_sums.items()})
    log["images_per_s"] = (run.steps_per_epoch - first_batch) * recipe.batch_size / max(seconds, 1e-9)
    log["seconds"] = seconds  # this process's wall time of the epoch's steps (table3's time per epoch)
    run.epoch_sums, run.batch = {}, 0
    return log


def _checked_step(run: Run, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
    """:func:`train_step`, with a non-finite loss reported at its epoch and step."""
    try:
        return train_step(run.parts, batch)
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


def log_metrics(run: Run, log: dict[str, Any]) -> None:
    """One epoch's log into dvclive (rank 0)."""
    run.live.step = log["epoch"]
    for key, value in log.items():
        if key != "epoch":
            run.live.log_metric(key, value)
    run.live.next_step()


# ------------------------------------------------------------------------------------------ the run


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
    data = check_inputs(recipe, data_dir, teacher_checkpoint, info)
    resume = read_resume(out_dir, _fingerprint(recipe, data.meta["name"]))
    if resume is not None and resume["train_state"]["finished"]:
        return _already_finished(out_dir, resume, info)  # a finished run started again is a no-op
    configure_backends(recipe, info)
    seed_everything(recipe.seed + info.rank)  # per-rank dropout streams; data order is seeded separately
    open_data(data, recipe, info)
    training = build_training(recipe, info, teacher_checkpoint)
    # every input is checked: now create the output folder and the log
    run = Run(recipe, info, out_dir, str(teacher_checkpoint) if recipe.kd else None, data, training)
    if info.is_main:
        start_out_dir(run)
    handlers += _setup_logging(out_dir if info.is_main else None)
    if not info.is_main:
        LOG.setLevel(logging.WARNING)
    log_start(run)
    if resume is not None:
        restore(run, resume)
    run.parts = step_parts(training, recipe, info)
    run.live = start_live(run) if info.is_main else None

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
            log_metrics(run, log)
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
    record = RunRecord.from_dict(resume["meta"], str(out_dir / "last.pt"))
    if info.is_main and not (out_dir / "run.json").exists():
        atomic_write_text(out_dir / "run.json", record.to_json())
    if info.is_main:
        print(f"aclnet train: {out_dir} is already finished (epoch {record.epochs}); nothing to do")
    return record.to_dict()


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


def start_out_dir(run: Run) -> None:
    """Rank 0: the output folder, without temp files a kill left, and the resolved config.yaml."""
    run.out_dir.mkdir(parents=True, exist_ok=True)
    for stale in run.out_dir.glob(".*.pt.*.tmp"):  # left by a kill during atomic_save
        stale.unlink(missing_ok=True)
    atomic_write_text(run.out_dir / "config.yaml", yaml.safe_dump(
        {"recipe": run.recipe.to_dict(), "data": str(run.data.data_dir), "teacher": run.teacher_checkpoint},
        sort_keys=False))


def start_live(run: Run):
    """The dvclive logger, with the curves rebuilt from last.pt's history (they match the checkpoint after a
    resume)."""
    run.live = _live(run.out_dir)
    run.live.log_params({"recipe": run.recipe.to_dict()})
    for log in run.history:
        log_metrics(run, log)
    return run.live


def log_start(run: Run) -> None:
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
