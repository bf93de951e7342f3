"""The decisions of the study: S* − S (does distillation help?) and T − S (does depth help?), per track, test
split and metric, with a Student-t interval over seeds (report/stats.py) and the paper's difference beside it.

``aclnet tables`` writes them as ``differences.{csv,md}`` and uses them for the verdict under each paper table.
It also flags every run whose run.json says it did not converge by the plateau rule (train/convergence.py).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from aclnet_kd.report.collect import RunResults
from aclnet_kd.report.formatting import fmt, fmt_interval, fmt_signed, markdown_table
from aclnet_kd.report.stats import (
    MDE_ALPHA,
    MDE_POWER,
    NO_INTERVAL,
    PairedDifference,
    claim_verdict,
    difference_from_single,
    paired_difference,
)
from aclnet_kd.train.convergence import FRACTION, TOL
from aclnet_kd.workflow.runs import COMPARISONS, LABELS

DIFFERENCE_COLUMNS = ["track", "comparison", "split", "metric", "n", "seeds", "mean", "ci_low", "ci_high",
                      "confidence", "verdict", "paper", "not_converged", "mde", "vs_paper"]
TABLE_METRICS = ("Sm", "MAE", "maxF", "maxE")
HIGHER_IS_BETTER = {"Sm": True, "MAE": False, "maxF": True, "maxE": True}
CONFIDENCE = 0.95
# COMPARISONS (workflow/runs.py): comparison -> (run A, run B), the difference is A − B
DAGGER = "†"
NOT_CONVERGED_NOTE = (f"{DAGGER} did not converge by the plateau rule: over the last {FRACTION:.0%} of its epochs "
                      f"its best validation Sm rose by {TOL} or more, or it had too few epochs to tell "
                      "(run.json `plateau`)")
RULE_NOTE = (
    "Decision rule: the difference A − B is taken per seed (S* − S pairs the two students of the same seed; "
    "T − S uses the one teacher, trained at seeds[0], against each seed's student, so its interval reflects "
    "the students' seed spread only). Its mean gets a two-sided 95% confidence interval from Student's t with "
    "n − 1 degrees of freedom (scipy). Verdict: \"gain\" when the whole interval is on the better side of 0 "
    "(above 0 for Sm, maxF, maxE; below 0 for MAE), \"loss\" when it is on the worse side, \"no detectable "
    f"difference\" when it contains 0. With n = 1 seed no interval can be given (\"{NO_INTERVAL}\")."
)
MDE_NOTE = (f"MDE: the smallest true difference that this two-sided paired t-test at α = {MDE_ALPHA:g} would detect "
            f"with {MDE_POWER:.0%} power, given the observed sd of the per-seed differences and n (scipy's "
            "noncentral t); a real effect smaller than it would usually be reported as \"no detectable difference\".")
VS_PAPER_NOTE = ("vs paper: \"claim excluded\" when the paper's difference (the \"Paper\" column) lies outside our 95% "
                 "interval, \"consistent with the claim\" when inside, — when the paper gives no such difference or "
                 "n < 2 (on synthetic data this compares our stand-in study with the paper's real-data claim).")


def per_seed(result: RunResults, split: str, key: str) -> dict[int, float]:
    return {int(seed): float(value) for seed, value in zip(result.seeds, result.values(split, key))}


def compare(a: RunResults, b: RunResults, split: str, key: str) -> PairedDifference:
    """A − B on one split and metric: paired by seed, or against A's single run (the teacher is trained once)."""
    better = HIGHER_IS_BETTER[key]
    if a.n == 1 and b.n > 1:
        return difference_from_single(a.values(split, key)[0], per_seed(b, split, key), CONFIDENCE, better)
    return paired_difference(per_seed(a, split, key), per_seed(b, split, key), CONFIDENCE, better)


def paper_difference(reported: pd.DataFrame, comparison: str, split: str, key: str) -> float:
    """The paper's A − B on ``split`` (reported.csv), NaN when the paper has no such split."""
    names = [LABELS[run] for run in COMPARISONS[comparison]]
    values = []
    for name in names:
        row = reported[(reported["model"] == name) & (reported["split"] == split)]
        values.append(float(row.iloc[0][key]) if len(row) else float("nan"))
    return values[0] - values[1]


def differences(track: str, runs: dict[str, RunResults], splits: list[str], reported: pd.DataFrame
                ) -> list[dict[str, Any]]:
    """One row per (comparison, split, metric) whose two runs were evaluated (the reported rows of one table)."""
    rows = []
    for comparison, (run_a, run_b) in COMPARISONS.items():
        a, b = runs.get(run_a), runs.get(run_b)
        if a is None or b is None:
            continue
        for split in splits:
            for key in TABLE_METRICS:
                result = compare(a, b, split, key)
                rows.append({"track": track, "comparison": comparison, "split": split, "metric": key,
                             "n": result.n, "seeds": " ".join(map(str, result.seeds)), "mean": result.mean,
                             "ci_low": result.ci_low, "ci_high": result.ci_high, "confidence": result.confidence,
                             "verdict": result.verdict,
                             "paper": paper_difference(reported, comparison, split, key),
                             "not_converged": "; ".join(flag_label(runs[r]) for r in (run_a, run_b)
                                                        if unconverged_seeds(runs[r]))})
                rows[-1].update(mde=result.mde, vs_paper=claim_verdict(rows[-1]["paper"], result.ci_low,
                                                                       result.ci_high))
    return rows


def unconverged_seeds(result: RunResults) -> list[int]:
    """Seeds whose run.json says ``converged: false`` (not judged, None, is not flagged)."""
    return [seed for seed, record in sorted(result.run_info.items()) if record.converged is False]


def flag_label(result: RunResults) -> str:
    """The run's paper label, with † and the seeds when one of its seeds did not converge."""
    label = LABELS.get(result.run, result.run)
    seeds = unconverged_seeds(result)
    return f"{label}{DAGGER} (seed {', '.join(map(str, seeds))})" if seeds else label


def differences_markdown(rows: list[dict[str, Any]], decimals: int, synthetic: bool) -> str:
    """differences.md: one table per comparison, the rule and the paper's claim in the footnotes."""
    data = " on SYNTHETIC data (the embedded stand-ins, not the paper's benchmarks)" if synthetic else ""
    text = f"### Does distillation help (S* − S)? Does depth help (T − S)?{data}\n\n"
    header = ["Track", "Split", "Metric", "n", "Mean", "95% CI", "Verdict", "Paper", "Did not converge", "MDE",
              "vs paper"]
    for comparison in COMPARISONS:
        chosen = [r for r in rows if r["comparison"] == comparison]
        if not chosen:
            text += f"**{comparison}:** not computed (a run of the pair was not evaluated).\n\n"
            continue
        cells = [[r["track"], r["split"], r["metric"], str(r["n"]), fmt_signed(r["mean"], decimals),
                  fmt_interval(r["ci_low"], r["ci_high"], decimals), r["verdict"], fmt_signed(r["paper"], decimals),
                  r["not_converged"] or "—", fmt(r["mde"], decimals), r["vs_paper"]] for r in chosen]
        text += f"**{comparison}**\n\n" + markdown_table(header, cells) + "\n\n"
    notes = [RULE_NOTE, paper_claim_note(), NOT_CONVERGED_NOTE + "; the column names such runs.", MDE_NOTE,
             VS_PAPER_NOTE]
    return text + "\n".join(f"{i}. {n}" for i, n in enumerate(notes, 1)) + "\n"


def paper_claim_note() -> str:
    return ("Paper: the \"Paper\" column is the paper's ACLNet-S* − ACLNet-S (its claim that distillation "
            "helps) and ACLNet-T − ACLNet-S (the depth gap) on the same split, from single reported numbers "
            "with no interval (reported.csv); — where the paper has no such split.")


def claim(row: dict[str, Any], decimals: int) -> str:
    """'95% CI [lo, hi]; verdict', or that no interval can be given with one seed."""
    if row["ci_low"] is None:
        return "no interval can be given with n = 1"
    return f"95% CI {fmt_interval(row['ci_low'], row['ci_high'], decimals)}; {row['verdict']}"


def verdict_text(rows: list[dict[str, Any]], split: str, decimals: int) -> str:
    """The table's verdict on one split: each comparison's Sm and MAE with interval and verdict."""
    sentences = []
    for comparison in COMPARISONS:
        chosen = {r["metric"]: r for r in rows if r["comparison"] == comparison and r["split"] == split}
        if not chosen:
            continue
        parts = [f"{key} {fmt_signed(r['mean'], decimals)} ({claim(r, decimals)}; "
                 f"paper {fmt_signed(r['paper'], decimals)})" for key, r in chosen.items() if key in ("Sm", "MAE")]
        sentences.append(f"{comparison}, n = {chosen['Sm']['n']}: " + ", ".join(parts) + ".")
    return " ".join(sentences)
