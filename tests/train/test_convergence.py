"""train.convergence.plateau: the rule 'best val Sm gains < tol over the last quarter of the epochs'."""

import math

import pytest

from aclnet_kd.errors import AclnetError
from aclnet_kd.train.convergence import judge_history, plateau


def test_flat_tail_converged():
    # 8 epochs -> window 2: best before the window (epoch 6) 0.80, final best 0.805: gain 0.005 < 0.01
    history = [0.5, 0.6, 0.7, 0.75, 0.78, 0.80, 0.803, 0.805]
    converged, figures = plateau(history)
    assert converged is True
    assert figures["window"] == 2 and figures["epochs"] == 8
    assert figures["gain"] == pytest.approx(0.005) and figures["best_before_window"] == pytest.approx(0.80)
    assert figures["best_final"] == pytest.approx(0.805)


def test_rising_tail_not_converged():
    history = [0.5, 0.6, 0.7, 0.75, 0.78, 0.80, 0.82, 0.84]   # gain 0.04 over the last 2 epochs
    converged, figures = plateau(history)
    assert converged is False and figures["gain"] == pytest.approx(0.04)


def test_raw_scores_are_turned_into_best_so_far():
    # A dip at the end does not count as a loss: the best so far is what selection keeps.
    history = [0.5, 0.7, 0.8, 0.805, 0.60, 0.79, 0.70, 0.65]
    converged, figures = plateau(history)
    assert converged is True and figures["gain"] == pytest.approx(0.0)


def test_window_rounds_up_and_tol_is_strict():
    # 10 epochs: ceil(2.5) = 3 epochs in the window; gain exactly tol is not a plateau
    history = [0.1] * 6 + [0.50, 0.505, 0.51, 0.51]
    converged, figures = plateau(history, tol=0.01)
    assert figures["window"] == 3 and figures["gain"] == pytest.approx(0.01)
    assert converged is False
    assert plateau(history, tol=0.0101)[0] is True


def test_single_epoch_cannot_converge():
    converged, figures = plateau([0.9])
    assert converged is False and figures["gain"] is None


@pytest.mark.parametrize("args, match", [(([],), "empty"), (([0.1, math.nan],), "NaN"),
                                         (([0.1, 0.2], 0.0), "fraction"), (([0.1, 0.2], 0.25, 0), "tol")])
def test_bad_input(args, match):
    with pytest.raises(AclnetError, match=match):
        plateau(*args)


def _logs(scores, key="val/sm"):
    return [{"epoch": i + 1, key: score} for i, score in enumerate(scores)]


def test_judge_history_applies_the_rule_to_val_sm():
    converged, figures = judge_history(_logs([0.5, 0.6, 0.7, 0.75, 0.78, 0.80, 0.803, 0.805]), "best_val", "val", 8)
    assert converged is True and figures["metric"] == "val/sm" and figures["gain"] == pytest.approx(0.005)
    converged, figures = judge_history(_logs([0.5, 0.6, 0.7, 0.75, 0.78, 0.80, 0.82, 0.84]), "best_val", "val", 8)
    assert converged is False and figures["gain"] == pytest.approx(0.04)


@pytest.mark.parametrize("logs, protocol, epochs, reason", [
    (_logs([0.5, 0.6]), "best_val", 4, "not finished (2 of 4 epochs)"),
    (_logs([0.5, 0.6]), "last", 2, "selection 'last'"),
    (_logs([0.5, 0.6], key="test/sm"), "paper", 2, "selection 'paper'"),
    (_logs([0.5, 0.6], key="other/sm"), "best_val", 2, "no 'val/sm'"),
])
def test_judge_history_says_why_it_cannot_judge(logs, protocol, epochs, reason):
    converged, figures = judge_history(logs, protocol, "val", epochs)
    assert converged is None and reason in figures["reason"]
