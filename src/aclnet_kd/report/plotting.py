"""What every figure of the report shares: matplotlib without a display, and saving PNG + PDF."""

from __future__ import annotations

from pathlib import Path


def pyplot():  # noqa: ANN201  (matplotlib.pyplot, imported on first use: the tables never load it)
    """matplotlib.pyplot on the Agg back end (files only, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, out_dir: Path, stem: str) -> list[Path]:  # noqa: ANN001
    """Save ``stem``.png and ``stem``.pdf (``aclnet figures`` renders into a temp folder, then moves them)."""
    written = []
    for suffix in (".png", ".pdf"):
        fig.savefig(out_dir / f"{stem}{suffix}", dpi=150, bbox_inches="tight")
        written.append(out_dir / f"{stem}{suffix}")
    pyplot().close(fig)
    return written
