"""The training loop for the teacher, the plain student and the distilled student, top to bottom.

    train(recipe, data_dir, out_dir, teacher_checkpoint) -> run record (also written to run.json)

One function does the whole run, in this order: processes and devices, data, model (and frozen teacher and
KD losses), optimizer, resume from ``last.pt``, then epochs of [train steps -> validation -> model selection
-> checkpoints -> logs]. Everything a resumed run needs is in ``last.pt``; it is rewritten atomically at
each epoch end (and every ``checkpoint_every`` steps), so a run killed at any moment restarts from there and,
on CPU with ``deterministic``, ends with bit-identical weights.

Outputs (rank 0 only): last.pt, best.pt, config.yaml, train.log, run.json, dvclive/.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from aclnet_kd.checkpoint import FORMAT, atomic_save, load_model_checkpoint, safe_load
from aclnet_kd.errors import AclnetError
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
from aclnet_kd.train.state import ResumableSampler, capture_rng, restore_rng, seed_everything

LOG = logging.getLogger("aclnet_kd.train")

# Keys that may change between a run and its resumption (they do not change what is computed).
RUNTIME_KEYS = ("device", "num_workers", "compile", "checkpoint_every")
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


def _live(out_dir: Path):
    """A dvclive logger confined to ``out_dir/dvclive``.

    Stock ``dvclive.Live`` looks for the enclosing DVC repo and, inside a git repo without one, runs
    ``dvc init``; it may also post to DVC Studio. A training stage must not touch the repository, so this
    subclass skips both; the files it writes (metrics.json, plots/metrics/*.tsv, params.yaml) are the
    standard ones that ``dvc plots`` reads.
    """
    from dvclive import Live

    class FolderLive(Live):
        def _init_dvc(self) -> None:
            self._dvc_file = "dvc.yaml"

        def _init_studio(self) -> None:
            self._studio_events_to_skip = {"start", "data", "done"}

    return FolderLive(str(out_dir / "dvclive"), resume=False, save_dvc_exp=False, dvcyaml=None, report=None)


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _fingerprint(recipe: Recipe, dataset: str) -> dict[str, Any]:
    """What must match for a resume to continue the same run."""
    config = {k: v for k, v in recipe.to_dict().items() if k not in RUNTIME_KEYS}
    return {"recipe": config, "dataset": dataset}


def _diff_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _diff_keys(a.get(k), b.get(k), f"{prefix}{k}.")]
    return [] if a == b else [prefix.rstrip(".")]


def load_teacher(path: str | os.PathLike, device: torch.device, channels_last: bool) -> torch.nn.Module:
    """The frozen teacher: loaded with weights_only, eval mode, no parameter requires grad."""
    teacher, meta = load_model_checkpoint(path)
    if not getattr(teacher, "is_rgbd", False):
        raise AclnetError(f"--teacher {path}: holds an RGB-only model ({meta.get('role', '?')}); "
                          "distillation needs the RGB-D teacher (aclnet_t)")
    teacher.requires_grad_(False).eval()
    teacher = teacher.to(device)
    if channels_last:
        teacher = teacher.to(memory_format=torch.channels_last)
    return teacher


def forward_losses(model: torch.nn.Module, is_rgbd: bool, rgb: torch.Tensor, depth: torch.Tensor | None,
                   gt: torch.Tensor, label_loss: torch.nn.Module, label_weight: float = 1.0,
                   teacher: torch.nn.Module | None = None, kd_loss: torch.nn.Module | None = None
                   ) -> dict[str, torch.Tensor]:
    """One training forward pass -> ``{"label": ..., ["cld", "mgmd", "atd"]}``, weighted. Call under autocast.

    The teacher (distillation only) runs without autograd: its features are constants for the student.
    """
    out = model(rgb, depth) if is_rgbd else model(rgb)
    terms = {"label": label_weight * label_loss(out.side_logits, gt)}
    if teacher is not None:
        with torch.no_grad():
            teacher_out = teacher(rgb, depth, return_all=True)
        terms.update(kd_loss(out, teacher_out))
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


# ------------------------------------------------------------------------------------------ the run


def train(
    recipe: Recipe,
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    teacher_checkpoint: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Run (or resume, or recognise as finished) one training. Returns the run record of run.json."""
    info = init_distributed(recipe.device)
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    handlers: list[logging.Handler] = []
    try:
        return _train(recipe, Path(data_dir), Path(out_dir), teacher_checkpoint, info, handlers)
    finally:
        for handler in handlers:
            LOG.removeHandler(handler)
            handler.close()
        torch.use_deterministic_algorithms(previous_deterministic)
        shutdown_distributed(info)


def _train(recipe: Recipe, data_dir: Path, out_dir: Path, teacher_checkpoint, info: DistInfo,
           handlers: list[logging.Handler]) -> dict[str, Any]:
    from aclnet_kd.data.dataset import SaliencyDataset, TrainingSet, normalize_batch, open_prepared
    from aclnet_kd.losses import KD_TERMS, DistillationLoss, LabelLoss
    from aclnet_kd.models import build_model

    # ---- 0. check every input before writing anything -------------------------------------------------
    check_precision(recipe.precision, info.device)
    if recipe.kd and teacher_checkpoint is None:
        raise AclnetError("--kd on needs --teacher CKPT (a teacher's best.pt)")
    if not recipe.kd and teacher_checkpoint is not None:
        raise AclnetError("--teacher is only used with --kd on")
    if recipe.batch_size % info.world_size:
        raise AclnetError(f"params: 'train.batch_size' {recipe.batch_size} is the global batch and must be "
                          f"divisible by the world size {info.world_size}")
    prepared = open_prepared(data_dir)
    meta = prepared.meta
    selection = _selection_info(recipe.selection, recipe.val_split, prepared.test_splits)
    if "train" not in prepared.splits:
        raise AclnetError(f"{data_dir}: no 'train' split (has {prepared.splits})")
    has_val = recipe.val_split in prepared.splits
    if recipe.selection == "best_val" and not has_val:
        raise AclnetError(f"params: 'train.val_split' is '{recipe.val_split}', which {data_dir} does not have "
                          f"(splits {prepared.splits}); best_val selection needs a held-out split")
    train_splits = training_splits(recipe, prepared.splits)
    num_train = sum(meta["splits"][split] for split in train_splits)
    if num_train < recipe.batch_size:
        raise AclnetError(f"{data_dir}: {num_train} training images, fewer than one batch "
                          f"(train.batch_size {recipe.batch_size}); batches drop the remainder")
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    fingerprint = _fingerprint(recipe, meta["name"])
    resume = safe_load(last_path) if last_path.exists() else None
    if resume is not None:
        if not isinstance(resume, dict) or resume.get("format") != FORMAT or "train_state" not in resume:
            raise AclnetError(f"{last_path}: not a resumable aclnet-kd checkpoint")
        changed = _diff_keys(resume["train_state"]["fingerprint"], fingerprint)
        if changed:
            raise AclnetError(f"{out_dir}: holds a run with different settings ({', '.join(changed[:6])}); "
                              "use a new --out or delete the folder")

    # ---- 1. a finished run started again is a no-op -------------------------------------------------
    if resume is not None and resume["train_state"]["finished"]:
        record = resume["train_state"]["record"]
        if info.is_main and not (out_dir / "run.json").exists():
            _write_text_atomic(out_dir / "run.json", json.dumps(record, indent=2) + "\n")
        if info.is_main:
            print(f"aclnet train: {out_dir} is already finished (epoch {record['epochs']}); nothing to do")
        return record

    torch.use_deterministic_algorithms(recipe.deterministic, warn_only=True)
    if recipe.deterministic and info.device.type == "cuda":
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    elif info.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    seed_everything(recipe.seed + info.rank)  # per-rank dropout streams; data order is seeded separately

    # ---- 2. data ------------------------------------------------------------------------------------
    is_rgbd = recipe.role == "teacher"
    needs_depth = is_rgbd or recipe.kd  # the student itself never receives depth
    # uint8 items, normalised per batch on the device: the float conversion is the loader's largest cost.
    train_set = TrainingSet(data_dir, train_splits, recipe.image_size, seed=recipe.seed, output="uint8")
    sampler = ResumableSampler(len(train_set), recipe.batch_size, recipe.seed, info.rank, info.world_size)
    # Its own generator: a DataLoader otherwise draws a worker seed from the global RNG at every iter(),
    # which would shift the dropout stream of a run resumed mid-epoch.
    loader = DataLoader(train_set, batch_size=recipe.batch_size // info.world_size, sampler=sampler,
                        num_workers=recipe.num_workers, pin_memory=info.device.type == "cuda", drop_last=True,
                        generator=torch.Generator().manual_seed(recipe.seed))
    steps_per_epoch = sampler.batches_per_epoch
    monitor_sets: dict[str, list] = {}
    if has_val and recipe.val_split not in train_splits:
        monitor_sets[recipe.val_split] = [SaliencyDataset(data_dir, recipe.val_split, recipe.image_size)]
    if recipe.selection == "paper":
        monitor_sets["test"] = [SaliencyDataset(data_dir, split, recipe.image_size)
                                for split in prepared.test_splits]

    # ---- 3. model, frozen teacher, losses -----------------------------------------------------------
    model = build_model(recipe.model_name, **recipe.model_cfg)
    if model.is_rgbd != is_rgbd:
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
    raw_model = model  # the plain module: state_dict, validation
    label_loss = LabelLoss(bce_reduction=recipe.label_bce, world_size=info.world_size)  # global-batch BCE sum
    teacher = kd_loss = None
    kd_params: list = []
    if recipe.kd:
        teacher = load_teacher(teacher_checkpoint, info.device, recipe.channels_last)
        kd_loss = DistillationLoss({k: recipe.kd_weights[k] for k in KD_TERMS},
                                   tau=recipe.kd_tau, atd_teacher_fix=recipe.atd_teacher_fix,
                                   gather_across_ranks=info.enabled)
        if sync_bn:
            kd_loss = torch.nn.SyncBatchNorm.convert_sync_batchnorm(kd_loss)
        kd_loss = kd_loss.to(info.device)
        # The release never optimises the KD modules' own parameters (they stay at their random init).
        kd_params = kd_loss.trainable_parameters(recipe.train_kd_modules)

    # ---- every input is checked: now create the output folder and the log ----------------------------
    if info.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        for stale in out_dir.glob(".*.pt.*.tmp"):  # left by a kill during atomic_save
            stale.unlink(missing_ok=True)
        _write_text_atomic(out_dir / "config.yaml", yaml.safe_dump(
            {"recipe": recipe.to_dict(), "data": str(data_dir), "teacher": str(teacher_checkpoint or "") or None},
            sort_keys=False))
    handlers += _setup_logging(out_dir if info.is_main else None)
    if not info.is_main:
        LOG.setLevel(logging.WARNING)
    kd_text = "off"
    if recipe.kd:
        weights = ", ".join(f"{k}={v:g}" for k, v in recipe.kd_weights.items())
        kd_text = (f"on ({weights}; tau={recipe.kd_tau:g}; train_kd_modules={recipe.train_kd_modules}; "
                   f"atd_teacher_fix={recipe.atd_teacher_fix})")
    LOG.info("run %s: role=%s kd=%s model=%s %s seed=%d", out_dir, recipe.role, kd_text, recipe.model_name,
             recipe.model_cfg, recipe.seed)
    LOG.info("device=%s precision=%s world_size=%d channels_last=%s compile=%s deterministic=%s",
             info.device, recipe.precision, info.world_size, recipe.channels_last, recipe.compile,
             recipe.deterministic)
    LOG.info("data %s: dataset=%s%s, %d train images (%s), batch %d (per rank %d), %d epochs at %d px",
             data_dir, meta["name"], " (SYNTHETIC)" if meta["synthetic"] else "", num_train, " + ".join(train_splits),
             recipe.batch_size, recipe.batch_size // info.world_size, recipe.epochs, recipe.image_size)
    LOG.info("selection=%s: %s", selection["protocol"], selection["note"])
    if recipe.kd:
        LOG.info("teacher %s (frozen, eval mode, no_grad); KD terms: %s", teacher_checkpoint,
                 ", ".join(kd_loss.active_terms) or "none")
    if info.enabled and not sync_bn:
        LOG.warning("DDP on CPU: BatchNorm (model, MGMD) normalises each rank's %d images, not the global batch "
                    "of %d (torch's SyncBatchNorm is CUDA-only)", recipe.batch_size // info.world_size,
                    recipe.batch_size)

    # ---- 4. optimizer and the release's step schedule -----------------------------------------------
    param_groups = [{"params": [p for p in model.parameters() if p.requires_grad]}]
    if kd_params:
        param_groups.append({"params": kd_params})
    optimizer_cls = torch.optim.Adam if recipe.optimizer == "adam" else torch.optim.AdamW
    # fused: one kernel for all parameters instead of ~10 elementwise passes each (same update rule).
    optimizer = optimizer_cls(param_groups, lr=recipe.lr, weight_decay=recipe.weight_decay, fused=True)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: recipe.lr_factor(epoch))
    scaler = make_grad_scaler(recipe.precision, info.device)

    # ---- 5. resume ----------------------------------------------------------------------------------
    start_epoch, start_batch = 0, 0
    history: list[dict[str, Any]] = []
    epoch_sums: dict[str, float] = {}
    if resume is not None:
        state = resume["train_state"]
        raw_model.load_state_dict(resume["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        if kd_loss is not None:
            kd_loss.load_state_dict(state["kd_modules"])
        start_epoch, start_batch = state["epoch"], state["batch"]
        history, epoch_sums = list(state["history"]), dict(state["epoch_sums"])
        rng_states = state["rng"]
        if len(rng_states) == info.world_size:
            restore_rng(rng_states[info.rank])
        else:
            LOG.warning("last.pt was written by %d ranks, this run has %d: RNG streams are reseeded, so the "
                        "result will not be bit-identical to an uninterrupted run", len(rng_states),
                        info.world_size)
            seed_everything(recipe.seed + 1000 * (start_epoch + 1) + info.rank)
        LOG.info("resumed from %s at epoch %d, batch %d/%d", last_path, start_epoch + 1, start_batch,
                 steps_per_epoch)

    if recipe.compile:
        model = torch.compile(model)
    if info.enabled:
        model = DistributedDataParallel(model, device_ids=[info.device.index] if info.device.type == "cuda" else None)
        if kd_params:
            kd_loss = DistributedDataParallel(kd_loss, device_ids=[info.device.index]
                                              if info.device.type == "cuda" else None)

    def checkpoint(epoch: int, batch: int, finished: bool = False, record: dict | None = None) -> dict:
        """last.pt's content: the model plus everything needed to continue at (epoch, batch)."""
        # Every rank's RNG (each has its own dropout stream); collective, so all ranks call this.
        gathered = {name: gather_to_all(value, info) for name, value in sorted(capture_rng().items())}
        per_rank = [{name: values[r] for name, values in gathered.items()} for r in range(info.world_size)]
        kd_module = kd_loss.module if isinstance(kd_loss, DistributedDataParallel) else kd_loss
        return {
            "format": FORMAT,
            "model_name": recipe.model_name,
            "model_cfg": {k: v for k, v in recipe.model_cfg.items() if k != "pretrained"},
            "state_dict": raw_model.state_dict(),
            "meta": run_meta(epoch),
            "train_state": {
                "epoch": epoch, "batch": batch, "finished": finished, "record": record,
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict() if scaler is not None else None,
                "kd_modules": kd_module.state_dict() if kd_module is not None else None,
                "rng": per_rank, "history": history, "epoch_sums": epoch_sums, "fingerprint": fingerprint,
            },
        }

    def run_meta(epochs_done: int) -> dict[str, Any]:
        return {
            "role": recipe.role, "kd": recipe.kd, "kd_weights": recipe.kd_weights if recipe.kd else None,
            "kd_tau": recipe.kd_tau, "train_kd_modules": recipe.train_kd_modules,
            "atd_teacher_fix": recipe.atd_teacher_fix, "dataset": meta["name"], "synthetic": bool(meta["synthetic"]),
            "track": recipe.track, "seed": recipe.seed, "epoch": epochs_done, "image_size": recipe.image_size,
            "selection": selection["protocol"], "selection_note": selection["note"],
            "test_set_selection": selection["test_set_selection"], "precision": recipe.precision,
            "world_size": info.world_size, "teacher_checkpoint": str(teacher_checkpoint) if recipe.kd else None,
        }

    live = _live(out_dir) if info.is_main else None
    if live is not None:
        # Rebuild the curves from last.pt's history, so they always match the checkpoint after a resume.
        live.log_params({"recipe": recipe.to_dict()})
        for record in history:
            live.step = record["epoch"]
            for key, value in record.items():
                if key != "epoch":
                    live.log_metric(key, value)
            live.next_step()

    # ---- 6. epochs ----------------------------------------------------------------------------------
    for epoch in range(start_epoch, recipe.epochs):
        sampler.set_position(epoch, start_batch)
        train_set.set_epoch(epoch)
        model.train()
        if kd_loss is not None:
            kd_loss.train()  # as released: MGMD's BatchNorm uses batch statistics
        lr = optimizer.param_groups[0]["lr"]
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{recipe.epochs}", total=steps_per_epoch, initial=start_batch,
                   disable=not info.is_main, leave=False, dynamic_ncols=True,
                   mininterval=0.5 if sys.stderr.isatty() else 30.0)  # logs to files stay short
        images_seen, started = 0, time.perf_counter()
        for step, batch in enumerate(bar, start=start_batch):
            batch = normalize_batch(batch, info.device)
            rgb = to_memory_format(batch["rgb"], recipe.channels_last)
            gt = batch["gt"]
            depth = to_memory_format(batch["depth"], recipe.channels_last) if needs_depth else None

            # forward: the losses as a dict of named, weighted terms
            with autocast(recipe.precision, info.device):
                terms = forward_losses(model, is_rgbd, rgb, depth, gt, label_loss, recipe.label_weight,
                                       teacher, kd_loss)
                loss = sum(terms.values())

            # the global mean of each term (one small all-reduce), then stop on NaN/inf before stepping
            values = torch.stack([t.detach().float() for t in terms.values()])
            values = (all_reduce_sum(values, info) / info.world_size).tolist()
            named = dict(zip(terms, values))
            total = sum(values)
            if not math.isfinite(total):
                bad = [f"{name} = {value}" for name, value in named.items() if not math.isfinite(value)]
                saved = (f"{last_path} holds the last checkpoint" if last_path.exists()
                         else "no checkpoint was written yet")
                message = (f"non-finite loss at epoch {epoch + 1}/{recipe.epochs}, step {step + 1}/{steps_per_epoch}: "
                           f"{', '.join(bad)} (total {total}). Stopped before this optimizer step; {saved}. "
                           "Try a lower train.lr or train.precision fp32.")
                LOG.error(message)
                raise NonFiniteLossError(message)

            # backward and step
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

            for name, value in named.items():
                epoch_sums[name] = epoch_sums.get(name, 0.0) + value
            epoch_sums["loss"] = epoch_sums.get("loss", 0.0) + total
            images_seen += recipe.batch_size
            speed = images_seen / (time.perf_counter() - started)
            bar.set_postfix(loss=f"{total:.4f}", img_s=f"{speed:.1f}")

            done = step + 1
            if recipe.checkpoint_every and done % recipe.checkpoint_every == 0 and done < steps_per_epoch:
                ckpt = checkpoint(epoch, done)
                if info.is_main:
                    atomic_save(ckpt, last_path)
        bar.close()
        steps_run = steps_per_epoch - start_batch
        train_seconds = time.perf_counter() - started
        start_batch = 0
        scheduler.step()

        # ---- validation, selection, checkpoints, logs (rank 0 writes) ---------------------------------
        record: dict[str, Any] = {"epoch": epoch + 1, "lr": lr}
        record.update({f"train/{name}": total / steps_per_epoch for name, total in epoch_sums.items()})
        record["images_per_s"] = steps_run * recipe.batch_size / max(train_seconds, 1e-9)
        epoch_sums = {}
        if info.is_main:
            eval_batch = max(1, recipe.batch_size // info.world_size)
            for label, datasets in monitor_sets.items():
                metrics = evaluate_splits(raw_model, datasets, eval_batch, info, recipe)
                record.update({f"{label}/{key}": value for key, value in metrics.items()})
        history.append(record)
        finished = epoch + 1 == recipe.epochs
        run_record = None
        if info.is_main:  # only rank 0 validates, so only it selects
            selected = select_epoch(history, recipe.selection, selection["metric"])
            LOG.info("epoch %d/%d: %s", epoch + 1, recipe.epochs,
                     " ".join(f"{k}={v:.5g}" for k, v in record.items() if k != "epoch"))
            if selected == epoch + 1:
                best = checkpoint_best(raw_model, recipe, run_meta(epoch + 1), selection, record)
                atomic_save(best, best_path)
                LOG.info("best.pt <- epoch %d (%s)", epoch + 1, selection["note"])
            if finished:
                run_record = _run_record(recipe, meta, data_dir, teacher_checkpoint, info, selection, history,
                                         selected)
        ckpt = checkpoint(epoch + 1, 0, finished=finished, record=run_record)
        if info.is_main:
            atomic_save(ckpt, last_path)
            live.step = epoch + 1
            for key, value in record.items():
                if key != "epoch":
                    live.log_metric(key, value)
            live.next_step()
        barrier(info)

    if not info.is_main:
        return {"role": recipe.role, "rank": info.rank, "world_size": info.world_size, "epochs": recipe.epochs}
    record = _run_record(recipe, meta, data_dir, teacher_checkpoint, info, selection, history,
                         select_epoch(history, recipe.selection, selection["metric"]))
    if info.is_main:
        live.end()
        _write_text_atomic(out_dir / "run.json", json.dumps(record, indent=2) + "\n")
        LOG.info("finished: selected epoch %d (%s); run.json written", record["selected_epoch"],
                 selection["protocol"])
    return record


def checkpoint_best(model: torch.nn.Module, recipe: Recipe, meta: dict[str, Any], selection: dict[str, Any],
                    record: dict[str, Any]) -> dict[str, Any]:
    """best.pt: the selected weights and how they were selected (no training state)."""
    meta = dict(meta, selected_epoch=record["epoch"], selection_metric=selection["metric"],
                selection_splits=selection["splits"],
                metrics={k: v for k, v in record.items() if "/" in k and not k.startswith("train/")})
    return {"format": FORMAT, "model_name": recipe.model_name,
            "model_cfg": {k: v for k, v in recipe.model_cfg.items() if k != "pretrained"},
            "state_dict": model.state_dict(), "meta": meta}


def _run_record(recipe: Recipe, meta: dict, data_dir: Path, teacher_checkpoint, info: DistInfo,
                selection: dict[str, Any], history: list[dict[str, Any]], selected: int) -> dict[str, Any]:
    """run.json: what was trained, how, on what, and what was kept."""
    trained_on = training_splits(recipe, list(meta["splits"]))
    return {
        "role": recipe.role,
        "kd": "on" if recipe.kd else "off",
        "kd_weights": recipe.kd_weights if recipe.kd else None,
        "kd_tau": recipe.kd_tau if recipe.kd else None,
        # The faithfulness switches apply to the distilled student only (None for other runs).
        "train_kd_modules": recipe.train_kd_modules,
        "atd_teacher_fix": recipe.atd_teacher_fix,
        "teacher_checkpoint": str(teacher_checkpoint) if recipe.kd else None,
        "model": {"name": recipe.model_name, "cfg": recipe.model_cfg},
        "dataset": meta["name"],
        "synthetic": bool(meta["synthetic"]),
        "data_dir": str(data_dir),
        "train_images": {"splits": trained_on, "count": sum(meta["splits"][split] for split in trained_on)},
        "track": recipe.track,
        "selection": selection,
        "selected_epoch": selected,
        "seed": recipe.seed,
        "device": str(info.device),
        "precision": recipe.precision,
        "world_size": info.world_size,
        "epochs": recipe.epochs,
        "image_size": recipe.image_size,
        "batch_size": recipe.batch_size,
        "final_metrics": history[-1],
        "best_metrics": history[selected - 1],
    }
