"""Paired statistics over seeds: the tests, corrections and sample sizes claims and report
tables use.

Seeds pair runs (same seed = same data and instances), so every comparison is a one-sample
problem on the per-seed differences. ``paired_test`` tests them one-sided in both directions:
Wilcoxon's signed-rank test (``scipy.stats.wilcoxon``) for ``RANK_TEST_MIN`` or more pairs, the
paired t test (``scipy.stats.ttest_1samp`` on the differences) below; differences identical over
two or more seeds decide exactly. ``holm`` is Holm's step-down correction (scipy has none);
``seeds_needed`` the pairs a one-sided test needs for 80% power at an observed effect.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

#: from this many pairs on, the signed-rank test decides; below it, the paired t test.
RANK_TEST_MIN = 6
#: the power at which "seeds needed" is computed.
POWER = 0.8
#: asymptotic relative efficiency of the signed-rank test to the t test (normal data).
WILCOXON_ARE = 3 / math.pi
MAX_SEEDS = 10_000


@dataclass
class Comparison:
    """One paired test: the advantage's one-sided p-values in each direction."""

    n: int
    test: str
    p_holds: float
    p_fails: float
    d_z: float = math.nan  # standardised advantage (mean / sd over seeds)
    exact: bool = False
    label: str = ""  # rank: the other column
    rank_only: bool = False  # diverged runs: only the signed-rank test can decide


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN counts as 1: a test that could not be made)."""
    p = np.nan_to_num(np.asarray(p_values, dtype=float), nan=1.0)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    steps = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(steps, 1.0)
    return adjusted


def paired_test(d: Sequence[float], strict: bool = True) -> Comparison:
    """One-sided tests of E[d] > 0 and E[d] < 0 for the per-seed advantages ``d``.

    ``strict``: with advantages identical over the seeds, the claim holds only for d > 0
    (``better``); otherwise d >= 0 holds too (``no_worse``, a tolerance, a bound)."""
    d = np.asarray(d, dtype=float)
    n = len(d)
    if n == 0:
        return Comparison(0, "no paired seeds", math.nan, math.nan)
    if n >= 2 and np.all(d == d[0]):
        holds = bool(d[0] > 0 if strict else d[0] >= 0)
        return Comparison(
            n,
            f"exact (identical over {n} seeds)",
            0.0 if holds else 1.0,
            1.0 if holds else 0.0,
            d_z=math.inf if holds else -math.inf,
            exact=True,
        )
    if n == 1:
        return Comparison(1, "1 seed: no test", math.nan, math.nan)
    diverged = not np.isfinite(d).all()
    x = ranked(d) if diverged else d  # the order the signed-rank test sees
    d_z = standardised(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if n >= RANK_TEST_MIN:
            return Comparison(
                n,
                "Wilcoxon signed-rank",
                float(stats.wilcoxon(x, alternative="greater").pvalue),
                float(stats.wilcoxon(x, alternative="less").pvalue),
                d_z=d_z,
                rank_only=diverged,
            )
        if diverged:  # no test below RANK_TEST_MIN pairs; d_z sizes the seeds that would decide
            return Comparison(
                n,
                f"diverged runs, {n} < {RANK_TEST_MIN} seeds: no test",
                math.nan,
                math.nan,
                d_z=d_z,
                rank_only=True,
            )
        return Comparison(
            n,
            "paired t",
            float(stats.ttest_1samp(d, 0.0, alternative="greater").pvalue),
            float(stats.ttest_1samp(d, 0.0, alternative="less").pvalue),
            d_z=d_z,
        )


def ranked(d: np.ndarray) -> np.ndarray:
    """``d`` with each infinite difference (a diverged run) replaced by a finite value beyond
    every finite one, of its sign: the order the signed-rank test sees."""
    finite = d[np.isfinite(d)]
    big = 2 * (np.abs(finite).max() if len(finite) else 1.0) + 1.0
    return np.where(np.isfinite(d), d, np.sign(d) * big)


def standardised(d: np.ndarray) -> float:
    sd = float(np.std(d, ddof=1))
    mean = float(np.mean(d))
    if sd == 0:
        return math.copysign(math.inf, mean) if mean else 0.0
    return mean / sd


def seeds_needed(
    d_z: float, alpha: float, power: float = POWER, rank_only: bool = False
) -> int | None:
    """Pairs needed for a one-sided paired test at level ``alpha`` to reach ``power`` at the
    standardised effect ``d_z`` (noncentral t; the signed-rank test's efficiency where it
    applies, and always with ``rank_only``: diverged runs, at least ``RANK_TEST_MIN`` pairs).
    None when no number of seeds would do (no effect) or more than ``MAX_SEEDS``."""
    if not math.isfinite(d_z) or d_z == 0:
        return None
    n = np.arange(2, MAX_SEEDS + 1)
    critical = stats.t.ppf(1 - alpha, n - 1)
    achieved = stats.nct.sf(critical, n - 1, abs(d_z) * np.sqrt(n))
    enough = np.nonzero(achieved >= power)[0]
    if not len(enough):
        return None
    needed = int(n[enough[0]])
    if needed >= RANK_TEST_MIN or rank_only:
        # the exact signed-rank test cannot go below 2**-n, and is a little less efficient
        needed = max(
            math.ceil(needed / WILCOXON_ARE), math.ceil(-math.log2(alpha)) + 1, RANK_TEST_MIN
        )
    return needed if needed <= MAX_SEEDS else None


def mean_interval(x: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95% t-interval (NaN bounds for fewer than two values)."""
    x = np.asarray(x, dtype=float)
    mean = float(np.mean(x)) if len(x) else math.nan
    if len(x) < 2 or not np.isfinite(x).all():
        return mean, math.nan, math.nan
    if np.ptp(x) == 0:
        return mean, mean, mean
    low, high = stats.ttest_1samp(x, 0.0).confidence_interval(0.95)
    return mean, float(low), float(high)


def best_cells(
    values: Mapping[Hashable, pd.Series], goal: str, alpha: float = 0.05
) -> dict[Hashable, str]:
    """Which cells of one table row are best, honestly: ``values`` maps each cell to its
    (scored) metric indexed by seed. The cell with the best mean is tested against every other
    (paired over common seeds, Holm across them): ``"best"`` when it is significantly better
    than all of them, else it and every cell not significantly worse than it are ``"tied"``;
    the rest ``""``. A row of one cell marks nothing."""
    cells = {key: series.dropna() for key, series in values.items()}
    marks: dict[Hashable, str] = {key: "" for key in cells}
    if len(cells) < 2:
        return marks
    sign = -1.0 if goal == "min" else 1.0  # larger sign * value = better

    def score(key: Hashable) -> float:
        series = cells[key]
        return sign * float(np.mean(series.to_numpy())) if len(series) else -math.inf

    best = max(cells, key=score)
    others = [key for key in cells if key != best]
    p_values = []
    for key in others:
        seeds = cells[best].index.intersection(cells[key].index)
        with np.errstate(invalid="ignore"):
            d = sign * (cells[best][seeds].to_numpy() - cells[key][seeds].to_numpy())
        d = np.where(np.isnan(d), 0.0, d)  # both diverged: a tie
        p_values.append(paired_test(d, strict=True).p_holds)
    adjusted = holm(p_values)
    if np.all(adjusted < alpha):
        marks[best] = "best"
        return marks
    marks[best] = "tied"
    for key, p in zip(others, adjusted, strict=True):
        if not p < alpha:
            marks[key] = "tied"
    return marks
