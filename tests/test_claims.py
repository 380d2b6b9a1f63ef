"""Claims decided on synthetic run frames whose answers are known: a clearly true claim is
reproduced, a clearly false one contradicted, noise inconclusive; Holm across rows on a
hand-computed case; the paired test (not the unpaired one) on seed-correlated data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from optbench.platform.claims import (
    RowResult,
    claims_frame,
    claims_markdown,
    conclude,
    decide_claims,
    parse_claim,
)
from optbench.platform.errors import ConfigError
from optbench.platform.paired import Comparison, seeds_needed

ROWS, COLUMNS = ["problem.dataset"], ["algorithm"]


def runs(values: dict[tuple[str, str], list[float]], status: dict | None = None) -> pd.DataFrame:
    """A tidy frame of runs: (data set, algorithm) -> the metric per seed 0, 1, ..."""
    lines = []
    for (dataset, algorithm), per_seed in values.items():
        for seed, value in enumerate(per_seed):
            lines.append(
                {
                    "problem.dataset": dataset,
                    "algorithm": algorithm,
                    "algorithm.lr": 0.1,
                    "seed": seed,
                    "metrics.gap": value,
                    "status": (status or {}).get((dataset, algorithm, seed), "finished"),
                    "run_id": f"{dataset}-{algorithm}-{seed}",
                }
            )
    return pd.DataFrame(lines)


def claim(**keys: object) -> dict:
    return {"id": "c", "text": "a claim", "source": "paper, sec. 1", **keys}


def decide(frame: pd.DataFrame, goal: str = "min", solved: pd.Series | None = None, **keys: object):
    (result,) = decide_claims(
        frame, [claim(**keys)], rows=ROWS, columns=COLUMNS, metric="gap", goal=goal, solved=solved
    )
    return result


def seeded(seed: int, n: int, scale: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, scale, n)


# -- compare ------------------------------------------------------------------------------------
def test_compare_true_false_and_noise() -> None:
    base = 1.0 + np.abs(seeded(0, 8))
    frame = runs(
        {
            (d, alg): list(base * factor + 0.01 * seeded(i, 8))
            for d in ("A", "B")
            for i, (alg, factor) in enumerate((("fast", 0.5), ("slow", 1.0)))
        }
    )
    true = decide(frame, kind="compare", a={"algorithm": "fast"}, b={"algorithm": "slow"})
    assert true.verdict == "reproduced"
    assert all(r.state == "holds" and r.tests == ["Wilcoxon signed-rank"] for r in true.rows)
    # every seed favours a: the exact one-sided signed-rank p is 2**-8, times 2 rows (Holm)
    assert true.rows[0].p_holds == pytest.approx(2 * 2**-8)
    assert 0.45 < true.rows[0].estimate < 0.55 and true.rows[0].low < 0.5 < true.rows[0].high
    assert "2/2 rows hold" in true.evidence and "Wilcoxon signed-rank, 8 seeds" in true.evidence
    false = decide(frame, kind="compare", a={"algorithm": "slow"}, b={"algorithm": "fast"})
    assert false.verdict == "contradicted" and "0/2 rows hold, 2 fail" in false.evidence
    # differences symmetric about zero: no evidence either way, and no number of seeds helps
    noise = runs({("A", "x"): [1, 2, 3, 4], ("A", "y"): [2, 1, 4, 3]})
    result = decide(noise, kind="compare", a={"algorithm": "x"}, b={"algorithm": "y"})
    assert result.verdict == "inconclusive" and result.rows[0].tests == ["paired t"]
    assert result.rows[0].p_holds == pytest.approx(0.5) and result.seeds_needed is None
    assert "no number of seeds would decide" in result.evidence


def test_inconclusive_states_the_seeds_needed_at_the_observed_effect() -> None:
    a = [1.0, 1.2, 0.9, 1.1]
    b = [1.1, 1.15, 1.0, 1.12]  # a looks a little better, not significantly with 4 seeds
    result = decide(
        runs({("A", "x"): a, ("A", "y"): b}),
        kind="compare",
        a={"algorithm": "x"},
        b={"algorithm": "y"},
    )
    d = np.subtract(b, a)
    assert result.verdict == "inconclusive"
    assert result.rows[0].p_holds == pytest.approx(stats.t.sf(d.mean() / stats.sem(d), 3))
    assert result.seeds_needed == seeds_needed(d.mean() / d.std(ddof=1), 0.05)
    assert f"~{result.seeds_needed} seeds would decide" in result.evidence


def test_paired_test_is_used_on_seed_correlated_data() -> None:
    scale = np.array([1.0, 5.0, 10.0, 20.0, 40.0])  # the seed moves both methods alike
    a = scale + np.array([0.01, -0.02, 0.0, 0.015, -0.01])
    b = scale + 0.1
    result = decide(
        runs({("A", "x"): list(a), ("A", "y"): list(b)}),
        kind="compare",
        a={"algorithm": "x"},
        b={"algorithm": "y"},
        margin_type="absolute",
    )
    paired = stats.ttest_rel(b, a, alternative="greater").pvalue
    unpaired = stats.ttest_ind(b, a, alternative="greater").pvalue
    assert paired < 1e-3 and unpaired > 0.4
    assert result.rows[0].comparisons[0].p_holds == pytest.approx(paired)
    assert result.verdict == "reproduced" and "paired t, 5 seeds" in result.evidence


def test_margins_and_goal_max() -> None:
    b = 10 + np.abs(seeded(1, 6))
    a = b * 1.02 + 0.001 * seeded(2, 6)  # 2% worse than b, every seed
    frame = runs({("A", "x"): list(a), ("A", "y"): list(b)})
    sel = {"a": {"algorithm": "x"}, "b": {"algorithm": "y"}}
    no_worse = decide(frame, kind="compare", relation="no_worse", margin=0.05, **sel)
    assert no_worse.verdict == "reproduced"  # within 5%
    assert decide(frame, kind="compare", relation="no_worse", margin=0.01, **sel).verdict == (
        "contradicted"  # not within 1%
    )
    assert decide(frame, kind="compare", **sel).verdict == "contradicted"  # a is not better
    assert decide(frame, kind="compare", goal="max", **sel).verdict == "reproduced"
    absolute = decide(
        frame, kind="compare", relation="no_worse", margin=1.0, margin_type="absolute", **sel
    )
    assert absolute.verdict == "reproduced"  # a - b is about 0.2 < 1


def test_identical_seeds_decide_exactly_and_one_seed_does_not() -> None:
    same = runs({("A", "x"): [1.0, 1.0, 1.0], ("A", "y"): [2.0, 2.0, 2.0]})
    exact = decide(same, kind="compare", a={"algorithm": "x"}, b={"algorithm": "y"})
    assert exact.verdict == "reproduced" and "exact (identical over 3 seeds)" in exact.evidence
    tie = decide(
        runs({("A", "x"): [1.0, 1.0], ("A", "y"): [1.0, 1.0]}),
        kind="compare",
        a={"algorithm": "x"},
        b={"algorithm": "y"},
    )
    assert tie.verdict == "contradicted"  # equal is not better
    one = decide(
        runs({("A", "x"): [1.0], ("A", "y"): [2.0]}),
        kind="compare",
        a={"algorithm": "x"},
        b={"algorithm": "y"},
    )
    assert one.verdict == "inconclusive" and "1 seed: no test" in one.evidence


def test_a_diverged_run_counts_as_the_worst_value() -> None:
    frame = runs(
        {("A", "x"): [math.nan] * 3, ("A", "y"): [1.0, 2.0, 3.0]},
        status={("A", "x", s): "diverged" for s in range(3)},
    )
    result = decide(frame, kind="compare", a={"algorithm": "x"}, b={"algorithm": "y"})
    assert result.verdict == "contradicted" and "a diverged on 3" in result.evidence
    # one diverged seed of a out of 7: ranked last by the signed-rank test, b still better
    b = list(2 + np.abs(seeded(3, 7)))
    frame = runs(
        {("A", "x"): [v + 1 for v in b[:6]] + [math.nan], ("A", "y"): b},
        status={("A", "x", 6): "diverged"},
    )
    result = decide(frame, kind="compare", a={"algorithm": "y"}, b={"algorithm": "x"})
    assert result.verdict == "reproduced"
    assert result.rows[0].comparisons[0].p_holds == pytest.approx(2**-7)


def test_unsolved_runs_count_as_the_worst_cost_when_the_claim_says_so() -> None:
    """A method that stops early without solving (few steps, success criterion not met) must
    not win a claim on the cost to solve: with ``unsolved_is_worst`` its unsolved seeds count
    as infinitely costly, as the report's performance profiles count them."""
    frame = runs({("A", "fast"): [3.0] * 4 + [4.0] * 4, ("A", "slow"): [9.0] * 4 + [8.0] * 4})
    keys = {"kind": "compare", "a": {"algorithm": "fast"}, "b": {"algorithm": "slow"}}
    assert decide(frame, **keys).verdict == "reproduced"  # on the raw step counts
    solved = pd.Series(frame["algorithm"] == "slow", index=frame.index)  # fast never solves
    result = decide(frame, solved=solved, unsolved_is_worst=True, **keys)
    assert result.verdict == "contradicted"
    assert "a diverged or unsolved on 8, b on 0 seeds" in result.evidence
    # fast solves on seeds 0-5 only: its two unsolved seeds rank last in the signed-rank test
    solved = pd.Series((frame["algorithm"] == "slow") | (frame["seed"] < 6), index=frame.index)
    partial = decide(frame, solved=solved, unsolved_is_worst=True, **keys)
    x = np.array([6.0] * 4 + [4.0] * 2 + [-10.0] * 2)  # b - a, the unsolved seeds ranked last
    assert partial.rows[0].p_holds == pytest.approx(stats.wilcoxon(x, alternative="greater").pvalue)
    with pytest.raises(ConfigError, match="unsolved_is_worst needs the report's success"):
        decide(frame, unsolved_is_worst=True, **keys)


def test_diverged_runs_below_the_rank_test_ask_for_the_seeds_it_needs() -> None:
    """b diverges on 1 of 3 seeds and is worse on the other two: no test applies to 3 pairs
    with a diverged run, but at the signed-rank test's minimum of 6 pairs all going a's way
    (one-sided exact p = 2**-6 < 0.05) it would decide; the evidence must say so, not "no
    number of seeds would decide"."""
    frame = runs(
        {("A", "x"): [1.0, 2.0, 3.0], ("A", "y"): [1.5, 2.2, math.nan]},
        status={("A", "y", 2): "diverged"},
    )
    result = decide(frame, kind="compare", a={"algorithm": "x"}, b={"algorithm": "y"})
    assert result.verdict == "inconclusive"
    assert "diverged runs, 3 < 6 seeds: no test" in result.rows[0].tests
    assert result.seeds_needed is not None and result.seeds_needed >= 6
    assert 2.0**-result.seeds_needed < 0.05
    assert f"~{result.seeds_needed} seeds would decide" in result.evidence


# -- Holm and the verdict across rows -------------------------------------------------------------
@pytest.mark.parametrize(
    ("across", "verdict", "holding"),
    [("all", "inconclusive", 2), ("majority", "inconclusive", 2), ("any", "reproduced", 2)],
)
def test_holm_across_rows_decides_the_verdict(across: str, verdict: str, holding: int) -> None:
    spec = parse_claim(
        claim(kind="compare", a={"algorithm": "x"}, b={"algorithm": "y"}, across=across),
        0,
        "gap",
        "min",
    )
    rows = [
        RowResult(name, [Comparison(8, "Wilcoxon signed-rank", p, 1 - p)], "")
        for name, p in zip("ABCD", [0.01, 0.04, 0.03, 0.005], strict=True)
    ]
    result = conclude(spec, rows)
    # Holm: 0.03, 0.06, 0.06, 0.02 -> rows A and D hold at 0.05; B and C (raw p < 0.05) do not
    assert [r.state for r in result.rows] == ["holds", "undecided", "undecided", "holds"]
    assert result.verdict == verdict
    assert claims_frame([result]).loc[0, "rows_holding"] == holding


def test_majority_and_any_contradicted() -> None:
    data = {}
    for dataset, factor in (("A", 0.5), ("B", 2.0), ("C", 2.0)):
        base = 1 + np.abs(seeded(ord(dataset), 6))
        data[dataset, "x"] = list(base * factor)
        data[dataset, "y"] = list(base)
    frame = runs(data)
    sel = {"a": {"algorithm": "x"}, "b": {"algorithm": "y"}}
    assert decide(frame, kind="compare", across="majority", **sel).verdict == "contradicted"
    assert decide(frame, kind="compare", across="any", **sel).verdict == "reproduced"
    assert decide(frame, kind="compare", across="all", **sel).verdict == "contradicted"
    only_a = decide(frame, kind="compare", where={"problem.dataset": ["A"]}, **sel)
    assert only_a.verdict == "reproduced" and len(only_a.rows) == 1


# -- ratio, reference, rank, trend ----------------------------------------------------------------
def test_ratio_with_and_without_b() -> None:
    b = 100 + 10 * np.abs(seeded(4, 8))
    a = 0.65 * b * np.exp(0.01 * seeded(5, 8))
    frame = runs({("A", "x"): list(a), ("A", "y"): list(b)})
    sel = {"a": {"algorithm": "x"}, "b": {"algorithm": "y"}}
    below = decide(frame, kind="ratio", op="<=", bound=1.0, **sel)
    assert below.verdict == "reproduced"
    row = below.rows[0]
    assert row.estimate == pytest.approx(np.exp(np.mean(np.log(a / b))))
    assert row.low < 0.65 < row.high and row.effect.startswith("a/b 0.6")
    assert decide(frame, kind="ratio", op=">=", bound=1.0, **sel).verdict == "contradicted"
    assert decide(frame, kind="ratio", op="<=", bound=0.5, **sel).verdict == "contradicted"
    alone = decide(frame, kind="ratio", a={"algorithm": "x"}, op="<=", bound=80.0)
    assert alone.verdict == "reproduced" and alone.rows[0].effect.startswith("a ")


def test_reference_number_column_and_relative_tolerance() -> None:
    optimum = 10 + np.abs(seeded(6, 6))
    near = optimum + 0.1 + 0.01 * seeded(7, 6)
    frame = runs({("A", "x"): list(near), ("A", "far"): list(optimum + 5)})
    frame["describe.f_star"] = np.tile(optimum, 2)
    ok = decide(
        frame, kind="reference", a={"algorithm": "x"}, reference="describe.f_star", tolerance=1.0
    )
    assert ok.verdict == "reproduced" and f"a-ref {np.mean(near - optimum):.3g}" in ok.evidence
    far = decide(
        frame, kind="reference", a={"algorithm": "far"}, reference="describe.f_star", tolerance=1.0
    )
    assert far.verdict == "contradicted"
    relative = decide(
        frame,
        kind="reference",
        a={"algorithm": "far"},
        reference="describe.f_star",
        tolerance=0.6,
        tolerance_type="relative",
    )
    assert relative.verdict == "reproduced"  # 5 is within 60% of optima between 10 and 12
    number = decide(frame, kind="reference", a={"algorithm": "x"}, reference=0.0, tolerance=1.0)
    assert number.verdict == "contradicted"  # about 10 away from 0


def test_rank_best_and_among_best_k() -> None:
    base = 1 + np.abs(seeded(8, 8))
    frame = runs(
        {
            (d, alg): list(base * f)
            for d in ("A", "B")
            for alg, f in (("best", 0.5), ("second", 0.8), ("third", 1.0), ("fourth", 1.3))
        }
    )
    assert decide(frame, kind="rank", a={"algorithm": "best"}).verdict == "reproduced"
    assert decide(frame, kind="rank", a={"algorithm": "second"}).verdict == "contradicted"
    assert decide(frame, kind="rank", a={"algorithm": "second"}, k=2).verdict == "reproduced"
    worst = decide(frame, kind="rank", a={"algorithm": "fourth"}, k=3)
    assert worst.verdict == "contradicted" and "mean rank 4 of 4" in worst.evidence


def test_trend_over_a_config_key_and_over_steps() -> None:
    lines = []
    for seed in range(5):
        noise = seeded(10 + seed, 4, 0.02)
        for i, horizon in enumerate((100, 1000, 10000, 100000)):
            lines.append(
                {
                    "problem.dataset": "A",
                    "algorithm": "x",
                    "budget.max_steps": horizon,
                    "seed": seed,
                    "metrics.ratio": 1.5 - 0.1 * i + noise[i],
                    "status": "finished",
                    "run_id": f"{seed}-{horizon}",
                }
            )
    frame = pd.DataFrame(lines)

    def trend(direction: str) -> str:
        (result,) = decide_claims(
            frame,
            [
                claim(
                    kind="trend",
                    a={"algorithm": "x"},
                    over="budget.max_steps",
                    direction=direction,
                    metric="ratio",
                )
            ],
            rows=["problem.dataset", "budget.max_steps"],
            columns=COLUMNS,
            metric="gap",
            goal="min",
        )
        assert "Page's L trend" in result.evidence
        return result.verdict

    assert trend("decreasing") == "reproduced" and trend("increasing") == "contradicted"

    def series(run_ids: list[str], metric: str) -> pd.DataFrame:
        steps = [0, 10, 20, 30]
        return pd.DataFrame(
            [
                {"run_id": r, "step": s, "value": 1.0 / (1 + s) + 1e-3 * hash(r) % 7}
                for r in run_ids
                for s in steps
            ]
        )

    last = frame[frame["budget.max_steps"] == 100]
    (result,) = decide_claims(
        last,
        [claim(kind="trend", a={"algorithm": "x"}, over="step", direction="decreasing")],
        rows=ROWS,
        columns=COLUMNS,
        metric="ratio",
        goal="min",
        series=series,
    )
    assert result.verdict == "reproduced"


# -- tests, power and errors --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"kind": "better"}, "kind"),
        ({"kind": "compare", "a": {"algorithm": "x"}}, "kind 'compare' needs 'b'"),
        ({"kind": "compare", "a": {"x": 1}, "b": {"x": 2}, "bound": 1.0}, "'bound' does not apply"),
        ({"kind": "ratio", "a": {"x": 1}, "op": "<", "bound": 1.0}, "op must be"),
        ({"kind": "compare", "a": {"x": 1}, "b": {"x": 2}, "margin": -1}, "margin"),
        ({"kind": "compare", "a": {"x": 1}, "b": {"x": 2}, "acros": "all"}, "acros"),
        ({"kind": "rank", "a": {"x": 1}, "id": "Bad-Id"}, "id must match"),
    ],
)
def test_malformed_claims_are_one_line_errors(keys: dict, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_claim(claim(**keys), 3, "gap", "min")
    text = str(error.value)
    assert "report.claims[3]" in text and message in text and "\n" not in text


def test_unknown_column_value_metric_and_ambiguous_selector() -> None:
    frame = runs({("A", "x"): [1, 2], ("A", "y"): [2, 3]})
    cases = [
        ({"a": {"algo": "x"}, "b": {"algorithm": "y"}}, "a: 'algo' is not a config key"),
        ({"a": {"algorithm": "z"}, "b": {"algorithm": "y"}}, "no chosen run has algorithm=z"),
        ({"a": {"algorithm": "x"}, "b": {"algorithm": "y"}, "metric": "loss"}, "metric 'loss'"),
        ({"a": {"algorithm.lr": 0.1}, "b": {"algorithm": "y"}}, "a and b select the same"),
        ({"a": {"algorithm": ["x", "y"]}, "b": {"problem.dataset": "A"}}, "select the same"),
    ]
    for keys, message in cases:
        with pytest.raises(ConfigError, match=message):
            decide(frame, kind="compare", **keys)
    with pytest.raises(ConfigError, match="matches several columns"):
        decide(frame, kind="rank", a={"algorithm.lr": 0.1})
    with pytest.raises(ConfigError, match="used twice"):
        decide_claims(
            frame,
            [claim(kind="rank", a={"algorithm": "x"})] * 2,
            rows=ROWS,
            columns=COLUMNS,
            metric="gap",
            goal="min",
        )


def test_a_method_the_sweep_left_out_leaves_its_claim_undecided() -> None:
    """``algorithm=x,y`` on an experiment that also sweeps z: a claim about z is not decided
    (inconclusive, saying why) instead of failing the report; z unknown to the experiment
    stays an error."""
    frame = runs({("A", "x"): [1, 2], ("A", "y"): [2, 3]})
    spec = [claim(kind="compare", a={"algorithm": "z"}, b={"algorithm": "y"})]
    args = {"rows": ROWS, "columns": COLUMNS, "metric": "gap", "goal": "min"}
    (result,) = decide_claims(frame, spec, **args, left_out={"algorithm": {"z"}})
    assert result.verdict == "inconclusive"
    assert result.evidence == "not decided: this sweep left out algorithm=z"
    with pytest.raises(ConfigError, match="no chosen run has algorithm=z"):
        decide_claims(frame, spec, **args, left_out={"algorithm": {"w"}})


def test_verdict_table() -> None:
    frame = runs({("A", "x"): [1.0, 1.0], ("A", "y"): [2.0, 2.0]})
    result = decide(frame, kind="compare", a={"algorithm": "x"}, b={"algorithm": "y"})
    table = claims_markdown([result])
    assert "| c: a claim (paper, sec. 1) | reproduced |" in table
    line = claims_frame([result]).iloc[0]
    assert (line["verdict"], line["rows"], line["seeds"]) == ("reproduced", 1, 2)
