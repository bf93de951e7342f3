"""Paired-by-seed differences between two runs, with a Student-t confidence interval and a verdict.

The decision rule (written in the tables' footnotes): the difference A - B is computed per seed, and its mean
gets a two-sided ``confidence`` interval from Student's t with n - 1 degrees of freedom. The verdict is "gain"
when the whole interval is on the better side of 0, "loss" when it is on the worse side, and "no detectable
difference" when it contains 0. With one seed no interval can be given.

What the study could see: the minimum detectable effect (MDE), the smallest true mean difference that this
two-sided paired t-test at alpha = 0.05 detects with 80% power given the observed paired sd and n (scipy's
noncentral t, solved with ``scipy.optimize.brentq``), and a second verdict against a claimed difference (the
paper's): "claim excluded" when the claim lies outside the interval, "consistent with the claim" inside.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from scipy import optimize as scipy_optimize
from scipy import stats as scipy_stats

from aclnet_kd.errors import AclnetError

GAIN, NONE, LOSS = "gain", "no detectable difference", "loss"
NO_INTERVAL = "no interval (n = 1)"
CLAIM_EXCLUDED, CLAIM_CONSISTENT, NO_CLAIM = "claim excluded", "consistent with the claim", "—"
MDE_ALPHA, MDE_POWER = 0.05, 0.80  # the MDE's test level (two-sided) and power


@dataclass(frozen=True)
class PairedDifference:
    """Mean of A - B over the paired seeds, its interval (None when n = 1) and the verdict."""

    n: int
    mean: float
    ci_low: float | None
    ci_high: float | None
    confidence: float
    verdict: str
    seeds: tuple[int, ...]
    sd: float | None = None  # sample sd of the per-seed differences (None when n = 1)
    mde: float | None = None  # minimum detectable effect at MDE_ALPHA / MDE_POWER (None when n = 1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _verdict(low: float, high: float, higher_is_better: bool) -> str:
    if low > 0:
        return GAIN if higher_is_better else LOSS
    if high < 0:
        return LOSS if higher_is_better else GAIN
    return NONE


def difference_interval(differences: Mapping[int, float], confidence: float = 0.95,
                        higher_is_better: bool = True) -> PairedDifference:
    """Mean, t interval and verdict of per-seed differences ``{seed: A - B}``."""
    if not 0 < confidence < 1:
        raise AclnetError(f"confidence must be in (0, 1), got {confidence}")
    if not differences:
        raise AclnetError("paired difference: no seed in common between the two runs")
    seeds = tuple(sorted(differences))
    values = [float(differences[seed]) for seed in seeds]
    if any(math.isnan(value) for value in values):
        raise AclnetError(f"paired difference: NaN among the per-seed values {dict(zip(seeds, values))}")
    n = len(values)
    mean = sum(values) / n
    if n == 1:
        return PairedDifference(1, mean, None, None, confidence, NO_INTERVAL, seeds)
    sd = math.sqrt(sum((value - mean) ** 2 for value in values) / (n - 1))
    half = float(scipy_stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    low, high = mean - half, mean + half
    return PairedDifference(n, mean, low, high, confidence, _verdict(low, high, higher_is_better), seeds, sd,
                            minimum_detectable_effect(sd, n))


def paired_t_power(effect: float, sd: float, n: int, alpha: float = MDE_ALPHA) -> float:
    """Power of the two-sided one-sample (paired) t-test at level ``alpha`` when the true mean difference is
    ``effect``: P(|T| > t_crit) with T ~ noncentral t(n - 1, effect * sqrt(n) / sd)."""
    df, crit = n - 1, float(scipy_stats.t.ppf(1 - alpha / 2, n - 1))
    nc = effect * math.sqrt(n) / sd
    # P(T < -crit) written as the upper tail at -nc: scipy's nct.cdf far in the lower tail returns NaN
    return float(scipy_stats.nct.sf(crit, df, nc) + scipy_stats.nct.sf(crit, df, -nc))


def minimum_detectable_effect(sd: float | None, n: int, alpha: float = MDE_ALPHA,
                              power: float = MDE_POWER) -> float | None:
    """The smallest true |mean difference| that the two-sided paired t-test at ``alpha`` detects with
    probability ``power``, for per-seed differences of sd ``sd`` over ``n`` seeds (None when n < 2).

    Solves ``paired_t_power(d) = power`` for d with scipy's noncentral t and ``brentq``. For large n it tends
    to (z_{1-alpha/2} + z_power) sd / sqrt(n) = 2.80 sd / sqrt(n).
    """
    if n < 2 or sd is None or math.isnan(sd):
        return None
    if sd == 0:
        return 0.0
    if not (0 < alpha < 1 and alpha < power < 1):
        raise AclnetError(f"minimum detectable effect: need 0 < alpha < power < 1, got {alpha}, {power}")
    high = sd / math.sqrt(n)
    while paired_t_power(high, sd, n, alpha) < power:  # the power rises with the effect: bracket the root
        high *= 2
    return float(scipy_optimize.brentq(lambda d: paired_t_power(d, sd, n, alpha) - power, 0.0, high,
                                       xtol=1e-12 * high, rtol=1e-10))


def decisive_probability(sd: float, n: int, claim: float, confidence: float = 0.95) -> float:
    """Probability that n seeds give a ``confidence`` interval narrower than |claim| (half-width < |claim|/2),
    when the per-seed differences have true sd ``sd``: such an interval cannot hold both 0 and the claim, so it
    confirms a gain (excludes 0) or excludes the claim. The sample variance is sd^2 chi2(n-1)/(n-1)."""
    quantile = float(scipy_stats.t.ppf(0.5 + confidence / 2, n - 1))
    widest_sd = abs(claim) / 2 * math.sqrt(n) / quantile  # the largest sample sd that still decides
    return float(scipy_stats.chi2.cdf((n - 1) * (widest_sd / sd) ** 2, n - 1))


def decisive_seeds(sd: float, claim: float, confidence: float = 0.95, assurance: float = 0.90,
                   n_max: int = 200) -> int:
    """The smallest n (>= 2) whose interval decides about ``claim`` (:func:`decisive_probability`) with
    probability >= ``assurance`` at the planning sd ``sd``."""
    for n in range(2, n_max + 1):
        if decisive_probability(sd, n, claim, confidence) >= assurance:
            return n
    raise AclnetError(f"decisive seeds: more than {n_max} seeds for sd {sd} and claim {claim}")


def claim_verdict(claim: float | None, low: float | None, high: float | None) -> str:
    """"consistent with the claim" when ``claim`` lies in [low, high], "claim excluded" when outside, "—" when
    there is no claim (None or NaN) or no interval (n = 1)."""
    if claim is None or low is None or high is None or math.isnan(claim):
        return NO_CLAIM
    return CLAIM_CONSISTENT if low <= claim <= high else CLAIM_EXCLUDED


def paired_difference(a: Mapping[int, float], b: Mapping[int, float], confidence: float = 0.95,
                      higher_is_better: bool = True) -> PairedDifference:
    """A - B paired by seed (e.g. S* - S: the distilled and the plain student of the same seed).

    Both runs must have the same seeds: a seed present on one side only is an error naming it, rather than a
    silently smaller n. ``higher_is_better``: True for Sm, maxF, meanF, Em; False for MAE.
    """
    if set(a) != set(b):
        raise AclnetError(f"paired difference: the seeds differ ({sorted(a)} vs {sorted(b)}); pair runs of the "
                          "same seeds")
    return difference_interval({seed: a[seed] - b[seed] for seed in a}, confidence, higher_is_better)


def difference_from_single(value: float, b: Mapping[int, float], confidence: float = 0.95,
                           higher_is_better: bool = True) -> PairedDifference:
    """A - B where A is one run (the teacher, trained once) and B has one run per seed (T - S).

    Each seed's difference uses the same A, so the interval reflects the spread of B over seeds only; the
    teacher's own seed-to-seed spread is not measured (it is trained once).
    """
    return difference_interval({seed: float(value) - b[seed] for seed in b}, confidence, higher_is_better)
