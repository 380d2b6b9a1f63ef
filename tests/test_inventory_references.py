"""The known optima against independent computations: the analytic base-stock optimum against
brute-force search on simulated samples, the lost-sales DP against exhaustive policy evaluation,
its truncation, and its policy simulated; the tuned heuristic reference against the optimum."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from optbench.problems.inventory import dp, newsvendor
from optbench.problems.inventory.heuristics import BaseStock
from tests.inventory_support import make_problem

SIM = {"train_samples": 4000, "train_periods": 40, "train_warmup": 10}

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(("law", "lead", "p"), [("normal", 2, 9.0), ("poisson", 1, 19.0)])
def test_analytic_base_stock_matches_brute_force(
    tmp_path: Path, law: str, lead: int, p: float
) -> None:
    problem = make_problem(
        tmp_path, demand_law=law, store_lead_time=lead, underage_cost=p, reference="analytic", **SIM
    )
    level = problem.describe()["optimal_levels"][0]
    policy = BaseStock(problem.spec)
    grid = np.arange(level - 3, level + 3.01, 0.25 if law == "normal" else 1.0)
    costs, errors = [], []
    with torch.no_grad():
        for value in grid:
            policy.theta.fill_(value / 5.0)
            sample = problem.simulate(policy, "train").cost
            costs.append(float(sample.mean()))
            errors.append(float(sample.std() / math.sqrt(len(sample))))
    best = int(np.argmin(costs))
    # common random numbers: the simulated argmin is within one grid step of the analytic level
    assert abs(grid[best] - level) <= (0.25 if law == "normal" else 0.0) + 1e-9
    at_level = costs[int(np.argmin(np.abs(grid - level)))]
    assert at_level == pytest.approx(problem.ref_cost, abs=4 * errors[best])


def test_poisson_newsvendor_is_exact() -> None:
    # one period, Poisson(5), p/(p+h) = 0.9: S* = 8 and the cost by direct summation
    optimum = newsvendor.base_stock_optimum("poisson", 5.0, 0.0, 0, 1.0, 9.0)
    assert optimum.level == stats.poisson.ppf(0.9, 5.0) == 8
    d = np.arange(200)
    pmf = stats.poisson.pmf(d, 5.0)
    expected = (pmf * (np.clip(8 - d, 0, None) + 9 * np.clip(d - 8, 0, None))).sum()
    assert optimum.cost == pytest.approx(expected, rel=1e-12)


def _gain(model: tuple, policy: tuple[int, ...] | np.ndarray) -> float:
    """Long-run average cost from state 0 of a deterministic stationary policy, by the Cesaro
    limit (1/n) sum_{i<n} P^i of its transition matrix (n = 2^24, by doubling)."""
    states, cost, prob, nxt = model
    N = len(states)
    P = np.zeros((N, N))
    for s, q in enumerate(policy):
        for k in range(prob.shape[1]):
            if prob[s, k] > 0:
                P[s, nxt[s, q, k]] += prob[s, k]
    average, power = np.eye(N), P.copy()
    for _ in range(24):
        average = average @ (np.eye(N) + power) / 2
        power = power @ power
    return float((average @ cost)[0])


@pytest.mark.parametrize("lead", [1, 2])
def test_dp_matches_exhaustive_policy_evaluation(lead: int) -> None:
    pmf = np.array([0.3, 0.5, 0.2])  # demand on {0, 1, 2}
    h, p, M = 1.0, 4.0, 3
    optimum = dp.solve_lost_sales(pmf, lead, h, p, M, tol=1e-12)
    model = dp.transition_model(pmf, lead, h, p, M)
    choices = [np.flatnonzero(model[3][s, :, 0] >= 0) for s in range(len(model[0]))]
    gains = [_gain(model, policy) for policy in itertools.product(*choices)]
    assert len(gains) == (24 if lead == 1 else 288)
    assert optimum.gain == pytest.approx(min(gains), abs=1e-6)
    assert _gain(model, optimum.orders) == pytest.approx(min(gains), abs=1e-6)
    assert max(gains) > min(gains) + 0.1  # the instance discriminates between policies


def test_dp_truncation_loses_nothing() -> None:
    pmf = dp.poisson_pmf(5.0)
    bound = dp.morton_bound(pmf, 2, 1.0, 9.0)
    tight = dp.solve_lost_sales(pmf, 2, 1.0, 9.0, bound + 2)
    loose = dp.solve_lost_sales(pmf, 2, 1.0, 9.0, bound + 6)
    assert tight.gain == pytest.approx(loose.gain, abs=1e-6)
    # with backlogging the same demand costs less: lost sales (p = 9) lie between
    backlog = newsvendor.base_stock_optimum("poisson", 5.0, 0.0, 2, 1.0, 9.0)
    assert tight.gain < backlog.cost


def test_dp_policy_simulated_costs_its_gain(tmp_path: Path) -> None:
    problem = make_problem(
        tmp_path,
        demand_law="poisson",
        lost_sales=True,
        store_lead_time=1,
        underage_cost=9.0,
        test_samples=2000,
        test_periods=600,
        test_warmup=100,
        reference="dp",
    )
    sample = problem._run(problem.ref_policy, "test").cost
    error = float(sample.std() / math.sqrt(len(sample)))
    assert error < 0.01
    assert float(sample.mean()) == pytest.approx(problem.ref_cost, abs=4 * error)
    assert problem.ref_test_cost == pytest.approx(float(sample.mean()), rel=1e-12)


def test_tuned_capped_base_stock_is_near_but_not_below_the_optimum(tmp_path: Path) -> None:
    config = dict(
        demand_law="poisson",
        lost_sales=True,
        store_lead_time=2,
        underage_cost=9.0,
        train_samples=1000,
        train_periods=60,
        train_warmup=20,
        test_samples=1000,
        test_periods=400,
        test_warmup=100,
    )
    optimal = make_problem(tmp_path, reference="dp", **config)
    heuristic = make_problem(tmp_path, reference="heuristic", **config)
    assert heuristic.ref_kind == "heuristic" and optimal.ref_kind == "dp"
    # same test samples (same seed): compare on common random numbers
    gap = heuristic.ref_test_cost / optimal.ref_test_cost - 1
    assert -0.002 < gap < 0.02  # capped base-stock is near-optimal for lost sales (Xin 2021)


def test_reference_results_are_cached(tmp_path: Path) -> None:
    config = dict(demand_law="poisson", lost_sales=True, store_lead_time=2, reference="auto")
    first = make_problem(tmp_path, **config)
    assert first.ref_kind == "dp"
    assert len(list((tmp_path / "inventory_dp").glob("*.pkl"))) == 1
    second = make_problem(tmp_path, **config)
    assert second.ref_cost == first.ref_cost
