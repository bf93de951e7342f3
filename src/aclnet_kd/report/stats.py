"""Paired-by-seed differences between two runs, with a Student-t confidence interval and a verdict.

The decision rule (written in the tables' footnotes): the difference A - B is computed per seed, and its mean
gets a two-sided ``confidence`` interval from Student's t with n - 1 degrees of freedom. The verdict is "gain"
when the whole interval is on the better side of 0, "loss" when it is on the worse side, and "no detectable
difference" when it contains 0. With one seed no interval can be given.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from scipy import stats as scipy_stats

from aclnet_kd.errors import AclnetError

GAIN, NONE, LOSS = "gain", "no detectable difference", "loss"
NO_INTERVAL = "no interval (n = 1)"


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
    return PairedDifference(n, mean, low, high, confidence, _verdict(low, high, higher_is_better), seeds)


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
