"""What a run trains and how one optimizer step goes: the :class:`Training` (model, losses, optimizer,
schedule, and the compiled / DDP-wrapped modules a step runs), built complete by :func:`build_training`, and
:func:`train_step`.

    training = build_training(recipe, info, teacher_checkpoint)  # the teacher's best.pt: distillation only
    values = train_step(training, batch)               # {"label": ..., [KD terms], "loss": ...}
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from aclnet_kd.errors import AclnetError
from aclnet_kd.losses.distillation import DistillationLoss
from aclnet_kd.losses.label import LabelLoss
from aclnet_kd.losses.registry import KD_TERMS
from aclnet_kd.models.build import build_model
from aclnet_kd.models.loading import load_model_checkpoint
from aclnet_kd.train.distributed import DistInfo, all_reduce_sum
from aclnet_kd.train.precision import autocast, make_grad_scaler, to_memory_format
from aclnet_kd.train.recipe import Recipe


class NonFiniteLossError(AclnetError):
    """A loss term became NaN or infinite: the run stops instead of training on garbage."""


# ------------------------------------------------------------------------------------------ the teacher


def prepare_teacher(teacher: torch.nn.Module, device: torch.device, channels_last: bool) -> torch.nn.Module:
    """Freeze a teacher: eval mode, no parameter requires grad, on ``device`` in the run's memory format."""
    return _placed(teacher.requires_grad_(False).eval(), device, channels_last)


def load_teacher(path: str | os.PathLike, device: torch.device, channels_last: bool) -> torch.nn.Module:
    """The frozen teacher of a checkpoint (loaded with weights_only; see :func:`prepare_teacher`)."""
    teacher, meta = load_model_checkpoint(path)
    if not getattr(teacher, "is_rgbd", False):
        raise AclnetError(f"--teacher {path}: holds an RGB-only model ({meta.get('role', '?')}); "
                          "distillation needs the RGB-D teacher (aclnet_t)")
    return prepare_teacher(teacher, device, channels_last)


# ---------------------------------------------------------------------------------------- the training


@dataclass
class Training:
    """The modules of one run and their optimizer. ``model`` and ``kd_loss`` are what checkpoints hold;
    ``step_model`` and ``step_kd_loss`` are the same modules compiled and/or DDP-wrapped (or themselves),
    which :func:`train_step` runs."""

    recipe: Recipe
    info: DistInfo
    model: torch.nn.Module
    label_loss: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: Any  # torch.amp.GradScaler for fp16, else None
    teacher: torch.nn.Module | None
    kd_loss: torch.nn.Module | None
    kd_params: list  # the KD modules' parameters the optimizer steps
    sync_bn: bool
    step_model: torch.nn.Module
    step_kd_loss: torch.nn.Module | None

    @property
    def is_rgbd(self) -> bool:
        return self.recipe.role == "teacher"

    @property
    def needs_depth(self) -> bool:
        return self.is_rgbd or self.recipe.kd  # the student itself never receives depth


def build_training(recipe: Recipe, info: DistInfo, teacher_checkpoint: str | os.PathLike | None = None,
                   teacher: torch.nn.Module | None = None) -> Training:
    """Model, frozen teacher (from ``teacher_checkpoint``, or an already frozen ``teacher``; distillation
    only), label and KD losses, optimizer, the release's step schedule, and the wrapped modules a step runs.
    The student is built before the teacher is loaded: that order fixes the student's random init."""
    model = build_model(recipe.model_name, **recipe.model_cfg)
    if model.is_rgbd != (recipe.role == "teacher"):
        raise AclnetError(f"params: 'models.{recipe.role}.name' {recipe.model_name!r} is "
                          f"{'an RGB-D' if model.is_rgbd else 'an RGB-only'} model, wrong for --role {recipe.role}")
    # Batch statistics over the global batch, as in a single-process run, for the model and (below) the KD
    # modules. torch's SyncBatchNorm runs on CUDA only: under gloo on CPU each rank normalises its own images.
    sync_bn = info.enabled and info.device.type == "cuda"
    model = _placed(torch.nn.SyncBatchNorm.convert_sync_batchnorm(model) if sync_bn else model, info.device,
                    recipe.channels_last)
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
    step_model, step_kd_loss = _wrapped(model, kd_loss, bool(kd_params), recipe, info)
    return Training(recipe, info, model, label_loss, optimizer, scheduler,
                    make_grad_scaler(recipe.precision, info.device), teacher, kd_loss, kd_params, sync_bn,
                    step_model, step_kd_loss)


def _placed(module: torch.nn.Module, device: torch.device, channels_last: bool) -> torch.nn.Module:
    """``module`` on ``device``, in the run's memory format."""
    module = module.to(device)
    return module.to(memory_format=torch.channels_last) if channels_last else module


def _wrapped(model: torch.nn.Module, kd_loss: torch.nn.Module | None, kd_trained: bool, recipe: Recipe,
             info: DistInfo) -> tuple[torch.nn.Module, torch.nn.Module | None]:
    """Wrapped for speed (``compile``) and for ranks (DDP). The wrappers share the modules' parameters, so
    loading a checkpoint into ``model`` afterwards is seen by them."""
    if recipe.compile:
        model = torch.compile(model)
    if info.enabled:
        device_ids = [info.device.index] if info.device.type == "cuda" else None
        model = DistributedDataParallel(model, device_ids=device_ids)
        if kd_trained:
            kd_loss = DistributedDataParallel(kd_loss, device_ids=device_ids)
    return model, kd_loss


# -------------------------------------------------------------------------------------------- one step


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


def train_step(training: Training, batch: dict[str, torch.Tensor]) -> dict[str, float]:
    """One optimizer step on a normalised batch on the device -> the global mean of each weighted loss term
    and their sum ``loss``. A non-finite term raises :class:`NonFiniteLossError` before the step."""
    recipe, info, optimizer, scaler = training.recipe, training.info, training.optimizer, training.scaler
    rgb = to_memory_format(batch["rgb"], recipe.channels_last)
    depth = to_memory_format(batch["depth"], recipe.channels_last) if training.needs_depth else None
    with autocast(recipe.precision, info.device):  # forward: the losses as a dict of named, weighted terms
        terms = forward_losses(training.step_model, training.is_rgbd, rgb, depth, batch["gt"],
                               training.label_loss, recipe.label_weight, training.teacher, training.step_kd_loss)
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


def clip_gradients(optimizer: torch.optim.Optimizer, clip: float) -> None:
    """Clamp every gradient element to [-clip, clip] (0: nothing). The release's SOD config sets
    ``clip 0.5``; its lineage (BBS-Net's ``clip_gradient``) clamps values, not the norm."""
    if clip:
        for group in optimizer.param_groups:
            torch.nn.utils.clip_grad_value_(group["params"], clip)
