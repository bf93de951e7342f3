"""Resolve a training recipe from params: which keys exist, what they mean, and their checks.

    recipe = params `train`  <- `train.<role>`  <- `tracks.<track>.train`  <- `tracks.<track>.train.<role>`
             + params `models.<role>` (build_model name and cfg) + params `kd` (distilled student only)
             + CLI: --seed, --kd, --kd-weights

Every key is required in the merged `train` section (params.yaml is the single source of truth); an unknown
key, a missing key or a value of the wrong type raises :class:`AclnetError` naming the key.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from aclnet_kd.config import deep_merge, section
from aclnet_kd.errors import AclnetError

ROLES = ("teacher", "student")
SELECTIONS = ("best_val", "last", "paper")
PRECISIONS = ("fp32", "bf16", "fp16")
KD_WEIGHT_KEYS = ("label", "cld", "mgmd", "atd")


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _non_negative_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _one_of(*choices: Any) -> Callable[[Any], bool]:
    return lambda value: value in choices


# key -> (check, what the check wants). Role subsections `teacher` / `student` are handled separately.
TRAIN_KEYS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "image_size": (lambda v: _positive_int(v) and v % 32 == 0, "a positive multiple of 32"),
    "batch_size": (_positive_int, "a positive integer (the global batch, split over DDP ranks)"),
    "epochs": (_positive_int, "a positive integer"),
    "optimizer": (_one_of("adam", "adamw"), "adam or adamw"),
    "lr": (lambda v: _number(v) and v > 0, "a number > 0"),
    "weight_decay": (lambda v: _number(v) and v >= 0, "a number >= 0"),
    "lr_step": (_positive_int, "a positive integer (epochs)"),
    "lr_gamma": (lambda v: _number(v) and 0 < v <= 1, "a number in (0, 1]"),
    "grad_clip": (lambda v: _number(v) and v >= 0, "a number >= 0 (0 = no clipping)"),
    "label_bce": (_one_of("batch_sum", "mean"), "batch_sum (the release) or mean"),
    "selection": (_one_of(*SELECTIONS), " | ".join(SELECTIONS)),
    "val_split": (lambda v: isinstance(v, str) and v != "", "a split name of the prepared dataset"),
    "precision": (_one_of(*PRECISIONS), " | ".join(PRECISIONS)),
    "channels_last": (lambda v: isinstance(v, bool), "true or false"),
    "compile": (lambda v: isinstance(v, bool), "true or false"),
    "deterministic": (lambda v: isinstance(v, bool), "true or false"),
    "device": (_one_of("auto", "cpu", "cuda"), "auto | cpu | cuda"),
    "num_workers": (_non_negative_int, "an integer >= 0"),
    "checkpoint_every": (_non_negative_int, "an integer >= 0 (optimizer steps; 0 = at each epoch end only)"),
}
KD_KEYS = ("weights", "tau", "train_kd_modules", "atd_teacher_fix")


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
    # kd section: read for the distilled student only (None otherwise), so a KD setting never
    # invalidates the teacher or the plain student in the workflow's params tracking.
    kd_weights: dict[str, float] | None = None
    kd_tau: float | None = None
    train_kd_modules: bool | None = None
    atd_teacher_fix: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(asdict(self))

    @property
    def label_weight(self) -> float:
        return float(self.kd_weights.get("label", 1.0)) if self.kd else 1.0

    def lr_factor(self, epoch: int) -> float:
        """The release's schedule: before epoch ``e`` (0-based) runs, lr was halved once per
        ``(e' + 1) % lr_step == 0`` for e' <= e, i.e. factor gamma ** ((e + 1) // lr_step)."""
        return self.lr_gamma ** ((epoch + 1) // self.lr_step)


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


def _merged_train_section(params: dict, role: str, track: str | None) -> dict[str, Any]:
    train = section(params, "train")
    if not isinstance(train, dict):
        raise AclnetError("params: key 'train' must be a mapping")
    layers = [("train", train)]
    if track is not None:
        track_section = section(params, f"tracks.{track}")
        if isinstance(track_section, dict) and isinstance(track_section.get("train"), dict):
            layers.append((f"tracks.{track}.train", track_section["train"]))
    merged: dict[str, Any] = {}
    for name, layer in layers:
        for key in layer:
            if key not in TRAIN_KEYS and key not in ROLES:
                raise AclnetError(f"params: unknown key '{name}.{key}'; known keys: {sorted(TRAIN_KEYS)}")
        base = {k: v for k, v in layer.items() if k not in ROLES}
        role_override = layer.get(role) or {}
        if not isinstance(role_override, dict):
            raise AclnetError(f"params: key '{name}.{role}' must be a mapping")
        for key in role_override:
            if key not in TRAIN_KEYS:
                raise AclnetError(f"params: unknown key '{name}.{role}.{key}'; known keys: {sorted(TRAIN_KEYS)}")
        merged = deep_merge(merged, deep_merge(base, role_override))
    return merged


def _check_train(merged: dict[str, Any]) -> None:
    for key, (check, wanted) in TRAIN_KEYS.items():
        if key not in merged:
            raise AclnetError(f"params: missing key 'train.{key}' ({wanted})")
        value = merged[key]
        if not check(value):
            hint = ""
            if isinstance(value, str) and value.replace(".", "", 1).replace("e-", "", 1).isdigit():
                hint = " (YAML reads 1e-4 as text: write 1.0e-4)"
            raise AclnetError(f"params: 'train.{key}' must be {wanted}, got {value!r}{hint}")


def _kd_settings(params: dict, kd_weights_override: dict[str, float] | None) -> dict[str, Any]:
    kd = section(params, "kd")
    if not isinstance(kd, dict):
        raise AclnetError("params: key 'kd' must be a mapping")
    for key in kd:
        if key not in KD_KEYS:
            raise AclnetError(f"params: unknown key 'kd.{key}'; known keys: {list(KD_KEYS)}")
    weights = section(params, "kd.weights")
    if not isinstance(weights, dict):
        raise AclnetError("params: key 'kd.weights' must be a mapping")
    weights = dict(weights, **(kd_weights_override or {}))
    for key, value in weights.items():
        if key not in KD_WEIGHT_KEYS:
            raise AclnetError(f"params: unknown key 'kd.weights.{key}'; known keys: {list(KD_WEIGHT_KEYS)}")
        if not _number(value) or value < 0:
            raise AclnetError(f"params: 'kd.weights.{key}' must be a number >= 0, got {value!r}")
    tau = section(params, "kd.tau")
    if not _number(tau) or tau <= 0:
        raise AclnetError(f"params: 'kd.tau' must be a number > 0, got {tau!r}")
    switches = {}
    for key in ("train_kd_modules", "atd_teacher_fix"):
        value = section(params, f"kd.{key}")
        if not isinstance(value, bool):
            raise AclnetError(f"params: 'kd.{key}' must be true or false, got {value!r}")
        switches[key] = value
    return {
        "kd_weights": {k: float(weights.get(k, 0.0)) for k in KD_WEIGHT_KEYS},
        "kd_tau": float(tau),
        **switches,
    }


def _model_settings(params: dict, role: str) -> tuple[str, dict[str, Any]]:
    model = section(params, f"models.{role}")
    if not isinstance(model, dict) or not isinstance(model.get("name"), str):
        raise AclnetError(f"params: 'models.{role}' must be a mapping with a 'name' (aclnet_t / aclnet_s)")
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
    _check_train(train)
    model_name, model_cfg = _model_settings(params, role)
    kd_settings = _kd_settings(params, kd_weights_override) if kd else {}
    return Recipe(
        role=role, kd=kd, seed=int(seed), track=track, model_name=model_name, model_cfg=model_cfg,
        **{key: train[key] for key in TRAIN_KEYS}, **kd_settings,
    )
