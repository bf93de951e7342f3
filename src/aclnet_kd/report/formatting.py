"""How numbers and tables are written in every report file: one place, so the tables agree with each other."""

from __future__ import annotations

import math

# The metric columns' headings, in every table (Markdown with HTML sub-scripts; rendering.py reads them back).
HEADINGS = {"Sm": "S<sub>m</sub> ↑", "MAE": "MAE ↓", "maxF": "maxF ↑", "maxE": "maxE ↑"}


def fmt(value: float | None, decimals: int) -> str:
    """A value at ``decimals`` places; "—" when there is none."""
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{decimals}f}"


def fmt_mean_std(mean: float, std: float, decimals: int) -> str:
    """"0.829 ± 0.022", or the mean alone when the std is NaN (one seed)."""
    return fmt(mean, decimals) if math.isnan(std) else f"{fmt(mean, decimals)} ± {fmt(std, decimals)}"


def fmt_signed(value: float | None, decimals: int) -> str:
    """A difference with its sign and a true minus ("+0.012", "−0.003"); "—" when there is none."""
    if value is None or math.isnan(value):
        return "—"
    return f"{value:+.{decimals}f}".replace("-", "−")


def fmt_interval(low: float | None, high: float | None, decimals: int) -> str:
    """A confidence interval as "[−0.012, +0.034]"; the n = 1 sentence when none can be given."""
    if low is None:
        return "no interval can be given (n = 1)"
    return f"[{fmt_signed(low, decimals)}, {fmt_signed(high, decimals)}]"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured Markdown table; a "|" inside a cell is escaped."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)
