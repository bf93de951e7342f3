"""``aclnet figures``: PR and F-measure curves, a qualitative grid and training curves, per track.

    aclnet figures --params params.yaml [--params PRESET] --train-root results/train \
        --eval-root results/evaluate --pred-root results/predict --data-root data/prepared \
        --out-dir results/figures

Writes PNG and PDF:

* ``pr_<track>_<split>``: precision against recall, one line per model (mean curve over seeds);
* ``fcurve_<track>_<split>``: F-measure against threshold, one line per model;
* ``ecurve_<track>_<split>``: E-measure against threshold, one line per model (curves.csv's ``emeasure``);
* ``qualitative_<track>``: RGB, depth, GT, T, S, S* for a few test images of the first split, the
  hardest image (worst ACLNet-S MAE in per_image.csv) first, then images spread over the MAE ranking;
* ``training_<track>``: every metric the dvclive logs hold (``dvclive/plots/metrics/**/*.tsv``) against the
  epoch; per run a line for the mean over seeds and a band from the seeds' minimum to their maximum.
* ``kd_methods_<track>`` (params ``kd_methods`` set): each KD method's ΔSm vs no KD (:mod:`.kd_figure`).

Each title names the dataset, and says "SYNTHETIC" when the data are synthetic.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import cv2
import numpy as np

from aclnet_kd.config import load_params
from aclnet_kd.errors import AclnetError
from aclnet_kd.evaluate.io import read_gray_map
from aclnet_kd.io import staged_dir
from aclnet_kd.report import external_rows
from aclnet_kd.report.collect import (
    TrackSettings, add_results_arguments, collect_runs, run_dir, seed_dirs, track_settings,
)
from aclnet_kd.report.kd_figure import kd_methods_figure
from aclnet_kd.report.plotting import pyplot, save_figure
from aclnet_kd.workflow import plan
from aclnet_kd.workflow.runs import BASELINE, COLOURS, LABELS, PAPER_RUNS


def read_csv_columns(path: Path) -> dict[str, np.ndarray]:
    """Numeric columns of a CSV/TSV file (delimiter from the suffix)."""
    delimiter = "\t" if path.suffix == ".tsv" else ","
    try:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter=delimiter))
    except OSError as err:
        raise AclnetError(f"{path}: cannot read ({err})") from None
    if not rows:
        raise AclnetError(f"{path}: empty")
    columns = {}
    for key in rows[0]:
        try:
            columns[key] = np.array([float(r[key]) for r in rows])
        except (TypeError, ValueError):
            columns[key] = np.array([r[key] for r in rows])
    return columns


def _title(kind: str, settings: TrackSettings, synthetic: bool, split: str | None = None) -> str:
    where = f"{settings.dataset}" + (f" / {split}" if split else "")
    return f"{kind}: {where}" + (" (SYNTHETIC data)" if synthetic else "")


# ---------------------------------------------------------------------------------------------------
# Curves
# ---------------------------------------------------------------------------------------------------
def mean_curves(eval_dirs: dict[int, Path], split: str) -> dict[str, np.ndarray]:
    """curves.csv averaged over seeds."""
    per_seed = [read_csv_columns(folder / split / "curves.csv") for folder in eval_dirs.values()]
    columns = ("threshold", "precision", "recall", "fmeasure", "emeasure")
    return {key: np.mean([c[key] for c in per_seed], axis=0) for key in columns}


# curves.csv column -> (name, y label): the curves drawn against the threshold (stems: plan.THRESHOLD_FIGURES)
THRESHOLD_CURVES = {"fmeasure": ("F-measure", "F-measure (β² = 0.3)"),
                    "emeasure": ("E-measure", "E-measure (enhanced alignment)")}


def curve_figures(settings: TrackSettings, runs: dict, synthetic: bool, out_dir: Path,
                  external: list | None = None) -> list[Path]:
    """PR and F curves per split; ``external`` rows (report/external_rows.py) dashed beside our runs."""
    plt = pyplot()
    written = []
    for split in settings.splits:
        curves = {run: mean_curves(result.eval_dirs, split) for run, result in runs.items()}
        extra = [(r.label, read_csv_columns(r.folder / split / "curves.csv"),
                  external_rows.COLOURS[i % len(external_rows.COLOURS)])
                 for i, r in enumerate(external or []) if r.row is not None]
        fig, ax = plt.subplots(figsize=(5, 4.5))
        for run, c in curves.items():
            # recall = 1 at threshold 0 (everything foreground); draw from high to low threshold.
            ax.plot(c["recall"][::-1], c["precision"][::-1], color=COLOURS[run],
                    label=f"{LABELS[run]} (n={runs[run].n})")
        for label, c, colour in extra:
            ax.plot(c["recall"][::-1], c["precision"][::-1], color=colour, linestyle=external_rows.LINESTYLE,
                    label=f"{label} (measured)")
        ax.set(xlabel="Recall", ylabel="Precision", xlim=(0, 1.01), ylim=(0, 1.01),
               title=_title("Precision-recall", settings, synthetic, split))
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
        written += save_figure(fig, out_dir, plan.fill(plan.PR_FIGURE, track=settings.name, split=split))

        for column, (name, ylabel) in THRESHOLD_CURVES.items():
            fig, ax = plt.subplots(figsize=(5, 4.5))
            for run, c in curves.items():
                ax.plot(c["threshold"], c[column], color=COLOURS[run],
                        label=f"{LABELS[run]} (max{name[0]} {c[column].max():.3f})")
            for label, c, colour in extra:
                ax.plot(c["threshold"], c[column], color=colour, linestyle=external_rows.LINESTYLE,
                        label=f"{label} (measured, max{name[0]} {c[column].max():.3f})")
            ax.set(xlabel="Threshold (0-255, after per-map min-max)", ylabel=ylabel, xlim=(0, 255), ylim=(0, 1.01),
                   title=_title(f"{name} vs threshold", settings, synthetic, split))
            ax.grid(alpha=0.3)
            ax.legend(loc="best")
            stem = plan.fill(plan.THRESHOLD_FIGURES[column], track=settings.name, split=split)
            written += save_figure(fig, out_dir, stem)
    return written



# ---------------------------------------------------------------------------------------------------
# Qualitative grid
# ---------------------------------------------------------------------------------------------------
def pick_examples(per_image: dict[str, np.ndarray], count: int) -> list[str]:
    """The worst-MAE image first (the hard case), then images spread evenly over the MAE ranking."""
    order = np.argsort(-per_image["MAE"].astype(float), kind="stable")
    stems = [str(per_image["stem"][i]) for i in order]
    if count <= 1 or len(stems) <= count:
        return stems[:max(count, 1)]
    picks = np.linspace(0, len(stems) - 1, count).round().astype(int)
    return [stems[i] for i in dict.fromkeys(picks.tolist())]


def qualitative_figure(settings: TrackSettings, runs: dict, synthetic: bool, pred_root: Path,
                       data_root: Path, count: int, out_dir: Path) -> list[Path]:
    from aclnet_kd.data import open_prepared

    plt = pyplot()
    split = settings.splits[0]
    ranker = runs.get(BASELINE.name) or next(iter(runs.values()))
    first_seed = ranker.seeds[0]
    per_image_path = ranker.eval_dirs[first_seed] / split / "per_image.csv"
    per_image = read_csv_columns(per_image_path)
    per_image["stem"] = np.array([str(s) for s in per_image["stem"]])
    stems = pick_examples(per_image, count)
    mae_of = dict(zip(per_image["stem"], per_image["MAE"]))

    prepared = open_prepared(data_root / settings.dataset)
    ids = prepared.ids(split)
    arrays = prepared.arrays(split)
    columns = ["RGB", "Depth", "GT"] + [LABELS[r] for r in PAPER_RUNS if r in runs]
    fig, axes = plt.subplots(len(stems), len(columns), figsize=(1.9 * len(columns), 2.0 * len(stems)),
                             squeeze=False)
    for row, stem in enumerate(stems):
        if stem not in ids:
            raise AclnetError(f"{per_image_path}: image {stem!r} is not in {data_root / settings.dataset} split {split}")
        index = ids.index(stem)
        gt = prepared.gt_original(split, stem)
        size = (gt.shape[1], gt.shape[0])
        panels = [cv2.resize(np.asarray(arrays["rgb"][index]), size, interpolation=cv2.INTER_LINEAR),
                  cv2.resize(np.asarray(arrays["depth"][index]), size, interpolation=cv2.INTER_NEAREST), gt]
        for run in PAPER_RUNS:
            if run in runs:
                path = run_dir(pred_root, settings.name, run, runs[run].seeds[0]) / split / f"{stem}.png"
                if not path.is_file():
                    raise AclnetError(f"{path}: saliency map missing (run `aclnet predict` for {run})")
                panels.append(read_gray_map(path))
        for col, (panel, name) in enumerate(zip(panels, columns)):
            ax = axes[row][col]
            ax.imshow(panel, cmap=None if panel.ndim == 3 else "gray", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(name, fontsize=9)
        label = f"{stem}\nS MAE {mae_of[stem]:.3f}" + ("\n(hardest)" if row == 0 else "")
        axes[row][0].set_ylabel(label, fontsize=7)
    fig.suptitle(_title(f"Qualitative, seed {first_seed}", settings, synthetic, split), fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out_dir, plan.fill(plan.QUALITATIVE_FIGURE, track=settings.name))


# ---------------------------------------------------------------------------------------------------
# Training curves (dvclive)
# ---------------------------------------------------------------------------------------------------
def read_dvclive_metrics(run_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{metric name: (step, value)}`` from what dvclive writes: one tab-separated file per metric,
    ``dvclive/plots/metrics/<name>.tsv`` (names may nest: train/loss), with the columns ``step`` and the
    metric's last name (and ``timestamp``), the format ``dvc plots`` reads. Read with pandas."""
    import pandas as pd

    root = run_dir / "dvclive" / "plots" / "metrics"
    found = {}
    for path in sorted(root.rglob("*.tsv")):
        try:
            frame = pd.read_csv(path, sep="\t")
        except (OSError, ValueError) as err:
            raise AclnetError(f"{path}: cannot read ({err})") from None
        if "step" not in frame or path.stem not in frame:
            raise AclnetError(f"{path}: not a dvclive metric file (expected columns 'step' and '{path.stem}')")
        name = path.relative_to(root).with_suffix("").as_posix()
        found[name] = (frame["step"].to_numpy(float), frame[path.stem].to_numpy(float))
    return found


def seed_band(curves: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(step, mean, min, max) over the seeds' curves of one metric, on the steps every seed logged."""
    steps = sorted(set.intersection(*(set(step.tolist()) for step, _ in curves)))
    values = np.array([[dict(zip(step.tolist(), value.tolist()))[s] for s in steps] for step, value in curves])
    return np.array(steps, dtype=float), values.mean(axis=0), values.min(axis=0), values.max(axis=0)


def read_training_logs(settings: TrackSettings, train_root: Path, seeds: list[int] | None
                       ) -> dict[str, dict[str, list[tuple[np.ndarray, np.ndarray]]]]:
    """``{metric name: {run: [one (step, value) per seed]}}`` from the runs' dvclive logs."""
    logs: dict[str, dict[str, list[tuple[np.ndarray, np.ndarray]]]] = {}
    for run in PAPER_RUNS:
        for seed, folder in seed_dirs(train_root, settings.name, run).items():
            if seeds is not None and seed not in seeds:
                continue
            for name, curve in read_dvclive_metrics(folder).items():
                logs.setdefault(name, {}).setdefault(run, []).append(curve)
    return logs


def training_figure(settings: TrackSettings, train_root: Path, synthetic: bool, seeds: list[int] | None,
                    out_dir: Path) -> list[Path]:
    """One panel per logged metric; per run the mean over its seeds, with a band from the seeds' minimum to
    their maximum at each epoch (dvclive's step is the epoch; a run with one seed is a plain line)."""
    plt = pyplot()
    logs = read_training_logs(settings, train_root, seeds)
    if not logs:
        return []
    names = sorted(logs)
    cols = min(3, len(names))
    rows = int(np.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        for run, curves in logs[name].items():
            step, mean, low, high = seed_band(curves)
            n = len(curves)
            ax.plot(step, mean, color=COLOURS[run], marker="o" if len(step) < 30 else None, markersize=3,
                    label=f"{LABELS[run]} (mean of {n} seeds)" if n > 1 else f"{LABELS[run]} (1 seed)")
            if n > 1:
                ax.fill_between(step, low, high, color=COLOURS[run], alpha=0.2, linewidth=0)
        ax.set(xlabel="epoch", ylabel=name.split("/")[-1], title=name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle(_title("Training curves (line: mean over seeds; band: min–max over seeds)", settings, synthetic),
                 fontsize=11)
    fig.tight_layout()
    return save_figure(fig, out_dir, plan.fill(plan.TRAINING_FIGURE, track=settings.name))


# ---------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------
def build_figures(params: dict, train_root: Path, eval_root: Path, pred_root: Path, data_root: Path,
                  out_dir: Path, external_root: Path | None = None) -> list[Path]:
    seeds = params.get("seeds")
    count = int((params.get("figures") or {}).get("qualitative_images", 4))
    written: list[Path] = []
    for track in (params.get("tracks") or {}):
        settings = track_settings(params, track)
        runs = collect_runs(eval_root, train_root, settings, list(PAPER_RUNS), seeds)
        synthetic = settings.synthetic or any(r.provenance(settings)["synthetic"] for r in runs.values())
        external = external_rows.read_external(external_rows.external_root(eval_root, external_root), params,
                                               track, settings.splits)
        if runs or any(r.row is not None for r in external):
            written += curve_figures(settings, runs, synthetic, out_dir, external)
        if runs:
            written += qualitative_figure(settings, runs, synthetic, pred_root, data_root, count, out_dir)
        written += training_figure(settings, train_root, synthetic, seeds, out_dir)
        if params.get("kd_methods"):  # Table III's figure (plan.figure_stems declares it exactly then)
            written += kd_methods_figure(params, train_root, eval_root, track, out_dir)
    return written


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_results_arguments(parser)
    parser.add_argument("--pred-root", type=Path, default=Path(plan.PREDICT_ROOT))
    parser.add_argument("--data-root", type=Path, default=Path(plan.PREPARED_ROOT))
    parser.add_argument("--out-dir", type=Path, default=Path(plan.FIGURES_DIR))


def main(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    # Render everything into a temp folder first: a failure half-way leaves no partial set of figures.
    with staged_dir(args.out_dir, merge=True) as tmp:
        written = build_figures(params, args.train_root, args.eval_root, args.pred_root, args.data_root, tmp,
                                args.external_root)
        if not written:
            raise AclnetError(f"{args.eval_root}, {args.train_root}: nothing to plot (no evaluated runs, no dvclive logs)")
    print(f"wrote {len(written)} files to {args.out_dir}: {', '.join(sorted({p.stem for p in written}))}")
    return 0
