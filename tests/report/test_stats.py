"""report.stats: paired-by-seed differences, Student-t intervals and verdicts, against values computed by hand.

t quantiles (two-sided 95 %): t(0.975, 1) = 12.706205, t(0.975, 2) = 4.302653 (printed tables).
"""

import math

import pytest

from aclnet_kd.errors import AclnetError
from aclnet_kd.report.stats import (
    GAIN, LOSS, NO_INTERVAL, NONE, difference_from_single, difference_interval, paired_difference,
    CLAIM_CONSISTENT, CLAIM_EXCLUDED, NO_CLAIM, claim_verdict, decisive_probability, decisive_seeds,
    minimum_detectable_effect, paired_t_power,
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


# ------------------------------------------------------------------ what the study could see (issue 25)
def power_by_integration(effect: float, sd: float, n: int) -> float:
    """The paired t-test's power written out, independently of scipy's nct: T = (Z + nc) / sqrt(V / df) with
    V ~ chi2(df), so P(|T| > c) = E_V[ Phi(-c sqrt(V/df) + nc) + Phi(-c sqrt(V/df) - nc) ] (quad over V)."""
    from scipy import integrate, stats

    df, c, nc = n - 1, stats.t.ppf(0.975, n - 1), effect * math.sqrt(n) / sd
    f = lambda v: stats.chi2.pdf(v, df) * (stats.norm.cdf(-c * math.sqrt(v / df) + nc)  # noqa: E731
                                         + stats.norm.cdf(-c * math.sqrt(v / df) - nc))
    return integrate.quad(f, 0, math.inf, limit=200)[0]


@pytest.mark.parametrize("n", [2, 3, 5, 10])
def test_mde_has_80_percent_power_by_an_independent_integration(n):
    sd = 0.01
    mde = minimum_detectable_effect(sd, n)
    assert power_by_integration(mde, sd, n) == pytest.approx(0.80, abs=1e-6)
    assert paired_t_power(mde, sd, n) == pytest.approx(0.80, abs=1e-9)
    assert power_by_integration(0.9 * mde, sd, n) < 0.80 < power_by_integration(1.1 * mde, sd, n)


def test_mde_hand_computed_cases():
    # Large n: the t test becomes the z test, MDE -> (z_0.975 + z_0.80) sd / sqrt(n) = (1.959964 + 0.841621) sd /
    # sqrt(n) = 2.801585 sd / sqrt(n); at n = 10000, sd = 1 that is 0.0280159 (the t correction is < 0.1%).
    assert minimum_detectable_effect(1.0, 10_000) == pytest.approx(0.0280159, rel=1e-3)
    # It scales with sd: the test only sees effect / sd.
    assert minimum_detectable_effect(0.02, 3) == pytest.approx(2 * minimum_detectable_effect(0.01, 3), rel=1e-9)
    # The demo's rail S* - S (n = 3, 95% interval [-0.020, +0.021]): half-width 0.0205 = t(0.975, 2) sd / sqrt 3
    # -> sd = 0.0205 sqrt 3 / 4.302653 = 0.0082524; MDE(n = 3) = 0.0269 (3.264 sd / sqrt 3).
    sd = 0.0205 * math.sqrt(3) / 4.302653
    assert minimum_detectable_effect(sd, 3) == pytest.approx(0.02694, abs=5e-5)
    assert minimum_detectable_effect(sd, 1) is None and minimum_detectable_effect(0.0, 4) == 0.0


def test_mde_by_simulation_at_three_seeds():
    # 40000 simulated 3-seed studies with a true difference of MDE: the t test rejects in 80% of them.
    import numpy as np
    from scipy import stats

    rng = np.random.default_rng(0)
    mde = minimum_detectable_effect(1.0, 3)
    d = rng.normal(mde, 1.0, size=(40_000, 3))
    t = d.mean(1) / (d.std(1, ddof=1) / math.sqrt(3))
    assert np.mean(np.abs(t) > stats.t.ppf(0.975, 2)) == pytest.approx(0.80, abs=0.01)  # sd of the rate: 0.002


def test_difference_interval_carries_sd_and_mde():
    # A - B = 0.02, 0.04, 0.03: sd 0.01, so mde = MDE(0.01, 3)
    d = paired_difference({0: 0.82, 1: 0.84, 2: 0.83}, {0: 0.80, 1: 0.80, 2: 0.80})
    assert d.sd == pytest.approx(0.01, abs=1e-12)
    assert d.mde == pytest.approx(minimum_detectable_effect(0.01, 3), rel=1e-9)
    one = paired_difference({0: 0.82}, {0: 0.80})
    assert one.sd is None and one.mde is None


def test_claim_verdict_inside_outside_and_none():
    # the 3-seed gain above: interval 0.03 +- 0.0248414 = [0.0051586, 0.0548414]
    d = paired_difference({0: 0.82, 1: 0.84, 2: 0.83}, {0: 0.80, 1: 0.80, 2: 0.80})
    assert claim_verdict(0.014, d.ci_low, d.ci_high) == CLAIM_CONSISTENT
    assert claim_verdict(0.06, d.ci_low, d.ci_high) == CLAIM_EXCLUDED
    assert claim_verdict(0.0, d.ci_low, d.ci_high) == CLAIM_EXCLUDED
    assert claim_verdict(float("nan"), d.ci_low, d.ci_high) == NO_CLAIM == "—"
    assert claim_verdict(0.014, None, None) == NO_CLAIM  # n = 1
    assert claim_verdict(-0.02, -0.02, 0.01) == CLAIM_CONSISTENT  # the bounds belong to the interval


def test_decisive_seeds_for_the_rail_claim():
    # With n seeds the interval is narrower than 0.014 (so it cannot hold both 0 and +0.014) when the sample sd
    # is below 0.007 sqrt(n) / t(0.975, n - 1); the sample variance is sd^2 chi2(n-1)/(n-1). At the demo's
    # sd = 0.0082524: n = 11 gives P = chi2.cdf(10 (0.007 sqrt 11 / 2.228139 / 0.0082524)^2, 10) = 0.899,
    # n = 12 gives 0.949: 12 seeds for 90% assurance.
    from scipy import stats

    sd = 0.0205 * math.sqrt(3) / 4.302653
    hand = stats.chi2.cdf(10 * (0.007 * math.sqrt(11) / 2.228139 / sd) ** 2, 10)
    assert decisive_probability(sd, 11, 0.014) == pytest.approx(hand, rel=1e-5)
    assert hand == pytest.approx(0.899, abs=1e-3)
    assert decisive_seeds(sd, 0.014) == 12
    assert decisive_seeds(sd, 0.014, assurance=0.5) == 8
