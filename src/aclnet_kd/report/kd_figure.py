"""``kd_methods_<track>``: each KD method's Sm difference from no KD, with its 95% interval, per test split,
beside the paper's reported ACLNet gain (Table III's figure; issue 12).

One panel per test split; one horizontal bar per method (the rows of :mod:`aclnet_kd.report.table3`, ranked):
the point is the mean paired difference method − no KD over seeds, the bar its 95% t interval (no bar with one
seed). The dashed line is the paper's reported ACLNet-S* − ACLNet-S on the split of the same name
(report/reported.csv), when the paper reports that split; the paper's numbers are from the real datasets,
ours may be synthetic (the title says so).
"""

from __future__ import annotations

import math
from pathlib import Path

from aclnet_kd.losses.registry import LABEL
from aclnet_kd.report.collect import track_settings
from aclnet_kd.report.differences import paper_difference
from aclnet_kd.report.plotting import pyplot, save_figure
from aclnet_kd.report.reported import load_reported
from aclnet_kd.report.table3 import RELEASE_SHORT_LABEL, track_differences
from aclnet_kd.workflow.runs import DISTILLATION, RELEASE_RUN
from aclnet_kd.workflow.plan import KD_METHODS_FIGURE, fill


def reported_gain(split: str, key: str = "Sm") -> float | None:
    """The paper's ACLNet-S* − ACLNet-S on ``split`` (None when the paper does not report that split)."""
    gain = paper_difference(load_reported(), DISTILLATION, split, key)
    return None if math.isnan(gain) else gain


def short_label(run: str, label: str) -> str:
    """A tick label that fits beside a panel: ``label + FitNet`` -> ``FitNet``; ACLNet-S* names its terms."""
    if run == RELEASE_RUN.name:
        return RELEASE_SHORT_LABEL
    return label.removeprefix(f"{LABEL} + ")


def kd_methods_figure(params: dict, train_root: Path | None, eval_root: Path, track: str,
                      out_dir: Path) -> list[Path]:
    """The figure of one track (no files when the baseline or every method is missing)."""
    plt = pyplot()
    by_split = track_differences(params, train_root, eval_root, track)
    if not by_split:
        return []
    settings = track_settings(params, track)
    count = max(len(rows) - 1 for rows in by_split.values())
    fig, axes = plt.subplots(1, len(by_split), figsize=(5.0 * len(by_split), 1.6 + 0.45 * count), squeeze=False,
                             layout="constrained")
    for ax, (split, rows) in zip(axes[0], by_split.items()):
        methods = rows[1:][::-1]  # best at the top
        for y, row in enumerate(methods):
            diff = row.difference["Sm"]
            if diff.ci_low is not None:
                ax.plot([diff.ci_low, diff.ci_high], [y, y], color="tab:blue", lw=2)
            ax.plot([diff.mean], [y], "o", color=RELEASE_RUN.colour if row.run == RELEASE_RUN.name else "tab:blue")
        ax.set_yticks(range(len(methods)), [f"{short_label(row.run, row.label)} (n={row.result.n})" for row in methods],
                      fontsize=7)
        ax.set_ylim(-1.3, len(methods) - 0.4)  # room for the legend below the last method
        ax.axvline(0.0, color="black", lw=0.8)
        gain = reported_gain(split)
        if gain is not None:
            ax.axvline(gain, color="tab:red", ls="--", lw=1, label=f"paper: ACLNet {DISTILLATION} = {gain:+.3f} (real data)")
            ax.legend(fontsize=7, loc="lower right")
        ax.tick_params(axis="x", labelsize=7)
        ax.set_title(split, fontsize=9)
    fig.supxlabel("ΔSm vs no KD (method − ACLNet-S, paired by seed): mean and 95% Student-t interval", fontsize=9)
    fig.suptitle(f"KD methods vs no KD, track {track} ({settings.dataset}"
                 f"{', SYNTHETIC data' if settings.synthetic else ''})", fontsize=10)
    return save_figure(fig, out_dir, fill(KD_METHODS_FIGURE, track=track))
