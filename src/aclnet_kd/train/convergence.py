"""The plateau rule that says whether a training run converged.

A run has converged when, over the last ``fraction`` of its epochs, the best validation score so far (S-measure,
higher is better) improved by less than ``tol``. The best-so-far curve is what model selection sees, so a run
whose selected checkpoint would still change noticeably with more epochs has not converged.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from aclnet_kd.errors import AclnetError

FRACTION, TOL = 0.25, 0.01  # the rule: the last quarter of the epochs, a gain under 0.01 Sm


def plateau(best_val_history: Sequence[float], fraction: float = FRACTION, tol: float = TOL
            ) -> tuple[bool, dict[str, Any]]:
    """Apply the rule to the per-epoch validation scores (raw or best-so-far; higher is better).

    The window is the last ``ceil(fraction * epochs)`` epochs (at least one); the gain is the best score at
    the end minus the best score just before the window. With a single epoch there is nothing before the
    window, so the run cannot be shown to have converged. Returns ``(converged, figures)``; the figures are
    what run.json and the tables report beside the verdict.
    """
    if not 0 < fraction < 1:
        raise AclnetError(f"plateau: fraction must be in (0, 1), got {fraction}")
    if not tol > 0:
        raise AclnetError(f"plateau: tol must be > 0, got {tol}")
    scores = [float(value) for value in best_val_history]
    if not scores:
        raise AclnetError("plateau: empty validation history (no epoch was evaluated)")
    if any(math.isnan(value) for value in scores):
        raise AclnetError("plateau: the validation history holds NaN")
    best = [max(scores[: i + 1]) for i in range(len(scores))]   # best so far, whatever was passed
    epochs = len(best)
    window = max(1, math.ceil(fraction * epochs))
    figures: dict[str, Any] = {"rule": f"best val Sm gains < {tol} over the last {fraction:.0%} of epochs",
                               "epochs": epochs, "window": window, "fraction": fraction, "tol": tol,
                               "best_final": best[-1]}
    if window >= epochs:
        figures.update(best_before_window=None, gain=None)
        return False, figures
    before = best[epochs - window - 1]
    gain = best[-1] - before
    figures.update(best_before_window=before, gain=gain)
    return bool(gain < tol), figures


def judge_history(history: Sequence[Mapping[str, Any]], protocol: str, val_split: str, epochs: int
                  ) -> tuple[bool | None, dict[str, Any]]:
    """The plateau verdict of a run from its per-epoch logs (``{val_split}/sm`` each epoch).

    Returns ``(None, {"reason": ...})`` when the rule does not apply: the run is not finished, its selection
    is ``last`` (it keeps the final epoch, not the best validation score the rule follows) or ``paper`` (it
    monitors the test split, which must not judge anything), or no held-out split was validated.
    """
    key = f"{val_split}/sm"
    if len(history) < epochs:
        return None, {"reason": f"not finished ({len(history)} of {epochs} epochs)"}
    if protocol != "best_val":
        return None, {"reason": f"selection '{protocol}' does not select on a held-out validation split"}
    if not history or any(key not in log for log in history):
        return None, {"reason": f"no '{key}' in every epoch's log (no held-out validation split)"}
    converged, figures = plateau([log[key] for log in history])
    return converged, {"metric": key, **figures}
