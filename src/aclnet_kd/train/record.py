"""RunRecord: the facts of one training run, written once and read back under the same names.

``aclnet train`` builds one record per run (and per epoch while it runs) and writes it as ``run.json`` and as
the ``meta`` of ``best.pt`` / ``last.pt``. ``predict`` / ``export`` read ``meta["image_size"]``, the tables
and figures read run.json through :meth:`RunRecord.read`. No torch here: the report imports it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from typing import Any

from aclnet_kd.errors import AclnetError
from aclnet_kd.io import read_json

OPTIONAL = ("converged", "plateau", "seconds_per_epoch", "kd_params", "provenance", "operating_point")  # judged at the end of training; records of unfinished runs may lack them


@dataclass
class RunRecord:
    """What was trained, how, on what, and what was kept (run.json; the checkpoints' ``meta``)."""

    role: str  # teacher | student
    kd: bool  # a distilled student
    kd_weights: dict[str, float] | None  # the KD settings: the distilled student only (None otherwise)
    kd_tau: float | None
    train_kd_modules: bool | None
    atd_teacher_fix: bool | None
    teacher_checkpoint: str | None
    model: dict[str, Any]  # {"name": build_model name, "cfg": its config}
    dataset: str  # the prepared dataset's name
    synthetic: bool
    data_dir: str
    train_images: dict[str, Any]  # {"splits": [...], "count": n}: what the run trained on
    track: str | None
    selection: dict[str, Any]  # protocol, metric, splits, test_set_selection, note, ties
    selected_epoch: int | None  # 1-based epoch of best.pt (so far in a running run's last.pt; None before one)
    epochs_done: int  # epochs finished when this record was written
    seed: int
    device: str
    precision: str
    world_size: int
    epochs: int
    image_size: int  # the network input side (predict and export default to it)
    batch_size: int
    final_metrics: dict[str, float] | None  # the last finished epoch's log (None before one)
    best_metrics: dict[str, float] | None  # the selected epoch's log
    converged: bool | None = None  # the plateau rule (train/convergence.py); None: not judged
    plateau: dict[str, Any] | None = None  # the rule's figures, or {"reason": why it was not judged}
    seconds_per_epoch: float | None = None  # mean wall time of an epoch's training steps (None: older record)
    kd_params: int | None = None  # parameters of the KD modules the optimizer steps (e.g. FitNet's adapters)
    provenance: dict[str, Any] | None = None  # commit, package versions, CPU/GPU (aclnet_kd.provenance)
    # the detector's threshold, chosen on the validation split once training is done (train/operating_point.py):
    # {threshold (0-1 sigmoid scale), level, rule, precision, recall, ..., min_area}; None: not chosen yet
    operating_point: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "run record") -> RunRecord:
        names = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.name not in OPTIONAL}
        missing, unknown = sorted(required - set(data)), sorted(set(data) - names)
        if missing or unknown:
            raise AclnetError(f"{source}: not an aclnet-kd run record (missing {missing}, unknown {unknown}); "
                              "rerun `aclnet train` with this version")
        return cls(**data)

    @classmethod
    def read(cls, path: str | os.PathLike) -> RunRecord:
        data = read_json(path)
        return cls.from_dict(data, str(path))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"
