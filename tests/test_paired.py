"""Paired statistics: Holm by hand, the test chosen by the number of pairs, the seeds-needed
formula against G*Power's published sample size, and the honest best cell of a table row."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from optbench.platform.paired import best_cells, holm, paired_test, seeds_needed


def test_holm_by_hand() -> None:
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> monotone: 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, math.nan]) == pytest.approx([1.0, 1.0])


def test_test_choice_by_number_of_pairs() -> None:
    assert paired_test([1, 2, 3, 4, 5, 6]).test == "Wilcoxon signed-rank"
    assert paired_test([1, 2, 3, 4, 5, 6]).p_holds == pytest.approx(1 / 64)
    five = paired_test([1, 2, 3, 4, 5])
    assert five.test == "paired t"
    assert five.p_holds == pytest.approx(
        stats.t.sf(3 / (np.std([1, 2, 3, 4, 5], ddof=1) / 5**0.5), 4)
    )


def test_seeds_needed_matches_gpower() -> None:
    # G*Power, one-tailed paired t, dz = 0.5, alpha 0.05, power 0.8: N = 27; from 6 pairs on
    # the signed-rank test decides, at efficiency 3/pi
    assert seeds_needed(0.5, 0.05) == math.ceil(27 * math.pi / 3)
    assert seeds_needed(-0.5, 0.05) == seeds_needed(0.5, 0.05)
    assert seeds_needed(0.0, 0.05) is None and seeds_needed(1e-4, 0.05) is None
    assert seeds_needed(5.0, 0.05) == 3  # t test regime: few pairs suffice for a huge effect


def test_best_cell_only_when_significantly_best() -> None:
    base = pd.Series(1 + np.abs(np.random.default_rng(0).normal(size=6)))
    clear = best_cells({"a": base * 0.5, "b": base, "c": base * 2}, "min")
    assert clear == {"a": "best", "b": "", "c": ""}
    assert best_cells({"a": base * 0.5, "b": base, "c": base * 2}, "max")["c"] == "best"
    # b is within noise of a with 3 seeds: both tied, c clearly worse
    a = pd.Series([1.00, 1.10, 0.95])
    b = pd.Series([1.02, 1.05, 1.00])
    marks = best_cells({"a": a, "b": b, "c": a * 3}, "min")
    assert marks == {"a": "tied", "b": "tied", "c": ""}
    # identical over seeds: decided exactly; a single cell is never marked
    exact = best_cells({"a": pd.Series([1.0, 1.0]), "b": pd.Series([2.0, 2.0])}, "min")
    assert exact == {"a": "best", "b": ""}
    assert best_cells({"a": a}, "min") == {"a": ""}
    # a cell diverged on every seed is beaten on every seed; one seed decides nothing
    assert best_cells({"a": a, "b": pd.Series([math.inf] * 3)}, "min")["a"] == "best"
    assert best_cells({"a": pd.Series([1.0]), "b": pd.Series([2.0])}, "min")["a"] == "tied"
