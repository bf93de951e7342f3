"""report.stats: paired-by-seed differences, Student-t intervals and verdicts, against values computed by hand.

t quantiles (two-sided 95 %): t(0.975, 1) = 12.706205, t(0.975, 2) = 4.302653 (printed tables).
"""

import math

import pytest

from aclnet_kd.errors import AclnetError
from aclnet_kd.report.stats import (
    GAIN, LOSS, NO_INTERVAL, NONE, difference_from_single, difference_interval, paired_difference,
)


def test_gain_three_seeds():
    # A - B = 0.02, 0.04, 0.03: mean 0.03, sd 0.01, se 0.01/sqrt(3) = 0.0057735, half = 4.302653 * se = 0.0248414
    a = {0: 0.82, 1: 0.84, 2: 0.83}
    b = {0: 0.80, 1: 0.80, 2: 0.80}
    d = paired_difference(a, b)
    assert d.n == 3 and d.seeds == (0, 1, 2) and d.confidence == 0.95
    assert d.mean == pytest.approx(0.03, abs=1e-12)
    assert d.ci_low == pytest.approx(0.03 - 0.0248414, abs=1e-6)
    assert d.ci_high == pytest.approx(0.03 + 0.0248414, abs=1e-6)
    assert d.verdict == GAIN


def test_interval_containing_zero():
    # A - B = 0.01, -0.01: mean 0, sd sqrt(0.0002) = 0.0141421, se 0.01, half = 12.706205 * 0.01
    d = paired_difference({3: 0.51, 4: 0.49}, {3: 0.50, 4: 0.50})
    assert d.mean == pytest.approx(0.0, abs=1e-12)
    assert (d.ci_low, d.ci_high) == (pytest.approx(-0.12706205, abs=1e-6), pytest.approx(0.12706205, abs=1e-6))
    assert d.verdict == NONE


def test_loss_and_lower_is_better():
    diffs = {0: -0.05, 1: -0.07, 2: -0.06}   # mean -0.06, half 0.0248414
    sm = difference_interval(diffs)
    assert sm.verdict == LOSS
    assert sm.ci_high == pytest.approx(-0.06 + 0.0248414, abs=1e-6)
    mae = difference_interval(diffs, higher_is_better=False)   # a lower MAE is a gain
    assert mae.verdict == GAIN
    assert difference_interval({0: 0.05, 1: 0.07, 2: 0.06}, higher_is_better=False).verdict == LOSS


def test_one_seed_gives_no_interval():
    d = paired_difference({0: 0.9}, {0: 0.8})
    assert d.n == 1 and d.mean == pytest.approx(0.1)
    assert d.ci_low is None and d.ci_high is None and d.verdict == NO_INTERVAL


def test_teacher_minus_students():
    # T = 0.90 once; S = 0.85, 0.86, 0.84 -> differences 0.05, 0.04, 0.06 (mean 0.05, sd 0.01)
    d = difference_from_single(0.90, {0: 0.85, 1: 0.86, 2: 0.84})
    assert d.mean == pytest.approx(0.05, abs=1e-12)
    assert d.ci_low == pytest.approx(0.05 - 0.0248414, abs=1e-6) and d.verdict == GAIN


def test_identical_differences_have_zero_width():
    d = difference_interval({0: 0.02, 1: 0.02})
    assert d.ci_low == pytest.approx(0.02) and d.ci_high == pytest.approx(0.02) and d.verdict == GAIN


def test_bad_input_names_the_problem():
    with pytest.raises(AclnetError, match=r"seeds differ"):
        paired_difference({0: 0.8, 1: 0.8}, {0: 0.7})
    with pytest.raises(AclnetError, match="no seed"):
        difference_interval({})
    with pytest.raises(AclnetError, match="NaN"):
        difference_interval({0: math.nan, 1: 0.1})
    with pytest.raises(AclnetError, match="confidence"):
        difference_interval({0: 0.1, 1: 0.2}, confidence=1.5)
