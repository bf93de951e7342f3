"""matplotlib's set-up, once for every figure writer (figures.py, kd_figure.py)."""

from __future__ import annotations

from types import ModuleType


def pyplot() -> ModuleType:
    """``matplotlib.pyplot`` on the Agg backend: files only, no display (imported when a figure is drawn,
    so that importing the report modules stays cheap)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
