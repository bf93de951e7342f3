"""``aclnet tables``: the paper's Table I / Table II, reported against reproduced, with a verdict.

    aclnet tables --params params.yaml [--params PRESET] --train-root results/train \
        --eval-root results/evaluate --complexity-dir results/complexity --latency-dir results/latency \
        --out-dir results/tables

Writes ``table1.{csv,md}`` (track ``rail``), ``table2.{csv,md}`` (track ``sod``) and, when the KD-loss
ablation runs exist, ``ablation_<track>.{csv,md}``. The competitors' rows and the paper's ACLNet rows come
from ``reported.csv`` (transcribed from the paper; Table II's swapped maxF/maxE columns are put back
and footnoted). Our rows are the mean ± sample std over the seeds that were run, each with the selection
protocol and the data it came from; a table built on synthetic data says so in its title.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from aclnet_kd.config import load_params
from aclnet_kd.constants import MEASURE_SIZE, MODEL_NAMES, STUDENT_MODEL, TEACHER_MODEL
from aclnet_kd.errors import AclnetError
from aclnet_kd.io import atomic_write_texts
from aclnet_kd.report.collect import (
    ABLATION_RUNS,
    RunResults,
    TrackSettings,
    ablation_runs,
    add_results_arguments,
    collect_runs,
    read_complexity,
    read_latency,
    track_settings,
)
from aclnet_kd.report import external_rows
from aclnet_kd.report.provenance_note import code_note
from aclnet_kd.report.formatting import HEADINGS, fmt, fmt_mean_std, fmt_signed, markdown_table
from aclnet_kd.report.differences import (
    DAGGER,
    DIFFERENCE_COLUMNS,
    NOT_CONVERGED_NOTE,
    RULE_NOTE,
    TABLE_METRICS,
    differences,
    differences_markdown,
    flag_label,
    paper_claim_note,
    unconverged_seeds,
    verdict_text,
)
from aclnet_kd.report.operating_point import operating_point_table
from aclnet_kd.report.rendering import blocks_latex, parse_markdown
from aclnet_kd.report.reported import load_reported
from aclnet_kd.report.table3 import kd_methods_table
from aclnet_kd.workflow.plan import (
    ABLATION_TABLE, COMPLEXITY_DIR, DIFFERENCES, KD_METHODS_TABLE, LATENCY_DIR, LATEX_TABLES, PAPER_TABLES, TABLES_DIR,
    fill,
)
from aclnet_kd.workflow.plan import OPERATING_POINT as OPERATING_POINT_TABLE  # the stem (runs has the part)
from aclnet_kd.workflow.runs import (
    BASELINE, LABELS, MODELS, OPERATING_POINT, PAPER_RUNS, RELEASE_RUN, TEACHER, part_runs,
)

LATENCY_HEADING = f"ms/img ↓ ({MEASURE_SIZE}², batch 1, CPU of this run)"
SWAP_NOTE = (
    "Table II of the paper prints the maxF and maxE columns swapped (e.g. BBS-Net's own NJU2K numbers are "
    "maxF 0.920 / maxE 0.949; Table II prints maxF 0.949 / maxE 0.920). The reported values here are put "
    "back under their right headings (see reported.csv)."
)


# ---------------------------------------------------------------------------------------------------
# Our rows
# ---------------------------------------------------------------------------------------------------
def provenance_text(result: RunResults, settings: TrackSettings) -> str:
    info = result.provenance(settings)
    seeds = ", ".join(str(s) for s in result.seeds)
    selection = info["selection"]
    data = f"{info['dataset']}{' (synthetic)' if info['synthetic'] else ''}"
    epochs = f", epoch {'/'.join(str(e) for e in info['selected_epochs'])}" if info["selected_epochs"] else ""
    return f"ours: {data}, selection {selection}{epochs}, n={result.n} (seed {seeds})"


# ---------------------------------------------------------------------------------------------------
# Verdict: S* − S and T − S with their intervals (report/differences.py, report/stats.py)
# ---------------------------------------------------------------------------------------------------
def verdict(runs: dict[str, RunResults], splits: list[str], reported: pd.DataFrame, decimals: int) -> str:
    """One paragraph: per split, S* − S (distillation) and T − S (depth) in Sm and MAE, each with its 95%
    interval over seeds and verdict, the paper's difference beside it (decision rule in the footnotes)."""
    rows = differences("", runs, splits, reported)
    sentences = []
    for split in splits:
        text = verdict_text(rows, split, decimals)
        if text:
            sentences.append(f"On {split}: {text}" if len(splits) > 1 else text)
    if runs.get(BASELINE.name) is None or runs.get(RELEASE_RUN.name) is None:
        missing = BASELINE if runs.get(BASELINE.name) is None else RELEASE_RUN
        sentences.append(f"Distillation cannot be judged: {missing.label} was not run.")
    if runs.get(TEACHER.name) is None:
        sentences.append("The teacher was not run, so the student-teacher gap is unknown.")
    return " ".join(sentences)


# ---------------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------------
def _complexity_cells(complexity: dict | None, decimals: int = 2) -> tuple[str, str]:
    if complexity is None:
        return "n/a", "n/a"
    flops = f"{complexity['macs_g']:.{decimals}f} / {complexity['macs_g_excl_matmul']:.{decimals}f}"
    return flops, f"{complexity['params_m']:.1f}"


def complexity_note(complexities: dict[str, dict | None]) -> str:
    t, s = complexities.get(TEACHER_MODEL), complexities.get(STUDENT_MODEL)
    note = (f"FLOPs/G of our rows = G multiply-accumulates (MACs) for one {MEASURE_SIZE} x {MEASURE_SIZE} input, written "
            "\"all / excl. matmul\": all counts every MAC including the batched matrix products of attention "
            "and WF_V2; excl. matmul is the thop convention the paper used (conv and linear layers only). ")
    if t is not None and s is not None:
        note += (f"The paper's 20.7G for ACLNet-T matches the thop count ({t['macs_g_excl_matmul']:.2f}G here; "
                 f"{t['macs_g']:.2f}G with matmul). Its 5.6G for ACLNet-S/S* is the thop count of a batch of "
                 f"2 images, as the released code measured it: 2 x {s['macs_g_excl_matmul']:.2f}G = "
                 f"{2 * s['macs_g_excl_matmul']:.2f}G; per image it is {s['macs_g_excl_matmul']:.2f}G "
                 f"({s['macs_g']:.2f}G with matmul). Params/M exclude the backbones' unused ImageNet heads.")
    else:
        note += ("The paper's 20.7G (T) is the thop count at batch 1 and its 5.6G (S) the thop count at batch 2 "
                 "(facts.md §1). Run `aclnet complexity` to fill in our columns (n/a above).")
    return note


def latency_note(latencies: dict[str, dict | None]) -> str:
    measured = [lat for lat in latencies.values() if lat is not None]
    if not measured:
        return "ms/img: not measured (run `aclnet latency`, the `latency` stage); n/a above."
    lat = measured[0]
    return (f"ms/img of our rows = median milliseconds per image of `aclnet latency` (PyTorch eager fp32, "
            f"{MEASURE_SIZE} x {MEASURE_SIZE}, batch 1, {lat['threads']} thread(s), warm-up excluded) on this run's "
            f"CPU, {lat['cpu']}; "
            f"p90 in table1.csv. The paper reports no latency, so other rows have none. "
            f"benchmarks/inference_latency.py compares onnxruntime, bf16 and int8 (docs/deploy.md).")


@dataclass
class _PaperContext:
    """What every row of one paper table shares."""

    splits: list[str]
    rep: pd.DataFrame  # the paper's reported rows of this table
    with_complexity: bool  # Table I: FLOPs, params and latency columns
    decimals: int

    def col(self, split: str, key: str) -> str:
        return f"{split}:{key}" if len(self.splits) > 1 else key


def _reported_row(ctx: _PaperContext, model: str, year: str, source: str) -> tuple[list[str], dict]:
    cells = [f"{model} {year}".strip(), source]
    record = {"model": model, "year": year, "kind": "reported", "source": source}
    for split in ctx.splits:
        row = ctx.rep[(ctx.rep["model"] == model) & (ctx.rep["split"] == split)]
        for key in TABLE_METRICS:
            value = float(row.iloc[0][key]) if len(row) else float("nan")
            cells.append(fmt(value, ctx.decimals))
            record[ctx.col(split, key)] = value
    if ctx.with_complexity:
        row = ctx.rep[ctx.rep["model"] == model]
        flops = float(row.iloc[0]["flops_g"]) if len(row) else float("nan")
        params = float(row.iloc[0]["params_m"]) if len(row) else float("nan")
        cells += [fmt(flops, 1), fmt(params, 1), "—"]  # the paper reports no latency
        record.update(flops_g=flops, params_m=params)
    return cells, record


def _complexity_columns(ctx: _PaperContext, label: str, model: str, complexities: dict, latencies: dict,
                        ours: list[str], delta: list[str], record: dict) -> None:
    """Table I's FLOPs / params / latency cells of our row and its delta row (appended in place)."""
    complexity = complexities.get(model)
    flops, params = _complexity_cells(complexity)
    latency = latencies.get(model)
    ours += [flops, params, "n/a" if latency is None else f"{latency['median_ms']:.1f}"]
    if latency is not None:
        record.update(latency_ms=latency["median_ms"], latency_p90_ms=latency["p90_ms"],
                      latency_threads=latency["threads"], latency_cpu=latency["cpu"])
    paper = ctx.rep[ctx.rep["model"] == label]
    if complexity is not None and len(paper):
        delta += [fmt_signed(complexity["macs_g_excl_matmul"] - float(paper.iloc[0]["flops_g"]), 2) + " (excl. matmul)",
                  fmt_signed(complexity["params_m"] - float(paper.iloc[0]["params_m"]), 1), "—"]
        record.update(flops_g=complexity["macs_g"], flops_g_excl_matmul=complexity["macs_g_excl_matmul"],
                      params_m=complexity["params_m"])
    else:
        delta += ["—", "—", "—"]


def _our_rows(ctx: _PaperContext, settings: TrackSettings, run: str, label: str, result: RunResults,
              complexities: dict, latencies: dict) -> tuple[list[list[str]], list[dict]]:
    """Our row of ``run`` (mean ± std over seeds) and its row of differences from the paper."""
    info = result.provenance(settings)
    source = provenance_text(result, settings)
    ours, delta = [flagged(label, result), source], [label, "Δ ours − paper"]
    record = {"model": label, "kind": "ours", "source": source, "n_seeds": result.n,
              "not_converged_seeds": " ".join(map(str, unconverged_seeds(result))),
              "seeds": " ".join(map(str, result.seeds)), "selection": info["selection"],
              "dataset": info["dataset"], "synthetic": info["synthetic"]}
    drecord = {"model": label, "kind": "delta", "source": "ours - paper"}
    for split in ctx.splits:
        paper = ctx.rep[(ctx.rep["model"] == label) & (ctx.rep["split"] == split)]
        for key in TABLE_METRICS:
            mean, std = result.mean_std(split, key)
            ours.append(fmt_mean_std(mean, std, ctx.decimals))
            diff = mean - float(paper.iloc[0][key]) if len(paper) else float("nan")
            delta.append(fmt_signed(diff, ctx.decimals))
            record[ctx.col(split, key)], record[f"{ctx.col(split, key)}:std"], drecord[ctx.col(split, key)] = \
                mean, std, diff
    if ctx.with_complexity:
        _complexity_columns(ctx, label, MODELS[run], complexities, latencies, ours, delta, record)
    return [ours, delta], [record, drecord]


def flagged(label: str, result: RunResults) -> str:
    """The row label, with a dagger when a seed of the run did not converge by the plateau rule."""
    return label + DAGGER if unconverged_seeds(result) else label


def convergence_note(runs: dict[str, RunResults]) -> list[str]:
    """The dagger's footnote, naming the runs and seeds; none when every run converged (or was not judged)."""
    flagged_runs = [flag_label(result) for result in runs.values() if unconverged_seeds(result)]
    return [f"{NOT_CONVERGED_NOTE}: {'; '.join(flagged_runs)}."] if flagged_runs else []


def _paper_notes(ctx: _PaperContext, settings: TrackSettings, synthetic: bool, complexities: dict,
                 latencies: dict) -> list[str]:
    notes = [
        "Metrics: PySODMetrics at the ground truth's original size (S-measure α = 0.5; maxF / maxE = maximum "
        "over 256 thresholds of the dataset-mean curve, F with β² = 0.3). Our rows: mean ± sample std over "
        "seeds (no ± with n = 1); Δ = our mean − the paper's number.",
        "Competitor rows and the paper's ACLNet rows are the paper's reported numbers (reported.csv), "
        "not re-measured.",
        "The teacher's recipe is our inference: the release's teacher script is a template (it trains an "
        "undefined PLSCN on RGB only, with 7 outputs), so ACLNet-T is trained on RGB-D with the label loss and "
        "that template's optimizer and schedule (docs/training.md).",
    ]
    if ctx.with_complexity:
        notes += [complexity_note(complexities), latency_note(latencies)]
    else:
        notes.append(SWAP_NOTE)
    if synthetic:
        notes.append(f"Our rows come from the synthetic stand-in dataset {settings.dataset}: they test the "
                     f"pipeline, and cannot be compared with the paper's numbers.")
    notes += [f"{RULE_NOTE} The verdict below gives Sm and MAE; all four metrics are in differences.csv / differences.md.",
              paper_claim_note().replace('the "Paper" column is', "beside each difference,")]
    return notes


def _paper_title(table_id: str, settings: TrackSettings, synthetic: bool) -> str:
    if synthetic:
        return (f"Table {table_id} on SYNTHETIC data ({settings.dataset}), not the paper's benchmark: "
                f"reported numbers against our synthetic-data runs")
    title_data = "NEU RSDDS-AUG rail" if table_id == "I" else "RGB-D SOD"
    return f"Table {table_id}: {title_data} ({', '.join(settings.splits)}), reported against reproduced"


def paper_table(table_id: str, settings: TrackSettings, runs: dict[str, RunResults], reported: pd.DataFrame,
                complexities: dict[str, dict | None], decimals: int,
                latencies: dict[str, dict | None] | None = None,
                external: list | None = None) -> tuple[pd.DataFrame, str]:
    """Build one paper table: (tidy CSV frame, Markdown text); ``external``: the measured rows readers
    bring (report/external_rows.py), each placed after its paper row."""
    ctx = _PaperContext(settings.splits, reported[reported["table"] == table_id], table_id == "I", decimals)
    latencies = latencies or {}
    synthetic = any(r.provenance(settings)["synthetic"] for r in runs.values()) or settings.synthetic
    header = ["Model", "Source"]
    for split in ctx.splits:
        header += [f"{split} {HEADINGS[k]}" if len(ctx.splits) > 1 else HEADINGS[k] for k in TABLE_METRICS]
    if ctx.with_complexity:
        header += ["FLOPs/G ↓", "Params/M ↓", LATENCY_HEADING]
    md_rows: list[list[str]] = []
    csv_rows: list[dict] = []

    def add(rows: list[list[str]], records: list[dict]) -> None:
        md_rows.extend(rows)
        csv_rows.extend(records)

    competitors = ctx.rep[~ctx.rep["model"].str.startswith("ACLNet")].drop_duplicates("model")
    for _, row in competitors.iterrows():
        cells, record = _reported_row(ctx, row["model"], str(row["year"]), "paper")
        add([cells], [record])
    for run in PAPER_RUNS:
        label = LABELS[run]
        cells, record = _reported_row(ctx, label, "", "paper")
        add([cells], [record])
        if runs.get(run) is None:
            add([[label, "ours: not run"] + ["—"] * (len(header) - 2)],
                [{"model": label, "kind": "ours", "source": "not run"}])
        else:
            add(*_our_rows(ctx, settings, run, label, runs[run], complexities, latencies))
    external_rows.insert_rows(external or [], md_rows, csv_rows, ctx.splits, ctx.rep, len(header), decimals, ctx.col)
    notes = _paper_notes(ctx, settings, synthetic, complexities, latencies) + external_rows.notes(external or [])
    notes += convergence_note({run: runs[run] for run in PAPER_RUNS if run in runs})  # this table's rows only
    notes.append(code_note({LABELS[run]: runs[run] for run in PAPER_RUNS if run in runs}, ctx.splits))
    markdown = f"### {_paper_title(table_id, settings, synthetic)}\n\n{markdown_table(header, md_rows)}\n\n"
    markdown += "\n".join(f"{i}. {n}" for i, n in enumerate(notes, 1))
    markdown += f"\n\n**Verdict.** {verdict(runs, ctx.splits, ctx.rep, decimals)}\n"
    return pd.DataFrame(csv_rows), markdown


def ablation_table(settings: TrackSettings, runs: dict[str, RunResults], decimals: int,
                   rows: dict[str, str] = ABLATION_RUNS) -> tuple[pd.DataFrame, str]:
    """KD-loss ablation: label only, + each KD loss alone (or a custom mix), all; ``rows`` is
    {run: label} (collect.ablation_runs)."""
    synthetic = any(r.provenance(settings)["synthetic"] for r in runs.values()) or settings.synthetic
    title = f"KD-loss ablation, track {settings.name} ({settings.dataset}{', SYNTHETIC data' if synthetic else ''})"
    header = ["Student losses", "Source"]
    for split in settings.splits:
        header += [f"{split} {HEADINGS[k]}" if len(settings.splits) > 1 else HEADINGS[k] for k in TABLE_METRICS]
    md_rows, csv_rows = [], []
    base = runs.get(BASELINE.name)
    for run, label in rows.items():
        result = runs.get(run)
        if result is None:
            md_rows.append([label, "not run"] + ["—"] * (len(header) - 2))
            csv_rows.append({"losses": label, "run": run, "source": "not run"})
            continue
        cells = [flagged(label, result), provenance_text(result, settings)]
        record = {"losses": label, "run": run, "source": cells[1], "n_seeds": result.n,
                  "not_converged_seeds": " ".join(map(str, unconverged_seeds(result)))}
        for split in settings.splits:
            for key in TABLE_METRICS:
                mean, std = result.mean_std(split, key)
                text = fmt_mean_std(mean, std, decimals)
                if base is not None and run != BASELINE.name:
                    text += f" ({fmt_signed(mean - base.mean_std(split, key)[0], decimals)})"
                cells.append(text)
                col = f"{split}:{key}" if len(settings.splits) > 1 else key
                record[col], record[f"{col}:std"] = mean, std
        md_rows.append(cells)
        csv_rows.append(record)
    markdown = (f"### {title}\n\n{markdown_table(header, md_rows)}\n\n"
                "Mean ± sample std over seeds; in brackets the difference from label only (ACLNet-S). "
                "With one seed per run these differences carry no spread estimate.\n"
                + "".join(f"\n{note}\n" for note in convergence_note({r: runs[r] for r in rows if r in runs}))
                + f"\n{code_note({rows[r]: runs[r] for r in rows if r in runs}, settings.splits)}\n")
    return pd.DataFrame(csv_rows), markdown


def build_tables(params: dict, train_root: Path | None, eval_root: Path, complexity_dir: Path | None,
                 latency_dir: Path | None = None, external_root: Path | None = None
                 ) -> dict[str, tuple[pd.DataFrame, str]]:
    """All tables that the results on disk support: {file stem: (frame, markdown)}."""
    decimals = int((params.get("tables") or {}).get("decimals", 3))
    seeds = params.get("seeds")
    reported = load_reported()
    complexities = {name: read_complexity(complexity_dir, name) for name in MODEL_NAMES}
    latencies = {name: read_latency(latency_dir, name) for name in MODEL_NAMES}
    out: dict[str, tuple[pd.DataFrame, str]] = {}
    rows, synthetic, op_tracks = [], False, {}
    op_runs = part_runs(params, OPERATING_POINT)
    for track in (params.get("tracks") or {}):
        settings = track_settings(params, track)
        ablations = ablation_runs(params)
        run_names = list(PAPER_RUNS) + [r for r in ablations if r not in PAPER_RUNS]
        runs = collect_runs(eval_root, train_root, settings, run_names, seeds)
        if track in PAPER_TABLES:
            stem, table_id = PAPER_TABLES[track]
            external = external_rows.read_external(external_rows.external_root(eval_root, external_root), params,
                                                   track, settings.splits)
            if any(run in runs for run in PAPER_RUNS) or external:
                out[stem] = paper_table(table_id, settings, runs, reported, complexities, decimals, latencies,
                                        external)
                rows += differences(track, runs, settings.splits, reported[reported["table"] == table_id])
                op_tracks[track] = (settings, {run: result for run, result in runs.items() if run in op_runs})
                synthetic |= settings.synthetic or any(r.provenance(settings)["synthetic"] for r in runs.values())
        if any(run in runs for run in ablations if run not in PAPER_RUNS):
            out[fill(ABLATION_TABLE, track=track)] = ablation_table(settings, runs, decimals, ablations)
    if any(stem in out for stem, _ in PAPER_TABLES.values()):
        out[DIFFERENCES] = (pd.DataFrame(rows, columns=DIFFERENCE_COLUMNS),
                            differences_markdown(rows, decimals, synthetic))
        out[OPERATING_POINT_TABLE] = operating_point_table(op_tracks, decimals)
    if params.get("kd_methods"):  # Table III (plan.table_stems declares it exactly then)
        table3 = kd_methods_table(params, train_root, eval_root, decimals)
        if table3 is not None:
            out[KD_METHODS_TABLE] = table3
    return out


# ---------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_results_arguments(parser)
    parser.add_argument("--complexity-dir", type=Path, default=Path(COMPLEXITY_DIR))
    parser.add_argument("--latency-dir", type=Path, default=Path(LATENCY_DIR),
                        help="ms/image per model from `aclnet latency` (Table I's latency column)")
    parser.add_argument("--out-dir", type=Path, default=Path(TABLES_DIR))


def main(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    tables = build_tables(params, args.train_root, args.eval_root, args.complexity_dir, args.latency_dir,
                          args.external_root)
    if not tables:
        raise AclnetError(f"{args.eval_root}: no evaluated runs found for any track in params 'tracks' "
                          f"(expected <track>/<run>/seed<k>/<split>/metrics.json)")
    files = {}
    for stem, (frame, markdown) in tables.items():
        files[args.out_dir / f"{stem}.csv"] = frame.to_csv(index=False, float_format="%.6g")
        files[args.out_dir / f"{stem}.md"] = markdown
        if stem in LATEX_TABLES:  # the same cells and notes, booktabs, for a paper
            files[args.out_dir / f"{stem}.tex"] = blocks_latex(parse_markdown(markdown))
    atomic_write_texts(files)
    print(f"wrote {', '.join(sorted(str(p.name) for p in files))} to {args.out_dir}")
    return 0
