"""Load a plain ``torch.save(model.state_dict())`` file, the format the authors' release saves its weights in
(``train_RGBT.py`` / ``train_RGBT_KD_2.py`` save ``net.state_dict()``; a ``DataParallel`` run prefixes every
key with ``module.``; the backbones keep their unused ImageNet classifier, ``rgb.head.*``).

A plain state_dict does not say which model it holds, so the caller names it (``aclnet predict --arch
teacher|student`` builds the ``models.<arch>`` entry of the params). The keys are then cleaned (``module.``
stripped, unused ``head.*`` dropped) and loaded strictly. A mismatch lists the missing and unexpected keys
and names the likely cause: another prefix, another backbone variant (a Shunted-B file for a Shunted-T model),
a teacher file given as a student or the reverse.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from typing import Any

from torch import Tensor, nn

from aclnet_kd.constants import ROLES
from aclnet_kd.errors import AclnetError
from aclnet_kd.io import safe_load

ARCHS = ROLES  # params models.<arch>
DP_PREFIX = "module."  # what torch.nn.DataParallel / DistributedDataParallel put before every key
HEAD = re.compile(r"^(rgb|depth)\.head\.")  # a backbone's ImageNet classifier: unused by ACLNet
BLOCK = re.compile(r"^(?:rgb|depth)\.block(\d)\.(\d+)\.")  # stage i, block j of a Shunted backbone
DEPTH_STREAM = "depth."  # only the RGB-D teacher has a depth backbone
LISTED = 10  # keys named per list in a mismatch message


def read_state_dict(path: str | os.PathLike) -> dict[str, Tensor]:
    """The tensors of a weights file: a plain state_dict, or one held under ``state_dict`` (our training
    checkpoints, and a common wrapping elsewhere). A truncated or corrupt file is refused, naming it."""
    import torch

    obj = safe_load(path)  # refuses pickled code, and a truncated or corrupt file, naming the path
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj:
        raise AclnetError(f"{path}: not a state_dict (expected a mapping of parameter names to tensors, "
                          f"found {type(obj).__name__}{' (empty)' if isinstance(obj, dict) else ''})")
    bad = [str(k) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise AclnetError(f"{path}: not a state_dict: entries that are not named tensors: {bad[:LISTED]}")
    return obj


def clean_keys(state: dict[str, Tensor], wanted: set[str]) -> tuple[dict[str, Tensor], list[str]]:
    """``state`` with a ``module.`` prefix stripped and the backbone heads the model lacks dropped; also
    returns what was done, in words (for the log)."""
    done = []
    if state and all(key.startswith(DP_PREFIX) for key in state):
        state = {key[len(DP_PREFIX):]: value for key, value in state.items()}
        done.append(f"stripped the '{DP_PREFIX}' prefix (a DataParallel checkpoint)")
    heads = [key for key in state if HEAD.match(key) and key not in wanted]
    if heads:
        state = {key: value for key, value in state.items() if key not in heads}
        done.append(f"dropped the backbone's unused classifier ({', '.join(heads)})")
    return state, done


def stage_depths(keys) -> tuple[int, ...]:
    """Blocks per stage of the first Shunted backbone in ``keys`` (e.g. (1, 2, 4, 1) for Shunted-T)."""
    blocks: dict[int, set[int]] = {}
    for key in keys:
        match = BLOCK.match(key)
        if match and key.startswith("rgb."):
            blocks.setdefault(int(match.group(1)), set()).add(int(match.group(2)))
    return tuple(len(blocks[i]) for i in sorted(blocks))


def _variant_name(depths: tuple[int, ...]) -> str:
    from aclnet_kd.models.shunted import SHUNTED_VARIANTS

    names = [name for name, (variant_depths, _) in SHUNTED_VARIANTS.items() if tuple(variant_depths) == depths]
    return names[0] if names else "an unknown variant"


def _common_prefix(keys: list[str], wanted: set[str]) -> str | None:
    """A leading ``word.`` on every key whose removal makes the keys match the model's (e.g. ``model.``)."""
    firsts = Counter(key.split(".", 1)[0] for key in keys)
    if len(firsts) != 1:
        return None
    prefix = next(iter(firsts)) + "."
    stripped = {key[len(prefix):] for key in keys}
    return prefix if len(stripped & wanted) > len(set(keys) & wanted) else None


def likely_causes(keys: list[str], model: nn.Module, arch: str) -> list[str]:
    """Why a file's keys may not fit ``model`` (the ``models.<arch>`` entry), in words."""
    wanted = set(model.state_dict())
    causes = []
    prefix = _common_prefix(keys, wanted)
    if prefix:
        causes.append(f"every key starts with '{prefix}': the file was saved from a wrapper of the model; "
                      f"only the '{DP_PREFIX}' prefix is stripped automatically")
    has_depth = any(key.startswith(DEPTH_STREAM) for key in keys)
    if has_depth and not model.is_rgbd:
        causes.append("the file has a depth backbone (depth.*): it is an RGB-D teacher (ACLNet-T) file given "
                      "as the student; use --arch teacher")
    elif not has_depth and model.is_rgbd and any(key.startswith("rgb.") for key in keys):
        causes.append("the file has no depth backbone (depth.*): it is an RGB-only student (ACLNet-S) file "
                      "given as the teacher; use --arch student")
    file_depths, model_depths = stage_depths(keys), stage_depths(wanted)
    if file_depths and file_depths != model_depths:
        causes.append(f"the file's backbone has {file_depths} blocks per stage ({_variant_name(file_depths)}), "
                      f"the model built from models.{arch} has {model_depths} ({_variant_name(model_depths)}): "
                      f"set models.{arch}.backbone to {_variant_name(file_depths)}")
    return causes


def mismatch_message(path: Any, state: dict[str, Tensor], model: nn.Module, arch: str) -> str | None:
    """None when ``state`` fits ``model`` key for key and shape for shape; else the error text."""
    wanted = model.state_dict()
    missing = sorted(set(wanted) - set(state))
    unexpected = sorted(set(state) - set(wanted))
    shapes = sorted(f"{key} {tuple(state[key].shape)} vs {tuple(wanted[key].shape)}"
                    for key in set(state) & set(wanted) if state[key].shape != wanted[key].shape)
    if not (missing or unexpected or shapes):
        return None
    parts = [f"{path}: the weights do not fit models.{arch} ({type(model).__name__})"]
    for what, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape (file vs model)", shapes)):
        if keys:
            parts.append(f"{len(keys)} {what}: {', '.join(keys[:LISTED])}{' ...' if len(keys) > LISTED else ''}")
    causes = likely_causes(list(state), model, arch)
    parts.append("likely cause: " + "; ".join(causes) if causes else
                 "no known cause recognised (is it a model of this paper?)")
    return ". ".join(parts)


def load_state_dict_file(path: str | os.PathLike, model: nn.Module, arch: str) -> list[str]:
    """Load the plain state_dict at ``path`` into ``model`` strictly (after :func:`clean_keys`); returns what
    was cleaned, in words. Any mismatch is an :class:`AclnetError` naming the file, the keys and the cause."""
    state, done = clean_keys(read_state_dict(path), set(model.state_dict()))
    problem = mismatch_message(path, state, model, arch)
    if problem:
        raise AclnetError(problem)
    model.load_state_dict(state, strict=True)
    return done


def build_from_params(params: dict, arch: str) -> nn.Module:
    """The model of params ``models.<arch>`` (``teacher`` or ``student``), without ImageNet weights (the
    file holds every weight)."""
    from aclnet_kd.config import section
    from aclnet_kd.models import build_model

    cfg = dict(section(params, f"models.{arch}"))
    name = cfg.pop("name")
    cfg["pretrained"] = None
    return build_model(name, **cfg)
