"""Finding and reading the pipeline's results for the report (tables and figures).

Layout (docs/architecture.md)::

    results/train/<track>/<run>/seed<k>/run.json                   how the run was trained and selected
    results/evaluate/<track>/<run>/seed<k>/<split>/metrics.json    flat metrics of one test split
    results/evaluate/<track>/<run>/seed<k>/<split>/curves.csv      dataset-mean PR / F / E curves
    results/evaluate/<track>/<run>/seed<k>/<split>/per_image.csv   per-image metrics
    results/complexity/<model_name>.json                           params and MACs at 256 x 256
    results/latency/<model_name>.json                              ms/image at 256 x 256, batch 1, this CPU
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aclnet_kd.config import section
from aclnet_kd.errors import AclnetError
from aclnet_kd.io import read_json
from aclnet_kd.losses.registry import RELEASE_TERMS, ablation_title
from aclnet_kd.train.record import RunRecord
from aclnet_kd.workflow.plan import EVAL_ROOT, RUN_SUBDIR, SEED_DIR, TRAIN_ROOT
from aclnet_kd.workflow.runs import ABLATION, ABLATIONS, FIXED, SEEDED_RUNS, configured_runs, losses_title

# The KD-loss ablation table's rows, in table order (workflow/runs.py): the fixed runs without KD terms first
# (label only, ACLNet-S); the run kd_<term> for each of the release's terms (the label loss plus that one term,
# titled by the loss registry); any other run of params `ablations`, labelled by its --kd-weights value; the
# fixed runs with the release's terms last (ACLNet-S*).
_ABLATION_KINDS = [kind for kind in FIXED if ABLATION in kind.parts]
ABLATION_RUNS = {
    **{kind.name: f"{losses_title(kind)} ({kind.label})" for kind in _ABLATION_KINDS if not kind.terms},
    **{f"kd_{term}": ablation_title(term) for term in RELEASE_TERMS},
    **{kind.name: f"{losses_title(kind)} ({kind.label})" for kind in _ABLATION_KINDS if kind.terms},
}
_LAST = [kind.name for kind in _ABLATION_KINDS if kind.terms]


def ablation_runs(params: dict) -> dict[str, str]:
    """{run: row label} of the ablation table: label only, the paper's three, each configured ablation (in
    params order), all KD losses."""
    custom = {run: f"{run} ({weights})" for run, weights in configured_runs(params, ABLATIONS).items()
              if run not in ABLATION_RUNS}
    rows = {run: label for run, label in ABLATION_RUNS.items() if run not in _LAST}
    return {**rows, **custom, **{run: ABLATION_RUNS[run] for run in _LAST}}


@dataclass
class TrackSettings:
    name: str
    dataset: str
    splits: list[str]
    synthetic: bool  # from params: the dataset's source is a synthetic generator


def track_settings(params: dict, track: str) -> TrackSettings:
    dataset = section(params, f"tracks.{track}.dataset")
    splits = list(section(params, f"tracks.{track}.test_splits"))
    source = str(((params.get("datasets") or {}).get(dataset) or {}).get("source", ""))
    return TrackSettings(track, str(dataset), [str(s) for s in splits],
                         synthetic=source.startswith("synthetic"))


@dataclass
class RunResults:
    """Every seed of one run on one track: metrics per split and the training record per seed."""

    track: str
    run: str
    seeds: list[int]
    metrics: dict[str, list[dict[str, float]]]  # split -> one metrics.json per seed (seed order)
    eval_dirs: dict[int, Path]  # seed -> results/evaluate/<track>/<run>/seed<k>
    run_info: dict[int, RunRecord] = field(default_factory=dict)  # seed -> its run.json (may be empty)

    @property
    def n(self) -> int:
        return len(self.seeds)

    def values(self, split: str, key: str) -> np.ndarray:
        return np.array([m[key] for m in self.metrics[split]], dtype=np.float64)

    def mean_std(self, split: str, key: str) -> tuple[float, float]:
        """Mean and sample std (ddof = 1; NaN with a single seed) over seeds."""
        values = self.values(split, key)
        return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else float("nan")

    def provenance(self, settings: TrackSettings) -> dict[str, Any]:
        """Selection protocol, data and training facts of the run (RunRecord fields), the same for every seed
        or 'mixed'."""
        def common(values: list[Any], default: Any) -> Any:
            found = {json.dumps(value) for value in values}
            if not values:
                return default
            return json.loads(found.pop()) if len(found) == 1 else "mixed"

        records = list(self.run_info.values())
        selections = [r.selection["protocol"] + (" (selected on the test set)" if r.selection["test_set_selection"]
                                                 else "") for r in records]
        synthetic = common([r.synthetic for r in records], settings.synthetic)
        return {
            "selection": common(selections, "unknown (no run.json)"),
            "dataset": common([r.dataset for r in records], settings.dataset),
            "synthetic": synthetic if isinstance(synthetic, bool) else bool(settings.synthetic),
            "selected_epochs": [r.selected_epoch for r in records if r.selected_epoch is not None],
        }


def run_dir(root: Path, track: str, run: str, seed: int) -> Path:
    """``<root>/<track>/<run>/seed<k>`` (plan.RUN_SUBDIR)."""
    return Path(root) / RUN_SUBDIR.format(track=track, run=run, seed=seed)


def seed_dirs(root: Path, track: str, run: str) -> dict[int, Path]:
    folder = run_dir(root, track, run, 0).parent
    if not folder.is_dir():
        return {}
    found = {}
    for child in folder.iterdir():
        match = SEED_DIR.match(child.name)
        if match and match.group("seed").isdigit() and child.is_dir():
            found[int(match.group("seed"))] = child
    return dict(sorted(found.items()))


def collect_run(eval_root: Path, train_root: Path | None, track: str, run: str, splits: list[str],
                seeds: list[int] | None = None) -> RunResults | None:
    """The evaluated seeds of ``run`` (None if none was evaluated).

    With ``seeds`` (params ``seeds``) only those seeds count, and a run that has some of them but not all
    is an error naming the missing file: a silently smaller n would misstate the spread. A seed must
    have every split of the track.
    """
    found = seed_dirs(eval_root, track, run)
    if seeds is not None:
        wanted = [int(s) for s in seeds]
        present = [s for s in wanted if s in found]
        if not present:
            return None
        missing = [s for s in wanted if s not in found]
        if missing:
            raise AclnetError(
                f"{Path(eval_root) / track / run}: seeds {missing} of params 'seeds' {wanted} were not "
                f"evaluated (found {present}); finish them or set 'seeds' to what was run"
            )
        found = {s: found[s] for s in wanted}
    if not found:
        return None
    metrics: dict[str, list[dict[str, float]]] = {split: [] for split in splits}
    run_info: dict[int, RunRecord] = {}
    for seed, folder in found.items():
        for split in splits:
            data = read_json(folder / split / "metrics.json")
            for key in ("Sm", "MAE", "maxF", "maxE"):
                if not isinstance(data.get(key), (int, float)):
                    raise AclnetError(f"{folder / split / 'metrics.json'}: missing or non-numeric '{key}'")
            metrics[split].append({k: float(v) for k, v in data.items() if isinstance(v, (int, float))})
        if train_root is not None and (run_dir(train_root, track, run, seed) / "run.json").is_file():
            run_info[seed] = RunRecord.read(run_dir(train_root, track, run, seed) / "run.json")
    return RunResults(track, run, list(found), metrics, dict(found), run_info)


def collect_track(eval_root: Path, train_root: Path | None, settings: TrackSettings, runs: list[str],
                  seeds: list[int] | None = None) -> dict[str, RunResults]:
    """The evaluated runs of one track, in ``runs`` order; runs with no metrics are left out."""
    found = {}
    for run in runs:
        result = collect_run(eval_root, train_root, settings.name, run, settings.splits, seeds)
        if result is not None:
            found[run] = result
    return found


def collect_runs(eval_root: Path, train_root: Path | None, settings: TrackSettings, run_names: list[str],
                 seeds: list[int] | None) -> dict[str, RunResults]:
    """The evaluated runs of a track: the students at every seed, the teacher and the ablations at seeds[0]
    (the plan trains them once)."""
    first = None if seeds is None else list(seeds)[:1]
    students = collect_track(eval_root, train_root, settings, [r for r in run_names if r in SEEDED_RUNS], seeds)
    others = collect_track(eval_root, train_root, settings, [r for r in run_names if r not in SEEDED_RUNS], first)
    return {run: (students | others)[run] for run in run_names if run in students or run in others}


def read_measurement(folder: Path | None, model_name: str, numbers: tuple[str, ...],
                     texts: dict[str, str] | None = None) -> dict | None:
    """``<folder>/<model_name>.json``, a model's measurement (``aclnet complexity``, ``aclnet latency``), or None
    when it has not been measured. Each key of ``numbers`` must hold a number, each key of ``texts`` a string
    (the value says what the string is, for the error)."""
    if folder is None:
        return None
    path = Path(folder) / f"{model_name}.json"
    if not path.is_file():
        return None
    data = read_json(path)
    for key in numbers:
        if not isinstance(data.get(key), (int, float)):
            raise AclnetError(f"{path}: missing or non-numeric '{key}'")
    for key, what in (texts or {}).items():
        if not isinstance(data.get(key), str):
            raise AclnetError(f"{path}: missing '{key}' ({what})")
    return data


def read_complexity(folder: Path | None, model_name: str) -> dict | None:
    """``results/complexity/<model_name>.json`` or None when it has not been measured."""
    return read_measurement(folder, model_name, ("params_m", "macs_g", "macs_g_excl_matmul"))


def read_latency(folder: Path | None, model_name: str) -> dict | None:
    """``results/latency/<model_name>.json`` (``aclnet latency``) or None when it has not been measured."""
    return read_measurement(folder, model_name, ("median_ms", "p90_ms", "threads"),
                            {"cpu": "the CPU the latency was measured on"})


def add_results_arguments(parser: argparse.ArgumentParser) -> None:
    """The options `aclnet tables` and `aclnet figures` share: params files and the results roots."""
    parser.add_argument("--params", action="append", required=True, type=Path,
                        help="params.yaml, then optional presets merged over it (repeatable)")
    parser.add_argument("--train-root", type=Path, default=Path(TRAIN_ROOT))
    parser.add_argument("--eval-root", type=Path, default=Path(EVAL_ROOT))
    parser.add_argument("--external-root", type=Path,
                        help="rows readers bring, measured by `aclnet external` (params external); default "
                             "<eval-root>/external")
