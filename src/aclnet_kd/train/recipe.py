"""Resolve a training recipe from params: which keys exist, what they mean, and their checks.

    recipe = params `train`  <- `train.<role>`  <- `tracks.<track>.train`  <- `tracks.<track>.train.<role>`
             + params `models.<role>` (build_model name and cfg) + params `kd` (distilled student only)
             + CLI: --seed, --kd, --kd-weights

The params are validated when they are loaded (config.load_params: the schema names any unknown, missing or
wrongly typed key); this module merges them and checks what the schema cannot see (role / --kd / track).
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from typing import Any

from aclnet_kd.config import deep_merge, section
from aclnet_kd.constants import ROLES
from aclnet_kd.errors import AclnetError
from aclnet_kd.losses.registry import LABEL
from aclnet_kd.losses.registry import WEIGHT_KEYS as KD_WEIGHT_KEYS



# The `train` keys a recipe carries. Their types and ranges are checked once, when the params are loaded
# (config.load_params against workflow/schemas/params.schema.yaml), not again here.
TRAIN_KEYS = ("image_size", "batch_size", "epochs", "optimizer", "lr", "weight_decay", "lr_schedule",
              "warmup_epochs", "lr_step", "lr_gamma", "grad_clip", "label_bce", "selection", "val_split", "precision", "channels_last", "compile",
              "deterministic", "device", "num_workers", "checkpoint_every", "checkpoint_every_s")


@dataclass
class Recipe:
    """Everything one training run needs, resolved and checked. ``asdict(recipe)`` is config.yaml."""

    role: str
    kd: bool
    seed: int
    track: str | None
    model_name: str
    model_cfg: dict[str, Any]
    # train section
    image_size: int
    batch_size: int
    epochs: int
    optimizer: str
    lr: float
    weight_decay: float
    lr_schedule: str
    warmup_epochs: int
    lr_step: int
    lr_gamma: float
    grad_clip: float
    label_bce: str
    selection: str
    val_split: str
    precision: str
    channels_last: bool
    compile: bool
    deterministic: bool
    device: str
    num_workers: int
    checkpoint_every: int
    checkpoint_every_s: float
    # kd section: read for the distilled student only (None otherwise), so a KD setting never
    # invalidates the teacher or the plain student in the workflow's params tracking.
    kd_weights: dict[str, float] | None = None
    kd_tau: float | None = None
    train_kd_modules: bool | None = None
    atd_teacher_fix: bool | None = None
    kd_options: dict[str, Any] | None = None  # kd.options: builder options of the classic KD terms

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(asdict(self))

    @property
    def label_weight(self) -> float:
        return float(self.kd_weights.get("label", 1.0)) if self.kd else 1.0

    def lr_factor(self, epoch: int) -> float:
        """Multiplier of ``lr`` while epoch ``epoch`` (0-based) runs (the loop drives LambdaLR with it)."""
        return lr_factor(self.lr_schedule, epoch, self.epochs, self.warmup_epochs, self.lr_step, self.lr_gamma)


def lr_factor(schedule: str, epoch: int, epochs: int, warmup_epochs: int = 0, lr_step: int = 1,
              lr_gamma: float = 1.0) -> float:
    """The lr multiplier of one epoch (0-based) under ``schedule``.

    ``step`` (the release): lr x gamma before every epoch e with (e + 1) % lr_step == 0, i.e. the factor is
    gamma ** ((epoch + 1) // lr_step). ``cosine`` (the demo; the habit when training from scratch): a linear
    warm-up over ``warmup_epochs`` (epoch k runs at (k + 1) / (warmup + 1), so no epoch runs at lr 0), then a
    half cosine from 1 down to 0 over the remaining epochs, evaluated at the epoch's start so the last epoch
    still learns. Warm-up is part of the cosine schedule only; ``step`` ignores it (the release has none).
    """
    if schedule == "step":
        return lr_gamma ** ((epoch + 1) // lr_step)
    if schedule != "cosine":
        raise AclnetError(f"train.lr_schedule: {schedule!r} is not one of ['step', 'cosine']")
    if epoch < warmup_epochs:
        return (epoch + 1) / (warmup_epochs + 1)
    decay_epochs = max(1, epochs - warmup_epochs)
    progress = min(1.0, (epoch - warmup_epochs) / decay_epochs)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def parse_kd_weights(text: str) -> dict[str, float]:
    """``"cld=1,mgmd=0,atd=0"`` -> ``{"cld": 1.0, "mgmd": 0.0, "atd": 0.0}`` (the --kd-weights flag)."""
    weights: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in KD_WEIGHT_KEYS:
            raise AclnetError(f"--kd-weights: {item!r} is not NAME=VALUE with NAME in {list(KD_WEIGHT_KEYS)}")
        try:
            weights[name] = float(value)
        except ValueError:
            raise AclnetError(f"--kd-weights: {name}={value!r} is not a number") from None
        if not weights[name] >= 0:
            raise AclnetError(f"--kd-weights: {name} must be >= 0, got {value}")
    if not weights:
        raise AclnetError("--kd-weights: empty; expected e.g. cld=1,mgmd=0,atd=0")
    return weights


def kd_method_weights(params: dict, run: str) -> dict[str, float]:
    """The full weights of the KD-method run ``run`` (params ``kd_methods.<run>``): a term it does not name
    is off (0), the label loss keeps weight 1 unless named; kd.weights is not merged in (unlike
    ``--kd-weights``), so a method is exactly what its entry says."""
    methods = params.get("kd_methods") or {}
    if run not in methods:
        raise AclnetError(f"--kd-method: {run!r} is not a key of params 'kd_methods' (known: {list(methods)})")
    weights = methods[run]
    return {name: float(weights.get(name, 1.0 if name == LABEL else 0.0)) for name in KD_WEIGHT_KEYS}


def _merged_train_section(params: dict, role: str, track: str | None) -> dict[str, Any]:
    layers = [section(params, "train")]
    if track is not None:
        layers.append(section(params, f"tracks.{track}").get("train") or {})
    merged: dict[str, Any] = {}
    for layer in layers:
        base = {k: v for k, v in layer.items() if k not in ROLES}
        merged = deep_merge(merged, deep_merge(base, layer.get(role) or {}))
    return merged


def _kd_settings(params: dict, kd_weights_override: dict[str, float] | None) -> dict[str, Any]:
    weights = dict(section(params, "kd.weights"), **(kd_weights_override or {}))
    return {
        "kd_weights": {k: float(weights.get(k, 0.0)) for k in KD_WEIGHT_KEYS},
        "kd_tau": float(section(params, "kd.tau")),
        **{key: section(params, f"kd.{key}") for key in ("train_kd_modules", "atd_teacher_fix")},
        "kd_options": dict(section(params, "kd").get("options") or {}),
    }


def _model_settings(params: dict, role: str) -> tuple[str, dict[str, Any]]:
    model = section(params, f"models.{role}")
    cfg = {k: v for k, v in model.items() if k != "name"}
    return model["name"], cfg


def resolve_recipe(
    params: dict,
    role: str,
    kd: bool = False,
    seed: int = 0,
    track: str | None = None,
    kd_weights_override: dict[str, float] | None = None,
) -> Recipe:
    """Merge and check the params for one run (see the module docstring for the merge order)."""
    if role not in ROLES:
        raise AclnetError(f"--role must be one of {list(ROLES)}, got {role!r}")
    if kd and role != "student":
        raise AclnetError("--kd on is for --role student (the teacher is what the student distils from)")
    if kd_weights_override and not kd:
        raise AclnetError("--kd-weights needs --kd on")
    train = _merged_train_section(params, role, track)
    model_name, model_cfg = _model_settings(params, role)
    kd_settings = _kd_settings(params, kd_weights_override) if kd else {}
    return Recipe(
        role=role, kd=kd, seed=int(seed), track=track, model_name=model_name, model_cfg=model_cfg,
        **{key: train[key] for key in TRAIN_KEYS}, **kd_settings,
    )
