"""Table III (beyond the paper): KD methods side by side, same teacher, same seeds (issue 12).

``results/tables/table3_kd_methods.{csv,md}``: for every track and test split, one row per distilled student

* ACLNet-S* (the release's KD terms at params ``kd.weights``; workflow/runs.py);
* each run of params ``kd_methods`` (e.g. ``kd_response``: label + response KD), trained at every seed;
* each run of params ``ablations`` (trained at seeds[0] only, so n = 1 and no interval),

against the no-KD baseline, ACLNet-S (label loss only, same recipe and seeds). Each row
has Sm, MAE, maxF, maxE as mean ± std over seeds, the paired-by-seed difference from no-KD with its 95% t
interval and verdict (:mod:`aclnet_kd.report.stats`, the rule of the KD-gain table), the mean training time per
epoch (run.json ``seconds_per_epoch``) and the parameters the method adds to the optimizer (run.json
``kd_params``: e.g. FitNet's 1x1 adapters). Rows are ranked by the mean Sm difference, best first. On Sm,
the table's verdict metric, each row also gives its minimum detectable effect (``mde``) and, for ACLNet-S*
where the paper reports S* − S on the split, whether the paper's claim lies in the interval (``vs_paper``;
:mod:`aclnet_kd.report.stats`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from aclnet_kd.losses.registry import KD_TERMS, LABEL, REGISTRY
from aclnet_kd.report.provenance_note import code_note
from aclnet_kd.report.collect import RunResults, TrackSettings, collect_track, track_settings
from aclnet_kd.report.reported import load_reported
from aclnet_kd.report.stats import NO_CLAIM, PairedDifference, claim_verdict, paired_difference
from aclnet_kd.report.differences import (
    HIGHER_IS_BETTER,
    MDE_NOTE,
    TABLE_METRICS,
    paper_difference,
    per_seed,
)
from aclnet_kd.report.formatting import HEADINGS, fmt, fmt_interval, fmt_mean_std, fmt_signed, markdown_table
from aclnet_kd.train.recipe import parse_kd_weights
from aclnet_kd.workflow.plan import PAPER_TABLES
from aclnet_kd.workflow.runs import (
    ABLATIONS, BASELINE as BASELINE_KIND, DISTILLATION, KD_METHODS, RELEASE_RUN as RELEASE_KIND, configured_runs,
    losses_title, terms_title,
)

BASELINE = BASELINE_KIND.name  # no KD: the label loss only (ACLNet-S)
BASELINE_LABEL = f"no KD: {losses_title(BASELINE_KIND)} ({BASELINE_KIND.label})"
RELEASE_RUN = RELEASE_KIND.name  # ACLNet-S*: the release's KD losses at kd.weights
RELEASE_LABEL = f"ACLNet-KD: {losses_title(RELEASE_KIND)} at kd.weights ({RELEASE_KIND.label})"
RELEASE_SHORT_LABEL = f"{RELEASE_KIND.label} ({terms_title(RELEASE_KIND.terms)})"  # the figure's tick label


def weights_label(weights: dict[str, float]) -> str:
    """``{"response": 1}`` -> ``label + response KD``; a weight other than 1 is written (``0.5×AT``)."""
    parts = []
    for name in (LABEL, *KD_TERMS):
        value = float(weights.get(name, 1.0 if name == LABEL else 0.0))
        if value > 0:
            title = LABEL if name == LABEL else REGISTRY[name].title
            parts.append(title if value == 1 else f"{value:g}×{title}")
    return " + ".join(parts) or "nothing"


def method_runs(params: dict) -> dict[str, str]:
    """{run: label} of table3's rows besides the baseline: ACLNet-S*, the KD methods, the ablations."""
    rows = {RELEASE_RUN: RELEASE_LABEL}
    rows.update({run: weights_label(w) for run, w in configured_runs(params, KD_METHODS).items()})
    for run, text in configured_runs(params, ABLATIONS).items():
        merged = {**params["kd"]["weights"], **parse_kd_weights(text)}
        rows[run] = f"{weights_label(merged)} (ablation, seed {params['seeds'][0]} only)"
    return rows


@dataclass
class Row:
    run: str
    label: str
    result: RunResults
    difference: dict[str, PairedDifference]  # metric -> method - no KD, paired by seed (absent: the baseline)
    paper: float = math.nan  # the paper's Sm difference from no KD (ACLNet-S* on a reported split; else NaN)

    @property
    def vs_paper(self) -> str:
        """The Sm interval against the paper's claim ("—" for the baseline and rows the paper does not give)."""
        sm = self.difference.get("Sm")
        return claim_verdict(self.paper, sm.ci_low, sm.ci_high) if sm else NO_CLAIM


def paper_claims(track: str, split: str) -> dict[str, float]:
    """{run: the paper's Sm difference from no KD} on one split: ACLNet-S* − ACLNet-S where the paper reports
    both (reported.csv); the paper compares no other KD method."""
    if track not in PAPER_TABLES:
        return {}
    reported = load_reported()
    claim = paper_difference(reported[reported["table"] == PAPER_TABLES[track][1]], DISTILLATION, split, "Sm")
    return {} if math.isnan(claim) else {RELEASE_RUN: claim}


def split_rows(base: RunResults, methods: dict[str, RunResults], labels: dict[str, str], split: str) -> list[Row]:
    """The baseline, then the methods ranked by their mean Sm difference from it (best first)."""
    rows, claims = [], paper_claims(base.track, split)
    for run, result in methods.items():
        diffs = {}
        for key in TABLE_METRICS:
            mine = per_seed(result, split, key)
            theirs = {seed: value for seed, value in per_seed(base, split, key).items() if seed in mine}
            diffs[key] = paired_difference(mine, theirs, higher_is_better=HIGHER_IS_BETTER[key])
        rows.append(Row(run, labels[run], result, diffs, claims.get(run, math.nan)))
    rows.sort(key=lambda row: -row.difference["Sm"].mean)
    return [Row(BASELINE, BASELINE_LABEL, base, {})] + rows


def _mean_of(result: RunResults, field: str) -> float:
    values = [getattr(record, field) for record in result.run_info.values()]
    values = [float(v) for v in values if v is not None]
    return sum(values) / len(values) if values else math.nan


def _interval_text(diff: PairedDifference, decimals: int) -> str:
    if diff.ci_low is None:
        return fmt_signed(diff.mean, decimals)
    return f"{fmt_signed(diff.mean, decimals)} {fmt_interval(diff.ci_low, diff.ci_high, decimals)}"


def _csv_record(track: str, split: str, rank: int, row: Row) -> dict:
    record = {"track": track, "split": split, "rank": rank, "run": row.run, "method": row.label,
              "n_seeds": row.result.n, "seconds_per_epoch": _mean_of(row.result, "seconds_per_epoch"),
              "kd_params": _mean_of(row.result, "kd_params") if row.run != BASELINE else 0.0}
    for key in TABLE_METRICS:
        record[key], record[f"{key}:std"] = row.result.mean_std(split, key)
    for key in TABLE_METRICS:
        diff = row.difference.get(key)
        record[f"d{key}"] = diff.mean if diff else math.nan
        record[f"d{key}:ci_low"] = diff.ci_low if diff and diff.ci_low is not None else math.nan
        record[f"d{key}:ci_high"] = diff.ci_high if diff and diff.ci_high is not None else math.nan
        record[f"d{key}:verdict"] = diff.verdict if diff else "baseline"
    sm = row.difference.get("Sm")
    record["mde"] = sm.mde if sm and sm.mde is not None else math.nan  # on Sm, the verdict metric
    record["paper"], record["vs_paper"] = row.paper, row.vs_paper
    return record


def _markdown_cells(rank: int, row: Row, split: str, decimals: int) -> list[str]:
    cells = [str(rank) if rank else "—", row.label, f"{row.run} (n={row.result.n})"]
    cells += [fmt_mean_std(*row.result.mean_std(split, key), decimals) for key in TABLE_METRICS]
    sm, mae = row.difference.get("Sm"), row.difference.get("MAE")
    cells += [_interval_text(sm, decimals) if sm else "—", _interval_text(mae, decimals) if mae else "—",
              sm.verdict if sm else "baseline", fmt(sm.mde, decimals) if sm else "—", row.vs_paper]
    seconds, params = _mean_of(row.result, "seconds_per_epoch"), _mean_of(row.result, "kd_params")
    cells += [fmt(seconds, 1), "0" if row.run == BASELINE else ("—" if math.isnan(params) else f"{params:,.0f}")]
    return cells


HEADER = ["Rank", "Student losses", "Run", *(HEADINGS[k] for k in TABLE_METRICS), "ΔSm vs no KD [95% CI]",
          "ΔMAE vs no KD [95% CI]", "Verdict (Sm)", "MDE (Sm)", "vs paper (Sm)", "s/epoch", "Extra trained params"]
NOTE = ("Mean ± sample std over seeds. Δ = method − no KD, paired by seed, mean with its two-sided 95% Student-t "
        "interval (n − 1 degrees of freedom); verdict: gain when the Sm interval lies above 0, loss when below, "
        "no detectable difference when it contains 0; no interval with one seed. Ranked by mean ΔSm. s/epoch: "
        "mean wall time of an epoch's training steps (run.json; one process, this machine). Extra trained params: "
        "KD-module parameters the optimizer steps besides the student's (FitNet's adapters; ACLNet's KD modules "
        "stay frozen at their random init in the release, kd.train_kd_modules).")


VS_PAPER_NOTE = ("vs paper (Sm): \"claim excluded\" when the paper's S* − S on Sm (reported.csv; it gives no other KD "
                 "method) lies outside the row's 95% interval, \"consistent with the claim\" when inside, — where the "
                 "paper gives no such difference or n < 2 (on synthetic data: our stand-in study against its "
                 "real-data claim).")


def kd_methods_table(params: dict, train_root: Path | None, eval_root: Path,
                     decimals: int = 3) -> tuple[pd.DataFrame, str] | None:
    """Table III over every track of params (None when no track has the baseline and a method evaluated)."""
    labels = method_runs(params)
    records, sections = [], []
    for track in params["tracks"]:
        settings = track_settings(params, track)
        base, methods = _collect(params, train_root, eval_root, settings)
        if base is not None and methods:
            sections.append(_track_section(settings, base, methods, labels, decimals, records))
    if not sections:
        return None
    markdown = "\n\n".join(sections) + f"\n\n{NOTE}\n\n{MDE_NOTE}\n\n{VS_PAPER_NOTE}\n"
    return pd.DataFrame(records), markdown


def _track_section(settings: TrackSettings, base: RunResults, methods: dict[str, RunResults],
                   labels: dict[str, str], decimals: int, records: list[dict]) -> str:
    synthetic = settings.synthetic or any(r.provenance(settings)["synthetic"] for r in [base, *methods.values()])
    parts = []
    for split in settings.splits:
        rows = split_rows(base, methods, labels, split)
        cells = [_markdown_cells(rank, row, split, decimals) for rank, row in enumerate(rows)]
        records += [_csv_record(settings.name, split, rank, row) for rank, row in enumerate(rows)]
        title = (f"### Table III: KD methods, track {settings.name}, {split} "
                 f"({settings.dataset}{', SYNTHETIC data' if synthetic else ''})")
        parts.append(f"{title}\n\n{markdown_table(HEADER, cells)}")
    parts.append(code_note({labels.get(run, run): result for run, result in {BASELINE: base, **methods}.items()},
                           settings.splits))
    return "\n\n".join(parts)


def track_differences(params: dict, train_root: Path | None, eval_root: Path,
                      track: str) -> dict[str, list[Row]]:
    """{split: ranked rows} of one track (for the figure); {} when the baseline or every method is missing."""
    settings = track_settings(params, track)
    base, methods = _collect(params, train_root, eval_root, settings)
    if base is None or not methods:
        return {}
    return {split: split_rows(base, methods, method_runs(params), split) for split in settings.splits}


def _collect(params: dict, train_root: Path | None, eval_root: Path,
             settings: TrackSettings) -> tuple[RunResults | None, dict[str, RunResults]]:
    """The baseline and the evaluated methods of one track (ablations at seeds[0], the rest at every seed)."""
    seeds, labels, ablations = list(params["seeds"]), method_runs(params), set(configured_runs(params, ABLATIONS))
    base = collect_track(eval_root, train_root, settings, [BASELINE], seeds).get(BASELINE)
    methods = collect_track(eval_root, train_root, settings, [r for r in labels if r not in ablations], seeds)
    methods.update(collect_track(eval_root, train_root, settings, [r for r in labels if r in ablations], seeds[:1]))
    return base, methods
