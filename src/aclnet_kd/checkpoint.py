"""The checkpoint format, and its safe I/O (re-exported from :mod:`aclnet_kd.io`).

A trained model is rebuilt from its checkpoint by :func:`aclnet_kd.models.load_model_checkpoint`.

* Every load goes through :func:`safe_load` (in :mod:`aclnet_kd.io`): ``torch.load(..., weights_only=True)``.
  A file that carries pickled code is refused with an :class:`AclnetError`; the code is never run.
* Every save goes through :func:`atomic_save`: a temp file in the same folder, then ``os.replace``, so a
  run killed at any moment leaves either the old file or the new one, never half a file.

Checkpoint format written by ``aclnet train`` (a plain dict of tensors and primitive types)::

    {
      "format": "aclnet-kd/1",
      "model_name": "aclnet_s",            # a name known to aclnet_kd.models.build_model
      "model_cfg": {...},                  # kwargs for build_model (backbone, ...); never a pretrained path
      "state_dict": {...},                 # the model's state_dict
      "meta": {...},                       # the run's RunRecord (aclnet_kd.train.record), as in run.json
      "train_state": {...},                # last.pt only: optimizer, scheduler, RNG, loader state, epoch
    }

A finished run's last.pt keeps ``format``, ``meta`` and a ``train_state`` of ``epoch``, ``batch``, ``finished``,
``history`` and ``fingerprint`` only: no weights (they are in best.pt) and no resume state.
"""

from __future__ import annotations

from aclnet_kd.io import atomic_save, safe_load

__all__ = ["FORMAT", "atomic_save", "safe_load"]

FORMAT = "aclnet-kd/1"
