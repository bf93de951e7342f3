"""Safe checkpoint I/O shared by every stage.

* Every load goes through :func:`safe_load`: ``torch.load(..., weights_only=True)``. A file that carries
  pickled code is refused with an :class:`AclnetError`; the code is never run.
* Every save goes through :func:`atomic_save`: a temp file in the same folder, then ``os.replace``, so a
  run killed at any moment leaves either the old file or the new one, never half a file.

Checkpoint format written by ``aclnet train`` (a plain dict of tensors and primitive types)::

    {
      "format": "aclnet-kd/1",
      "model_name": "aclnet_s",            # a name known to aclnet_kd.models.build_model
      "model_cfg": {...},                  # kwargs for build_model (backbone, ...); never a pretrained path
      "state_dict": {...},                 # the model's state_dict
      "meta": {...},                       # role, kd settings, selection protocol, epoch, seed, dataset, ...
      "train_state": {...},                # last.pt only: optimizer, scheduler, RNG, loader state, epoch
    }
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch

from aclnet_kd.errors import AclnetError

FORMAT = "aclnet-kd/1"


def safe_load(path: str | os.PathLike) -> Any:
    """Load a torch file with ``weights_only=True`` on the CPU, with clear errors naming ``path``."""
    path = Path(path)
    if not path.is_file():
        raise AclnetError(f"{path}: no such checkpoint file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise AclnetError(
            f"{path}: refused to load: the file is not a plain weights file (it carries pickled objects or "
            f"code, which weights_only=True does not run). Details: {str(err).splitlines()[0]}"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise AclnetError(f"{path}: not a readable torch checkpoint ({str(err).splitlines()[0]})") from None


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temp file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_model_checkpoint(path: str | os.PathLike) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Build the model a training checkpoint names and load its weights (strict). Returns (model, meta)."""
    ckpt = safe_load(path)
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "model_name" not in ckpt:
        raise AclnetError(
            f"{path}: not an aclnet-kd training checkpoint (expected keys 'model_name', 'model_cfg', "
            f"'state_dict'; found {sorted(ckpt)[:8] if isinstance(ckpt, dict) else type(ckpt).__name__})"
        )
    from aclnet_kd.models import build_model  # late import: models pull in timm

    cfg = dict(ckpt.get("model_cfg") or {})
    cfg["pretrained"] = None  # the checkpoint already holds every weight
    model = build_model(ckpt["model_name"], **cfg)
    result = model.load_state_dict(ckpt["state_dict"], strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise AclnetError(
            f"{path}: weights do not match model {ckpt['model_name']!r}: "
            f"missing {result.missing_keys[:10]}, unexpected {result.unexpected_keys[:10]}"
        )
    return model, dict(ckpt.get("meta") or {})
