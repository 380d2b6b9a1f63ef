"""Paper claims decided with paired statistics over seeds.

A claim (``schema.ClaimSpec``, a list under the experiment's ``report.claims``) is decided on the
runs the report table chose (per cell: the tuned configuration, every seed), one test per row of
the table, pairing the runs of two columns by seed (same seed = same data and instances: common
random numbers).

Every test is about a per-seed *advantage* ``d`` that is positive when the claim holds for that
seed (e.g. ``b - a`` for "a has the smaller gap"). Per row of the table:

- one-sided tests of ``E[d] > 0`` (the claim *holds*) and ``E[d] < 0`` (it *fails*): Wilcoxon's
  signed-rank test (``scipy.stats.wilcoxon``) for ``n >= 6`` pairs, the paired t test
  (``scipy.stats.ttest_1samp`` on the differences) below; ``trend`` with three or more ordered
  values uses Page's L test (``scipy.stats.page_trend_test``); ``reference`` two one-sided tests
  (TOST). Advantages identical over two or more seeds (the seed does not change the outcome)
  decide exactly, without a test. ``rank`` tests ``a`` against each other column and combines
  (``RowResult.raw_p_holds``);
- the rows' p-values are Holm-corrected across the claim's rows, each direction on its own;
- a row *holds* / *fails* when its corrected p-value is below ``alpha``, else it is undecided.

The verdict follows from the rows and ``across``: ``reproduced`` when the claim holds in every
row (``all``), in more than half of them (``majority``) or in one (``any``); ``contradicted``
when enough rows fail that it cannot; ``inconclusive`` otherwise, with the number of seeds that
would decide it at the observed effects (80% power of a one-sided paired t test at level
``alpha / rows``, divided by 0.955 -- the signed-rank test's asymptotic relative efficiency --
where that test applies).

Effects are shown with 95% t-intervals: the paired ratio ``a/b`` (geometric mean over seeds, the
interval on the log ratios) when both are positive, the mean difference otherwise. A diverged or
non-finite run counts as the worst value: ranked last by the Wilcoxon test, and with fewer than
six seeds such a row is undecided (no t test on infinities) unless every seed agrees.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from scipy import stats

from optbench.platform.errors import ConfigError
from optbench.platform.paired import (
    Comparison,
    holm,
    mean_interval,
    paired_test,
    seeds_needed,
    standardised,
)
from optbench.platform.results import value_column
from optbench.platform.schema import ClaimSpec

VERDICTS = ("reproduced", "contradicted", "inconclusive")
ID = re.compile(r"^[a-z0-9_]+$")

#: per kind: the keys it requires and the keys that have no meaning for it.
REQUIRED = {
    "compare": ("a", "b"),
    "ratio": ("a", "op", "bound"),
    "reference": ("a", "reference", "tolerance"),
    "rank": ("a",),
    "trend": ("a", "over", "direction"),
}
ONLY_FOR = {
    "b": ("compare", "ratio", "trend"),
    "op": ("ratio",),
    "bound": ("ratio",),
    "reference": ("reference",),
    "tolerance": ("reference",),
    "over": ("trend",),
    "direction": ("trend",),
}

#: (run ids, metric) -> the evaluation series: a frame with columns run_id, step, value.
SeriesReader = Callable[[list[str], str], pd.DataFrame]


# -- the claim, validated ------------------------------------------------------------------------
@dataclass
class Claim:
    """A validated claim with its defaults filled in (enums as their values)."""

    id: str
    kind: str
    text: str
    source: str
    metric: str
    goal: str
    a: dict[str, Any]
    b: dict[str, Any] | None
    across: str
    where: dict[str, list[Any]]
    alpha: float
    unsolved_is_worst: bool
    relation: str
    margin: float
    margin_type: str
    op: str | None
    bound: float | None
    reference: Any
    tolerance: float | None
    tolerance_type: str
    k: int
    over: str | None
    direction: str | None


def parse_claims(specs: Sequence[Any], metric: str, goal: str) -> list[Claim]:
    """Validate the ``report.claims`` list; one-line ``ConfigError`` naming the claim and key."""
    claims, seen = [], set()
    for index, spec in enumerate(specs or []):
        claim = parse_claim(spec, index, metric, goal)
        if claim.id in seen:
            raise ConfigError(f"report.claims[{index}]: id '{claim.id}' is used twice")
        seen.add(claim.id)
        claims.append(claim)
    return claims


def parse_claim(spec: Any, index: int, metric: str, goal: str) -> Claim:
    raw = spec if isinstance(spec, DictConfig) else OmegaConf.create(dict(spec))
    name = raw.get("id") if "id" in raw else None
    where = f"report.claims[{index}]" + (f" ({name})" if name else "")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(ClaimSpec), raw)
    except OmegaConfBaseException as exc:
        message = " ".join(str(exc).split("\n")[0].split())
        key = getattr(exc, "full_key", None)
        raise ConfigError(f"{where}: {key + ': ' if key else ''}{message}") from None
    for key in ("id", "kind", "text", "source", "a"):
        if OmegaConf.is_missing(merged, key):
            raise ConfigError(f"{where}: missing '{key}'")
    plain = OmegaConf.to_container(merged, resolve=True)
    assert isinstance(plain, dict)
    values = {key: getattr(value, "value", value) for key, value in plain.items()}
    kind = values["kind"]
    for key in REQUIRED[kind]:
        if values[key] is None:
            raise ConfigError(f"{where}: kind '{kind}' needs '{key}'")
    for key, kinds in ONLY_FOR.items():
        if values[key] is not None and kind not in kinds:
            raise ConfigError(f"{where}: '{key}' does not apply to kind '{kind}'")
    if not ID.match(str(values["id"])):
        raise ConfigError(f"{where}: id must match [a-z0-9_]+, got '{values['id']}'")
    for key in ("text", "source"):
        if not str(values[key]).strip() or "\n" in str(values[key]).strip():
            raise ConfigError(f"{where}: '{key}' must be one non-empty line")
    if not 0 < float(values["alpha"]) < 1:
        raise ConfigError(f"{where}: alpha must be in (0, 1), got {values['alpha']}")
    if float(values["margin"]) < 0:
        raise ConfigError(f"{where}: margin must be >= 0, got {values['margin']}")
    if values["op"] is not None and values["op"] not in ("<=", ">="):
        raise ConfigError(f"{where}: op must be '<=' or '>=', got '{values['op']}'")
    if kind == "ratio" and values["b"] is not None and float(values["bound"]) <= 0:
        raise ConfigError(f"{where}: a bound on the ratio a/b must be > 0")
    if values["tolerance"] is not None and float(values["tolerance"]) < 0:
        raise ConfigError(f"{where}: tolerance must be >= 0, got {values['tolerance']}")
    if int(values["k"]) < 1:
        raise ConfigError(f"{where}: k must be >= 1, got {values['k']}")
    if not values["a"] or (values["b"] is not None and not values["b"]):
        raise ConfigError(f"{where}: a selector needs at least one key: value")
    reference = values["reference"]
    if reference is not None and not isinstance(reference, int | float | str):
        raise ConfigError(f"{where}: reference must be a number or a run column name")
    return Claim(
        id=str(values["id"]),
        kind=kind,
        text=str(values["text"]).strip(),
        source=str(values["source"]).strip(),
        metric=str(values["metric"] or metric),
        goal=str(values["goal"] or goal),
        a=dict(values["a"]),
        b=dict(values["b"]) if values["b"] is not None else None,
        across=values["across"],
        where={k: list(v) for k, v in (values["where"] or {}).items()},
        alpha=float(values["alpha"]),
        unsolved_is_worst=bool(values["unsolved_is_worst"]),
        relation=values["relation"],
        margin=float(values["margin"]),
        margin_type=values["margin_type"],
        op=values["op"],
        bound=None if values["bound"] is None else float(values["bound"]),
        reference=reference,
        tolerance=None if values["tolerance"] is None else float(values["tolerance"]),
        tolerance_type=values["tolerance_type"],
        k=int(values["k"]),
        over=values["over"],
        direction=values["direction"],
    )


# -- results -------------------------------------------------------------------------------------
@dataclass
class RowResult:
    """A claim in one row of the table."""

    row: str
    comparisons: list[Comparison]
    effect: str  # e.g. "a/b 0.83 [0.75, 0.92]"
    estimate: float = math.nan
    low: float = math.nan
    high: float = math.nan
    state: str = "undecided"  # holds | fails | undecided
    seeds_needed: int | None = None
    note: str = ""
    #: rank: the row holds when ``a`` beats all but k - 1 others, fails when k others beat it.
    k: int = 1
    p_holds: float = math.nan  # Holm-adjusted across the claim's rows
    p_fails: float = math.nan

    @property
    def n(self) -> int:
        return max((c.n for c in self.comparisons), default=0)

    @property
    def raw_p_holds(self) -> float:
        """The row's p-value for "holds". One comparison: its own. Rank (C others): a beats at
        least C - k + 1 of them; k times the k-th largest p is a level-alpha test of that (for
        k = 1 the intersection-union test; for k > 1 by Markov's inequality on the number of
        false rejections). NaN counts as 1."""
        p = sorted((_nan_one(c.p_holds) for c in self.comparisons), reverse=True)
        return min(1.0, self.k * p[self.k - 1]) if len(p) >= self.k else 0.0

    @property
    def raw_p_fails(self) -> float:
        """The row's p-value for "fails". Rank: k others beat ``a``; (C - k + 1) times the
        k-th smallest p (Bonferroni for k = 1; Markov's inequality again for k > 1)."""
        p = sorted(_nan_one(c.p_fails) for c in self.comparisons)
        return min(1.0, (len(p) - self.k + 1) * p[self.k - 1]) if len(p) >= self.k else 1.0

    @property
    def tests(self) -> list[str]:
        return sorted({c.test for c in self.comparisons})


class NotInReport(ConfigError):
    """A claim names a value of ``key`` (a method, a row) that none of the chosen runs has."""

    def __init__(self, message: str, key: str, values: list[Any]) -> None:
        super().__init__(message)
        self.key, self.values = key, values


@dataclass
class ClaimResult:
    claim: Claim
    verdict: str
    evidence: str
    rows: list[RowResult] = field(default_factory=list)
    seeds_needed: int | None = None

    @property
    def id(self) -> str:
        return self.claim.id


# -- effects --------------------------------------------------------------------------------------
def _g(x: float) -> str:
    return f"{x:.3g}" if math.isfinite(x) else ("diverged" if not math.isnan(x) else "nan")


def _interval(name: str, mean: float, low: float, high: float) -> str:
    text = f"{name} {_g(mean)}"
    return text + (f" [{_g(low)}, {_g(high)}]" if math.isfinite(low) else "")


def ratio_effect(
    a: np.ndarray, b: np.ndarray, failed: str = "diverged"
) -> tuple[str, float, float, float]:
    """``a/b`` over seeds as a geometric mean with a t-interval on the log ratios when every
    value is positive (or every one negative); the mean difference ``a - b`` otherwise.
    ``failed``: what an infinite value (the worst) stands for."""
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        worse = int((~np.isfinite(a)).sum())
        return f"a {failed} on {worse}, b on {int((~np.isfinite(b)).sum())} seeds", *(math.nan,) * 3
    same_sign = (np.all(a > 0) and np.all(b > 0)) or (np.all(a < 0) and np.all(b < 0))
    if same_sign:
        mean, low, high = mean_interval(np.log(a / b))
        values = (math.exp(mean), math.exp(low), math.exp(high))
        return _interval("a/b", *values), *values
    values = mean_interval(a - b)
    return _interval("a-b", *values), *values


# -- selecting runs ------------------------------------------------------------------------------
def _matches(series: pd.Series, value: Any) -> pd.Series:
    """Rows of ``series`` equal to ``value`` (a list: any of them); numbers compare as numbers,
    everything else as text (params come back from the store as strings)."""
    values = value if isinstance(value, list | tuple) else [value]
    mask = pd.Series(False, index=series.index)
    numeric = pd.to_numeric(series, errors="coerce")
    for item in values:
        if isinstance(item, bool) or not isinstance(item, int | float):
            mask |= series.astype(str) == str(item)
        else:
            mask |= np.isclose(numeric, float(item), rtol=1e-12, atol=0) & numeric.notna()
    return mask


def _select(runs: pd.DataFrame, selector: dict[str, Any], where: str) -> pd.Series:
    mask = pd.Series(True, index=runs.index)
    for key, value in selector.items():
        if key not in runs:
            raise ConfigError(f"{where}: '{key}' is not a config key of the runs")
        hit = _matches(runs[key], value)
        if not hit.any():
            present = ", ".join(sorted({str(v) for v in runs[key].dropna()})[:12])
            raise NotInReport(
                f"{where}: no chosen run has {key}={value} (values: {present})",
                key,
                value if isinstance(value, list) else [value],
            )
        mask &= hit
    if not mask.any():
        raise ConfigError(f"{where}: no chosen run matches {selector}")
    return mask


@dataclass
class Frame:
    """The chosen runs with the claim's value (``_value``) and selections (``_a``, ``_b``)."""

    runs: pd.DataFrame
    columns: list[str]  # the table's column keys
    goal: str
    name: str  # "report.claims.<id>"

    def by_seed(self, mask: Any, column: str = "_value", label: str = "a") -> pd.Series:
        """The values of the runs under ``mask`` indexed by seed: one column of the table."""
        part = self.runs[np.asarray(mask, dtype=bool)]
        keys = [c for c in self.columns if c in part]
        differing = [c for c in keys if part[c].astype(str).nunique() > 1]
        if differing or part["seed"].duplicated().any():
            raise ConfigError(
                f"{self.name}: '{label}' matches several columns of the table"
                + (f" (they differ in {', '.join(differing)})" if differing else "")
                + "; add keys to the selector"
            )
        values = pd.to_numeric(part[column], errors="coerce").to_numpy(dtype=float)
        return pd.Series(values, index=part["seed"].to_numpy())


def _scored(
    runs: pd.DataFrame, column: str, goal: str, unsolved: pd.Series | None = None
) -> pd.Series:
    """The metric with the worst value for a diverged or infinite run, and for the runs
    ``unsolved`` marks (NaN stays: no value)."""
    values = pd.to_numeric(runs[column], errors="coerce").astype(float)
    diverged = runs["status"] == "diverged" if "status" in runs else False
    bad = np.isinf(values) | diverged
    if unsolved is not None:
        bad |= unsolved
    return values.where(~bad, math.inf if goal == "min" else -math.inf)


def _row_groups(
    frame: pd.DataFrame, keys: list[str]
) -> list[tuple[str, pd.Series]]:  # (label, mask)
    if not keys:
        return [("all", pd.Series(True, index=frame.index))]
    groups = []
    for key, part in frame.groupby(keys, dropna=False, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        label = ", ".join(str(v) for v in key)
        groups.append((label, frame.index.isin(part.index)))
    return [(label, pd.Series(mask, index=frame.index)) for label, mask in groups]


def _paired(a: pd.Series, b: pd.Series) -> tuple[np.ndarray, np.ndarray, int]:
    """Values of seeds present on both sides (NaN dropped), and how many seeds were unpaired."""
    both = a.index.intersection(b.index)
    pairs = pd.DataFrame({"a": a.reindex(both), "b": b.reindex(both)}).dropna()
    unpaired = len(a.index.union(b.index)) - len(pairs)
    return pairs["a"].to_numpy(), pairs["b"].to_numpy(), unpaired


# -- the kinds -----------------------------------------------------------------------------------
def _orient(x: np.ndarray, goal: str) -> np.ndarray:
    """``x`` with larger = better."""
    return -x if goal == "min" else x


def _advantage_compare(claim: Claim, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per seed: how far ``a`` beats ``b`` shifted by the margin (``better``: towards better,
    ``no_worse``: towards worse), in the goal's direction; positive = the claim holds."""
    scale = np.where(np.isfinite(b), np.abs(b), 0.0) if claim.margin_type == "relative" else 1.0
    amount = claim.margin * scale
    sign = 1.0 if claim.relation == "better" else -1.0
    better = sign * amount  # threshold = b improved (better) or worsened (no_worse) by margin
    threshold = b - better if claim.goal == "min" else b + better
    with np.errstate(invalid="ignore"):
        d = _orient(a, claim.goal) - _orient(threshold, claim.goal)
    return np.where(np.isnan(d) & ~np.isfinite(a) & ~np.isfinite(b), 0.0, d)


def _compare_row(claim: Claim, frame: Frame, row: pd.Series, label: str) -> RowResult:
    a = frame.by_seed(row & frame.runs["_a"], label="a")
    b = frame.by_seed(row & frame.runs["_b"], label="b")
    a_vals, b_vals, unpaired = _paired(a, b)
    comparison = paired_test(
        _advantage_compare(claim, a_vals, b_vals), strict=claim.relation == "better"
    )
    effect, *values = ratio_effect(a_vals, b_vals, _failed(claim))
    note = f"{unpaired} unpaired seeds dropped" if unpaired else ""
    return RowResult(label, [comparison], effect, *values, note=note)


def _failed(claim: Claim) -> str:
    return "diverged or unsolved" if claim.unsolved_is_worst else "diverged"


def _ratio_row(claim: Claim, frame: Frame, row: pd.Series, label: str) -> RowResult:
    assert claim.bound is not None
    sign = 1.0 if claim.op == "<=" else -1.0  # advantage: bound - x (<=) or x - bound (>=)
    a = frame.by_seed(row & frame.runs["_a"], label="a")
    if claim.b is None:
        values = a.dropna().to_numpy()
        effect, *stat = _interval_effect("a", values)
        comparison = paired_test(sign * (claim.bound - values), strict=False)
        return RowResult(label, [comparison], effect, *stat)
    b = frame.by_seed(row & frame.runs["_b"], label="b")
    a_vals, b_vals, unpaired = _paired(a, b)
    note = f"{unpaired} unpaired seeds dropped" if unpaired else ""
    if not (np.all(a_vals > 0) and np.all(b_vals > 0)):
        comparison = Comparison(
            len(a_vals), "ratio of non-positive values: no test", *[math.nan] * 2
        )
        return RowResult(label, [comparison], "a/b undefined (values <= 0)", note=note)
    logs = np.log(a_vals / b_vals)
    comparison = paired_test(sign * (math.log(claim.bound) - logs), strict=False)
    effect, *values = ratio_effect(a_vals, b_vals, _failed(claim))
    return RowResult(label, [comparison], effect, *values, note=note)


def _interval_effect(name: str, values: np.ndarray) -> tuple[str, float, float, float]:
    stat = mean_interval(values)
    return _interval(name, *stat), *stat


def _reference_row(claim: Claim, frame: Frame, row: pd.Series, label: str) -> RowResult:
    """Two one-sided tests (TOST): within tolerance when both a - ref < tol and a - ref > -tol
    hold; outside when either fails (Bonferroni over the two sides)."""
    assert claim.tolerance is not None
    mask = row & frame.runs["_a"]
    a = frame.by_seed(mask, label="a")
    if isinstance(claim.reference, str):
        reference = frame.by_seed(mask, claim.reference, label="a").reindex(a.index)
    else:
        reference = pd.Series(float(claim.reference), index=a.index)
    a_vals, ref, unpaired = _paired(a, reference)
    error = a_vals - ref
    tol = claim.tolerance * (np.abs(ref) if claim.tolerance_type == "relative" else 1.0)
    with np.errstate(invalid="ignore"):
        upper = paired_test(tol - error, strict=False)  # a - ref <= tol
        lower = paired_test(error + tol, strict=False)  # a - ref >= -tol
    combined = Comparison(
        max(upper.n, lower.n),
        upper.test if upper.test == lower.test else f"{upper.test}/{lower.test}",
        max(upper.p_holds, lower.p_holds),
        min(1.0, 2 * min(upper.p_fails, lower.p_fails)),
        d_z=min(upper.d_z, lower.d_z),
        exact=upper.exact and lower.exact,
    )
    shown = "a-ref" if isinstance(claim.reference, str) or claim.reference != 0 else "a"
    effect, *stat = _interval_effect(shown, error)
    shown_tol = (
        claim.tolerance if claim.tolerance_type == "absolute" else f"{claim.tolerance:g}x|ref|"
    )
    effect += (
        f" (tolerance {shown_tol:g})"
        if isinstance(shown_tol, float)
        else f" (tolerance {shown_tol})"
    )
    note = f"{unpaired} seeds without a reference dropped" if unpaired else ""
    return RowResult(label, [combined], effect, *stat, note=note)


def _rank_row(claim: Claim, frame: Frame, row: pd.Series, label: str) -> RowResult:
    """``a`` against every other column of the row, paired by seed."""
    runs = frame.runs[row]
    a = frame.by_seed(row & frame.runs["_a"], label="a")
    others = runs[~runs["_a"]]
    comparisons = []
    keys = [c for c in frame.columns if c in runs]
    groups = others.groupby(keys, dropna=False, sort=True) if keys else []
    means = {}
    a_mean = float(np.mean(_orient(a.to_numpy(), frame.goal)))
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        name = ", ".join(map(str, key))
        other = frame.by_seed(frame.runs.index.isin(part.index), label=name)
        a_vals, o_vals, _ = _paired(a, other)
        with np.errstate(invalid="ignore"):
            d = _orient(a_vals, frame.goal) - _orient(o_vals, frame.goal)
        d = np.where(np.isnan(d), 0.0, d)  # both diverged: a tie
        comparison = paired_test(d, strict=True)
        comparison.label = name
        comparisons.append(comparison)
        means[name] = float(np.mean(_orient(o_vals, frame.goal)))
    beaten_by = sum(m > a_mean for m in means.values())
    effect = f"a {_g(float(np.mean(a.to_numpy())))}, mean rank {1 + beaten_by} of {1 + len(means)}"
    return RowResult(label, comparisons, effect, k=claim.k)


def _trend_row(
    claim: Claim,
    frame: Frame,
    row: pd.Series,
    label: str,
    series: SeriesReader | None,
) -> RowResult:
    """Page's L test over the ordered values of ``over`` (blocks: seeds); two values: the
    paired test of last against first."""
    assert claim.over is not None
    table = _trend_table(claim, frame, row, series)  # seeds x ordered over-values
    table = table.dropna()
    values = list(table.columns)
    if len(values) < 2:
        raise ConfigError(
            f"{frame.name}: '{claim.over}' takes fewer than two values in row {label}"
        )
    sign = -1.0 if claim.direction == "decreasing" else 1.0
    first, last = table[values[0]].to_numpy(), table[values[-1]].to_numpy()
    with np.errstate(invalid="ignore"):
        d = sign * (last - first)
    d_z = standardised(d[np.isfinite(d)]) if np.isfinite(d).sum() >= 2 else math.nan
    data = sign * table.to_numpy()  # increasing in the claimed direction
    n = len(table)
    if len(values) == 2 or n < 2:
        comparison = paired_test(d, strict=True)
    elif np.all(data == data[0]):  # the same sequence for every seed: decided exactly
        holds = bool(np.all(np.diff(data[0]) > 0))
        comparison = Comparison(
            n, f"exact (identical over {n} seeds)", float(not holds), float(holds), exact=True
        )
        comparison.d_z = math.inf if holds else -math.inf
    else:
        finite = data[np.isfinite(data)]
        big = 2 * (np.abs(finite).max() if finite.size else 1.0) + 1.0
        ranked = np.where(np.isfinite(data), data, np.sign(data) * big)  # Page's test ranks
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            holds_test = stats.page_trend_test(ranked)
            fails_test = stats.page_trend_test(ranked[:, ::-1])
        comparison = Comparison(
            n, "Page's L trend", float(holds_test.pvalue), float(fails_test.pvalue), d_z=d_z
        )
    span = f"{_g(float(np.mean(first)))} -> {_g(float(np.mean(last)))}"
    effect = f"mean {span} over {claim.over} {_g_or_text(values[0])}..{_g_or_text(values[-1])}"
    return RowResult(label, [comparison], effect)


def _g_or_text(value: Any) -> str:
    return _g(float(value)) if isinstance(value, int | float | np.number) else str(value)


def _trend_table(
    claim: Claim, frame: Frame, row: pd.Series, series: SeriesReader | None
) -> pd.DataFrame:
    """Seeds x ordered values of ``over``: the metric of ``a`` (or the ratio a/b)."""
    assert claim.over is not None
    mask_a = row & frame.runs["_a"]
    if claim.over == "step":
        if series is None:
            raise ConfigError(f"{frame.name}: over: step needs the runs' evaluation series")

        def table_of(mask: pd.Series) -> pd.DataFrame:
            part = frame.runs[mask]
            points = series(list(part["run_id"]), claim.metric)
            seeds = dict(zip(part["run_id"], part["seed"], strict=True))
            points = points.assign(seed=points["run_id"].map(seeds))
            return points.pivot_table(index="seed", columns="step", values="value")

    else:
        if claim.over not in frame.runs:
            raise ConfigError(f"{frame.name}: over: '{claim.over}' is not a config key of the runs")

        def table_of(mask: pd.Series) -> pd.DataFrame:
            part = frame.runs[mask]
            if part.duplicated(["seed", claim.over]).any():
                raise ConfigError(
                    f"{frame.name}: 'a' matches several configurations per seed and "
                    f"{claim.over}; add keys to the selector"
                )
            return part.pivot_table(index="seed", columns=claim.over, values="_value")

    table = table_of(mask_a)
    if claim.b is not None:
        other = table_of(row & frame.runs["_b"])
        table = (table / other).dropna(how="all")
    numeric = pd.to_numeric(pd.Series(table.columns), errors="coerce")
    if numeric.notna().all():
        table.columns = numeric.to_numpy()
    return table.sort_index(axis=1)


# -- deciding ------------------------------------------------------------------------------------
def decide_claims(
    runs: pd.DataFrame,
    specs: Sequence[Any],
    *,
    rows: Sequence[str],
    columns: Sequence[str],
    metric: str,
    goal: str,
    series: SeriesReader | None = None,
    left_out: Mapping[str, Collection[str]] | None = None,
    solved: pd.Series | None = None,
) -> list[ClaimResult]:
    """Decide every claim of ``specs`` on ``runs``: the runs of the configurations a report
    table chose (one per cell of ``rows`` x ``columns``, every seed; a runs frame of
    ``optbench.platform.results``, its metrics at the report's statistic). A claim's metric is
    a final metric (``metrics.<name>``) or a run column such as ``steps``; ``series`` reads
    evaluation series (needed by ``trend`` claims ``over: step``). ``left_out``: per config
    key, the values of the experiment's sweep that this sweep's overrides left out
    (``algorithm=a,b``); a claim about them is ``inconclusive`` (not decided, saying why), where
    a value no run of the experiment could have is an error. ``solved``: per run (``runs``'
    index), whether it meets the report's ``success`` criterion (claims ``unsolved_is_worst``)."""
    claims = parse_claims(specs, metric, goal)
    results = []
    for claim in claims:
        try:
            results.append(decide(runs, claim, list(rows), list(columns), series, solved))
        except NotInReport as missing:
            skipped = {str(v) for v in (left_out or {}).get(missing.key, ())}
            if not skipped or not {str(v) for v in missing.values} <= skipped:
                raise
            named = ", ".join(map(str, missing.values))
            evidence = f"not decided: this sweep left out {missing.key}={named}"
            results.append(ClaimResult(claim, "inconclusive", evidence))
    return results


def decide(
    runs: pd.DataFrame,
    claim: Claim,
    rows: list[str],
    columns: list[str],
    series: SeriesReader | None = None,
    solved: pd.Series | None = None,
) -> ClaimResult:
    name = f"report.claims.{claim.id}"
    if runs.empty:
        raise ConfigError(f"{name}: the report chose no runs")
    column = value_column(runs, claim.metric, f"{name}: metric '{claim.metric}'")
    data = runs.copy()
    for key, values in claim.where.items():
        if key not in data:
            raise ConfigError(f"{name}: where: '{key}' is not a config key of the runs")
        data = data[_matches(data[key], values)]
        if data.empty:
            raise NotInReport(
                f"{name}: where: no chosen run has {key} in {values}", key, list(values)
            )
    unsolved = None
    if claim.unsolved_is_worst:
        if solved is None:
            raise ConfigError(f"{name}: unsolved_is_worst needs the report's success criterion")
        unsolved = ~solved.reindex(data.index, fill_value=False).astype(bool)
    data["_value"] = _scored(data, column, claim.goal, unsolved)
    data["_a"] = _select(data, claim.a, f"{name}: a")
    data["_b"] = _select(data, claim.b, f"{name}: b") if claim.b is not None else False
    if claim.b is not None and (data["_a"] & data["_b"]).any():
        raise ConfigError(f"{name}: a and b select the same runs")
    if isinstance(claim.reference, str) and claim.reference not in data:
        raise ConfigError(
            f"{name}: reference '{claim.reference}' is neither a number nor a run column"
        )
    row_keys = [k for k in rows if k != claim.over]
    frame = Frame(data.reset_index(drop=True), columns, claim.goal, name)
    results, skipped = [], []
    for label, mask in _row_groups(frame.runs, row_keys):
        has_a = (mask & frame.runs["_a"]).any()
        has_b = claim.b is None or (mask & frame.runs["_b"]).any()
        if not (has_a and has_b):
            skipped.append(label)
            continue
        if claim.kind == "compare":
            results.append(_compare_row(claim, frame, mask, label))
        elif claim.kind == "ratio":
            results.append(_ratio_row(claim, frame, mask, label))
        elif claim.kind == "reference":
            results.append(_reference_row(claim, frame, mask, label))
        elif claim.kind == "rank":
            results.append(_rank_row(claim, frame, mask, label))
        else:
            results.append(_trend_row(claim, frame, mask, label, series))
    if not results:
        raise ConfigError(f"{name}: no row of the table has both a and b")
    return conclude(claim, results, skipped)


def _nan_one(p: float) -> float:
    return 1.0 if math.isnan(p) else p


def _row_state(row: RowResult, alpha: float) -> str:
    if row.p_holds < alpha:
        return "holds"
    return "fails" if row.p_fails < alpha else "undecided"


def _verdict(across: str, holds: int, fails: int, n: int) -> str:
    if across == "all":
        return "reproduced" if holds == n else "contradicted" if fails > 0 else "inconclusive"
    if across == "any":
        return "reproduced" if holds > 0 else "contradicted" if fails == n else "inconclusive"
    if holds > n / 2:
        return "reproduced"
    return "contradicted" if n - fails <= n / 2 else "inconclusive"


def conclude(claim: Claim, rows: list[RowResult], skipped: Sequence[str] = ()) -> ClaimResult:
    """Holm across the claim's rows, each row's state, the verdict and its evidence."""
    adjusted = zip(
        holm([r.raw_p_holds for r in rows]), holm([r.raw_p_fails for r in rows]), strict=True
    )
    for row, (p_holds, p_fails) in zip(rows, adjusted, strict=True):
        row.p_holds, row.p_fails = float(p_holds), float(p_fails)
    level = claim.alpha / max(1, len(rows))
    for row in rows:
        row.state = _row_state(row, claim.alpha)
        if row.state == "undecided":
            open_ = [c for c in row.comparisons if not c.exact]
            needs = [seeds_needed(c.d_z, level, rank_only=c.rank_only) for c in open_]
            row.seeds_needed = None if None in needs or not needs else max(needs)  # type: ignore[type-var]
    holds = sum(r.state == "holds" for r in rows)
    fails = sum(r.state == "fails" for r in rows)
    verdict = _verdict(claim.across, holds, fails, len(rows))
    needed = _seeds_to_decide(claim, rows) if verdict == "inconclusive" else None
    result = ClaimResult(claim, verdict, "", rows, needed)
    result.evidence = evidence(result, skipped)
    return result


def _seeds_to_decide(claim: Claim, rows: list[RowResult]) -> int | None:
    """The fewest seeds at which, if every undecided row with a finite need is decided in the
    direction of its observed effect, the verdict is decided (None: no number would do)."""
    needs = sorted({r.seeds_needed for r in rows if r.seeds_needed is not None})
    for n in needs:
        holds = fails = 0
        for row in rows:
            state = row.state
            if state == "undecided" and row.seeds_needed is not None and row.seeds_needed <= n:
                d = [c.d_z for c in row.comparisons if math.isfinite(c.d_z)]
                state = "holds" if d and min(d) > 0 else "fails"
            holds += state == "holds"
            fails += state == "fails"
        if _verdict(claim.across, holds, fails, len(rows)) != "inconclusive":
            return n
    return None


def _p(p: float) -> str:
    if not math.isfinite(p):
        return "n/a"
    return "0 (exact)" if p == 0 else f"{p:.2g}"


def evidence(result: ClaimResult, skipped: Sequence[str] = ()) -> str:
    """One line: rows holding/failing, the telling row's effect and p, tests and seeds."""
    claim, rows = result.claim, result.rows
    n = len(rows)
    holds = [r for r in rows if r.state == "holds"]
    fails = [r for r in rows if r.state == "fails"]
    parts = [f"{len(holds)}/{n} rows hold, {len(fails)} fail (Holm, alpha {claim.alpha:g})"]
    if n == 1 and rows[0].row == "all":
        parts = [
            f"{'holds' if holds else 'fails' if fails else 'undecided'} (alpha {claim.alpha:g})"
        ]
    if result.verdict == "reproduced":
        shown = max(holds, key=lambda r: r.p_holds)
        weakest = "weakest " if n > 1 else ""
        parts.append(f"{weakest}{_row_text(shown)}, p={_p(shown.p_holds)}")
    elif result.verdict == "contradicted":
        shown = min(fails, key=lambda r: r.p_fails)
        parts.append(f"{_row_text(shown)}, p={_p(shown.p_fails)} against")
    else:
        undecided = [r for r in rows if r.state == "undecided"] or rows
        shown = min(undecided, key=lambda r: min(r.p_holds, r.p_fails))
        parts.append(f"{_row_text(shown)}, p={_p(shown.p_holds)} for / {_p(shown.p_fails)} against")
    tests = sorted({t for r in rows for t in r.tests})
    seeds = sorted({r.n for r in rows})
    count = f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]}"
    parts.append(f"{'; '.join(tests)}, {count} seeds")
    if result.verdict == "inconclusive":
        parts.append(
            f"~{result.seeds_needed} seeds would decide at the observed effect"
            if result.seeds_needed
            else "no number of seeds would decide at the observed effect"
        )
    if skipped:
        parts.append(f"{len(skipped)} rows without a or b skipped")
    return "; ".join(parts)


def _row_text(row: RowResult) -> str:
    return row.effect if row.row == "all" else f"{row.row}: {row.effect}"


# -- tables --------------------------------------------------------------------------------------
def claims_frame(results: Sequence[ClaimResult]) -> pd.DataFrame:
    """One line per claim (``claims.csv``)."""
    lines = []
    for r in results:
        states = [row.state for row in r.rows]
        lines.append(
            {
                "claim": r.id,
                "kind": r.claim.kind,
                "verdict": r.verdict,
                "evidence": r.evidence,
                "text": r.claim.text,
                "source": r.claim.source,
                "metric": r.claim.metric,
                "across": r.claim.across,
                "rows": len(r.rows),
                "rows_holding": states.count("holds"),
                "rows_failing": states.count("fails"),
                "seeds": max((row.n for row in r.rows), default=0),
                "seeds_needed": r.seeds_needed,
            }
        )
    return pd.DataFrame(lines)


def rows_frame(results: Sequence[ClaimResult]) -> pd.DataFrame:
    """One line per claim and row (``claims_rows.csv``)."""
    lines = []
    for r in results:
        for row in r.rows:
            lines.append(
                {
                    "claim": r.id,
                    "row": row.row,
                    "state": row.state,
                    "effect": row.effect,
                    "estimate": row.estimate,
                    "low": row.low,
                    "high": row.high,
                    "n": row.n,
                    "test": "; ".join(row.tests),
                    "p_holds_holm": row.p_holds,
                    "p_fails_holm": row.p_fails,
                    "seeds_needed": row.seeds_needed,
                    "note": row.note,
                }
            )
    return pd.DataFrame(lines)


def claims_markdown(results: Sequence[ClaimResult]) -> str:
    """The verdict table: claim, verdict, evidence (and the paper's words and source)."""
    if not results:
        return ""
    table = pd.DataFrame(
        [
            {
                "claim": f"{r.id}: {r.claim.text} ({r.claim.source})",
                "verdict": r.verdict,
                "evidence": r.evidence,
            }
            for r in results
        ]
    )
    return table.to_markdown(index=False)


def write_claims(results: Sequence[ClaimResult], out_dir: Path) -> list[Path]:
    """``claims.csv`` (one line per claim), ``claims_rows.csv`` (per claim and row) and
    ``claims.md`` (the verdict table) in ``out_dir``."""
    files = [out_dir / "claims.csv", out_dir / "claims_rows.csv", out_dir / "claims.md"]
    claims_frame(results).to_csv(files[0], index=False)
    rows_frame(results).to_csv(files[1], index=False)
    files[2].write_text(f"Claims\n\n{claims_markdown(results)}\n")
    return files


def verdict_tags(results: Sequence[ClaimResult]) -> dict[str, str]:
    """``claim.<id>.verdict`` -> verdict, for the sweep's parent run."""
    return {f"claim.{r.id}.verdict": r.verdict for r in results}
