"""The known optima against independent computations: the analytic base-stock optimum against
brute-force search on simulated samples, the lost-sales DP against exhaustive policy evaluation,
its truncation, and its policy simulated; the tuned heuristic reference against the optimum."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from scipy import stats

from optbench.problems.inventory import InventoryNetwork, dp, newsvendor
from optbench.problems.inventory.heuristics import BaseStock
from tests.inventory_support import TINY, make_context, make_problem

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
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


def _truncated_mdp(
    pmf: list[float], lead: int, h: float, p: float, M: int
) -> tuple[list[tuple[int, ...]], list[float], dict[tuple[int, ...], list[np.ndarray]]]:
    """The truncated lost-sales MDP enumerated state by state in plain Python (independent of
    ``dp``): states (x, o_1, ..., o_{L-1}) with position <= M, their costs, and per state the
    transition row (over the states) of every order q with position + q <= M."""
    states = [s for s in itertools.product(range(M + 1), repeat=lead) if sum(s) <= M]
    where = {s: i for i, s in enumerate(states)}
    costs, rows = [], {}
    for s in states:
        x = s[0]
        costs.append(sum(f * (h * max(x - d, 0) + p * max(d - x, 0)) for d, f in enumerate(pmf)))
        rows[s] = []
        for q in range(M - sum(s) + 1):
            row = np.zeros(len(states))
            for d, f in enumerate(pmf):
                left = max(x - d, 0)
                nxt = (left + q,) if lead == 1 else (left + s[1], *s[2:], q)
                row[where[nxt]] += f
            rows[s].append(row)
    return states, costs, rows


def _gains(transitions: np.ndarray, costs: np.ndarray) -> np.ndarray:
    """Long-run average cost from state 0 of each policy's transition matrix (a batch), by the
    Cesaro limit (1/n) sum_{i<n} P^i, n = 2^24 by doubling."""
    eye = np.eye(transitions.shape[-1])
    average, power = np.broadcast_to(eye, transitions.shape).copy(), transitions
    for _ in range(24):
        average = average @ (eye + power) / 2
        power = power @ power
    return (average @ costs)[:, 0]


@pytest.mark.parametrize(
    ("lead", "M", "n_policies"), [(1, 3, 24), (2, 3, 288), (3, 3, 6912), (4, 2, 48)]
)
def test_dp_matches_exhaustive_policy_evaluation(lead: int, M: int, n_policies: int) -> None:
    pmf, h, p = [0.3, 0.5, 0.2], 1.0, 4.0  # demand on {0, 1, 2}
    states, costs, rows = _truncated_mdp(pmf, lead, h, p, M)
    policies = list(itertools.product(*(range(len(rows[s])) for s in states)))
    assert len(policies) == n_policies
    transitions = np.array(
        [[rows[s][q] for s, q in zip(states, pol, strict=True)] for pol in policies]
    )
    gains = _gains(transitions, np.array(costs))
    optimum = dp.solve_lost_sales(np.array(pmf), lead, h, p, M, tol=1e-12)
    assert optimum.gain == pytest.approx(gains.min(), abs=1e-6)
    chosen = dict(zip(map(tuple, optimum.states.tolist()), optimum.orders.tolist(), strict=True))
    own = np.array([[rows[s][chosen[s]] for s in states]])
    assert _gains(own, np.array(costs))[0] == pytest.approx(gains.min(), abs=1e-6)
    assert gains.max() > gains.min() + 0.1  # the instance discriminates between policies


def test_dp_reproduces_zipkins_published_optimum() -> None:
    # Zipkin (2008), "Old and new methods for lost-sales inventory systems", Oper. Res. 56(5),
    # Table 3(a): Poisson(5), h = 1, p = 4, L = 4, optimal average cost 4.73 (two decimals)
    optimum = dp.solve_lost_sales(dp.poisson_pmf(5.0), 4, 1.0, 4.0)
    assert optimum.span < 1e-6
    assert optimum.gain == pytest.approx(4.73, abs=0.005)


def test_dp_truncation_loses_nothing() -> None:
    pmf = dp.poisson_pmf(5.0)
    bound = dp.morton_bound(pmf, 2, 1.0, 9.0)
    tight = dp.solve_lost_sales(pmf, 2, 1.0, 9.0, bound + 2)
    loose = dp.solve_lost_sales(pmf, 2, 1.0, 9.0, bound + 6)
    assert tight.gain == pytest.approx(loose.gain, abs=1e-6)
    # with backlogging the same demand costs less: lost sales (p = 9) lie between
    backlog = newsvendor.base_stock_optimum("poisson", 5.0, 0.0, 2, 1.0, 9.0)
    assert tight.gain < backlog.cost


@pytest.mark.parametrize(("lead", "p"), [(1, 9.0), (4, 4.0)])
def test_dp_policy_simulated_costs_its_gain(tmp_path: Path, lead: int, p: float) -> None:
    problem = make_problem(
        tmp_path,
        demand_law="poisson",
        lost_sales=True,
        store_lead_time=lead,
        underage_cost=p,
        test_samples=2000,
        test_periods=600,
        test_warmup=100,
        reference="auto",  # the DP for every L <= 4
    )
    assert problem.ref_kind == "dp"
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


class _EchelonLevels(torch.nn.Module):
    """Echelon base-stock with its own levels per sample (B, 1 + K): the store orders up to
    level 0 on its position, upstream node k up to level k on its echelon position (its own and
    every downstream node's on hand and pipeline)."""

    def __init__(self, levels: torch.Tensor) -> None:
        super().__init__()
        self.levels = levels

    def forward(self, obs: Any) -> torch.Tensor:
        store = obs.store_position()
        echelon = store + torch.cumsum(obs.upstream_position(), -1)
        return torch.relu(self.levels - torch.cat([store, echelon], -1))


def _grid_costs(problem: Any, grid: torch.Tensor, chunk: int = 512) -> torch.Tensor:
    """Mean train cost of every row of ``grid`` (echelon levels), all on the same train samples."""
    n = problem.split_size("train")
    costs = []
    for part in grid.split(chunk):
        samples = torch.arange(n).repeat(len(part))
        policy = _EchelonLevels(part.repeat_interleave(n, 0).to(problem.spec.demand_mean.dtype))
        with torch.no_grad():
            costs.append(problem._run(policy, "train", samples).cost.reshape(len(part), n).mean(1))
    return torch.cat(costs)


def test_serial_4_is_the_authors_instance_and_its_reference_the_brute_force_optimum(
    tmp_path: Path,
) -> None:
    config = OmegaConf.to_container(OmegaConf.load(CONFIGS / "problem" / "serial_4.yaml"))
    assert isinstance(config, dict)
    config.pop("_target_")
    # the authors' serial_system.yml: warehouse h 0.5, L 3; echelon_params listed upstream first,
    # holding_cost [0.1, 0.2], lead_time [2, 4]: from the store's supplier up, reversed
    assert config["upstream_lead_times"] == [3, *reversed([2, 4])]
    assert config["upstream_holding_costs"] == [0.5, *reversed([0.1, 0.2])]
    assert config["upstream_initial"] == "zero"
    sizes = dict(
        train_samples=64, dev_samples=16, test_samples=64, test_periods=200, test_warmup=100
    )
    problem = InventoryNetwork(**{**TINY, **config, **sizes, "reference": "auto"})
    problem.setup(make_context(tmp_path, 0, torch.float32))
    assert problem.ref_kind == "heuristic" and problem.spec.heuristic == "echelon_stock"
    assert float(problem.splits["train"].initial.upstream_on_hand[0].abs().sum()) == 0
    found = problem.ref_policy.unit_levels().detach() * problem.spec.demand_mean.sum()
    found_cost = float(_grid_costs(problem, found[None])[0])
    # brute force over integer echelon levels: a coarse grid (step 6) over the box of mean
    # lead-time demand +- 3 sd, then every level within 2 of the best point, again around the
    # new best until it is inside the window
    cumulative = np.cumsum([4 + 1, 3, 4, 2])  # periods of demand each echelon covers
    center, spread = 5.0 * cumulative, 3 * 2.0 * np.sqrt(cumulative)
    axes = [
        torch.arange(round(c - s), round(c + s) + 1, 6.0)
        for c, s in zip(center, spread, strict=True)
    ]
    coarse = torch.cartesian_prod(*axes)
    best = coarse[int(_grid_costs(problem, coarse).argmin())]
    for _ in range(6):
        window = torch.cartesian_prod(*(best[j] + torch.arange(-2.0, 3.0) for j in range(4)))
        costs = _grid_costs(problem, window)
        best = window[int(costs.argmin())]
        if ((best - window.min(0).values > 0) & (window.max(0).values - best > 0)).all():
            break
    else:
        raise AssertionError("the brute-force search did not settle")
    # the coordinate search is continuous: no worse than the integer optimum, and next to it
    assert found_cost <= float(costs.min()) * (1 + 1e-3)
    assert float((found - best).abs().max()) <= 1.5


@pytest.mark.parametrize("setting", [None, False])
def test_integer_demand_is_scored_with_rounded_orders(tmp_path: Path, setting: bool | None) -> None:
    """The authors round every order at test for Poisson demand: a base-stock level of 12.3 on
    integer positions then orders exactly as the level 12 (``round_test_orders=false``: as is)."""
    config = dict(demand_law="poisson", lost_sales=True, store_lead_time=2, reference="dp")
    problem = make_problem(tmp_path, round_test_orders=setting, **config)
    assert problem.round_test == (setting is None)
    policies = {}
    for level in (12.0, 12.3):
        policies[level] = BaseStock(problem.spec).double()
        with torch.no_grad():
            policies[level].theta.fill_(level / 5.0)
    scored = problem.evaluate(policies[12.3])["test_cost"]
    as_is = problem.mean_cost(policies[12.3], "test")
    integer = problem.mean_cost(policies[12.0], "test")
    assert abs(as_is - integer) > 1e-3
    assert scored == pytest.approx(integer if setting is None else as_is, rel=1e-12)
    normal = make_problem(tmp_path, store_lead_time=2)
    assert not normal.round_test
