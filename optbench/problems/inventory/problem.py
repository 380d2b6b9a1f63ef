"""The inventory-network problem (kind ``inventory``) of Alvo, Russo and Kanoria (2023-25).

One class covers the paper's settings (``configs/problem/``): one store with backlogging or
lost sales, a serial system, and one warehouse with many stores, by its topology keys (number of
stores, a chain of upstream nodes) and cost / demand / lead-time keys. Heterogeneous stores (the
one-warehouse setting) draw their parameters once from ``instance_seed``, independently of the
run's seed: every seed solves the same instance on different demand samples.

The reference each ``evaluate`` compares to (``reference=auto``):

- ``analytic``: no upstream node and backlogging (or lead time 0): the optimal base-stock
  policy per store, its level and expected cost from the lead-time demand distribution
  (``newsvendor``);
- ``dp``: one store, lost sales, Poisson demand, a state space within ``dp_max_work``: the
  optimal policy and average cost by relative value iteration (``dp``);
- ``heuristic``: otherwise, the network's natural heuristic family (capped base-stock for lost
  sales, echelon-stock with upstream nodes) tuned on the train samples by coordinate search
  (``tuning``); its expected cost is estimated by its test cost.

``gap_pct`` is measured against the expected cost of the reference, ``gap_crn_pct`` against the
reference policy simulated on the same test samples (common random numbers, far less noise).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import numpy as np
import torch

from optbench.contracts.context import Cache, RunContext
from optbench.contracts.errors import ConfigError
from optbench.contracts.inventory import (
    InventoryPolicy,
    InventoryProblem,
    InventorySpec,
    Observation,
    Simulation,
)
from optbench.problems.inventory import dp, newsvendor
from optbench.problems.inventory.demand import LAWS, SPLITS, UPSTREAM_INITIAL, DemandLaw, Split
from optbench.problems.inventory.dynamics import Dynamics
from optbench.problems.inventory.heuristics import BaseStock, heuristic_policy
from optbench.problems.inventory.tuning import coordinate_search

REFERENCES = ("auto", "analytic", "dp", "heuristic", "none")
log = logging.getLogger(__name__)
#: test splits of at least this many sample-periods (tens of seconds) announce each evaluation
LONG_EVALUATION = 10**7
CACHE_VERSION = "inventory-v2"


def _range(name: str, values: list[float] | None, positive: bool = True) -> list[float] | None:
    if values is None:
        return None
    if len(values) != 2 or values[0] > values[1]:
        raise ConfigError(f"{name}: expected [low, high] with low <= high, got {values}")
    if positive and values[0] <= 0:
        raise ConfigError(f"{name}: must be > 0, got {values}")
    return [float(v) for v in values]


class InventoryNetwork(InventoryProblem):
    """A network of ``n_stores`` stores below a chain of upstream nodes (see the module doc).

    Args (per store unless a ``*_range`` draws heterogeneous stores from ``instance_seed``):
        n_stores, lost_sales: topology and what happens to unmet demand.
        demand_law: ``normal`` (clipped at 0, ``demand_std``, ``demand_correlation`` between
            stores) or ``poisson``; ``demand_mean``.
        holding_cost (h), underage_cost (p), store_lead_time (L).
        demand_mean_range, demand_cv_range, holding_cost_range, underage_cost_range:
            [low, high] uniform draws per store; store_lead_time_range: integers in [low, high].
        upstream_lead_times, upstream_holding_costs: the chain above the stores, from the
            stores' supplier upward (empty: stores order from an outside supplier). The authors'
            configs list their extra echelons the other way round, upstream first.
        upstream_initial: the upstream nodes' initial state, ``zero`` (the authors': empty,
            nothing in transit) or ``uniform`` (on hand and pipeline ~ U[0, 1] x total mean).
        {train,dev,test}_{samples,periods,warmup}: the three splits (warm-up periods excluded).
        reference: auto | analytic | dp | heuristic | none; dp_max_work: largest DP
            ((state, order, outcome) transitions) attempted by ``auto``: every lead time
            L <= 4 of the paper's grid (at most 6.1e6 for p = 39), not L >= 5.
        round_test_orders: score test costs with every order rounded to an integer; ``null``:
            for Poisson demand, as the authors' test (``discrete_allocation`` in main_run.py).
    """

    def __init__(
        self,
        n_stores: int = 1,
        lost_sales: bool = False,
        demand_law: str = "normal",
        demand_mean: float = 5.0,
        demand_std: float = 1.6,
        demand_correlation: float = 0.0,
        holding_cost: float = 1.0,
        underage_cost: float = 9.0,
        store_lead_time: int = 1,
        demand_mean_range: list[float] | None = None,
        demand_cv_range: list[float] | None = None,
        holding_cost_range: list[float] | None = None,
        underage_cost_range: list[float] | None = None,
        store_lead_time_range: list[int] | None = None,
        instance_seed: int = 0,
        upstream_lead_times: list[int] | None = None,
        upstream_holding_costs: list[float] | None = None,
        upstream_initial: str = "zero",
        train_samples: int = 32768,
        train_periods: int = 50,
        train_warmup: int = 30,
        dev_samples: int = 32768,
        dev_periods: int = 100,
        dev_warmup: int = 60,
        test_samples: int = 32768,
        test_periods: int = 5000,
        test_warmup: int = 3000,
        reference: str = "auto",
        dp_max_work: int = 20_000_000,
        round_test_orders: bool | None = None,
    ) -> None:
        config = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        super().__init__()
        if n_stores < 1:
            raise ConfigError(f"n_stores: must be >= 1, got {n_stores}")
        if demand_law not in LAWS:
            raise ConfigError(f"demand_law: unknown '{demand_law}' (known: {', '.join(LAWS)})")
        if demand_mean <= 0:
            raise ConfigError(f"demand_mean: must be > 0, got {demand_mean}")
        if demand_std < 0:
            raise ConfigError(f"demand_std: must be >= 0, got {demand_std}")
        if not 0 <= demand_correlation < 1:
            raise ConfigError(f"demand_correlation: must be in [0, 1), got {demand_correlation}")
        if demand_law == "poisson" and demand_correlation > 0:
            raise ConfigError("demand_correlation: correlated demand needs demand_law=normal")
        if holding_cost <= 0:
            raise ConfigError(f"holding_cost: must be > 0, got {holding_cost}")
        if underage_cost <= 0:
            raise ConfigError(f"underage_cost: must be > 0, got {underage_cost}")
        if store_lead_time < 0:
            raise ConfigError(f"store_lead_time: must be >= 0, got {store_lead_time}")
        self.ranges = {
            "demand_mean": _range("demand_mean_range", demand_mean_range),
            "demand_cv": _range("demand_cv_range", demand_cv_range),
            "holding_cost": _range("holding_cost_range", holding_cost_range),
            "underage_cost": _range("underage_cost_range", underage_cost_range),
            "store_lead_time": _range("store_lead_time_range", store_lead_time_range, False),
        }
        if store_lead_time_range is not None and store_lead_time_range[0] < 0:
            raise ConfigError(f"store_lead_time_range: must be >= 0, got {store_lead_time_range}")
        upstream_lead_times = list(upstream_lead_times or [])
        upstream_holding_costs = list(upstream_holding_costs or [])
        if len(upstream_lead_times) != len(upstream_holding_costs):
            raise ConfigError(
                "upstream_holding_costs: one per upstream node, got "
                f"{len(upstream_holding_costs)} for {len(upstream_lead_times)} lead times"
            )
        for i, lead in enumerate(upstream_lead_times):
            if lead < 0:
                raise ConfigError(f"upstream_lead_times[{i}]: must be >= 0, got {lead}")
        for i, h in enumerate(upstream_holding_costs):
            if h < 0:
                raise ConfigError(f"upstream_holding_costs[{i}]: must be >= 0, got {h}")
        if upstream_initial not in UPSTREAM_INITIAL:
            known = ", ".join(UPSTREAM_INITIAL)
            raise ConfigError(f"upstream_initial: unknown '{upstream_initial}' (known: {known})")
        self.upstream_initial = upstream_initial
        self.sizes: dict[str, tuple[int, int, int]] = {}
        for split, (samples, periods, warmup) in {
            "train": (train_samples, train_periods, train_warmup),
            "dev": (dev_samples, dev_periods, dev_warmup),
            "test": (test_samples, test_periods, test_warmup),
        }.items():
            if samples < 1:
                raise ConfigError(f"{split}_samples: must be >= 1, got {samples}")
            if not 0 <= warmup < periods:
                raise ConfigError(
                    f"{split}_warmup: must be in [0, {split}_periods), got {warmup} "
                    f"with {periods} periods"
                )
            self.sizes[split] = (samples, periods, warmup)
        if reference not in REFERENCES:
            raise ConfigError(f"reference: unknown '{reference}' (known: {', '.join(REFERENCES)})")
        leads = store_lead_time_range or [store_lead_time]
        if reference == "analytic" and (upstream_lead_times or (lost_sales and max(leads) > 0)):
            raise ConfigError(
                "reference: analytic needs no upstream nodes and backlogging (or lead time 0)"
            )
        if reference == "dp" and (
            upstream_lead_times or not lost_sales or demand_law != "poisson" or n_stores != 1
        ):
            raise ConfigError("reference: dp needs one store, lost sales and Poisson demand")
        self.n_stores, self.lost_sales, self.law = n_stores, lost_sales, demand_law
        self.demand_mean, self.demand_std = demand_mean, demand_std
        self.correlation = demand_correlation
        self.holding_cost, self.underage_cost = holding_cost, underage_cost
        self.store_lead_time, self.instance_seed = store_lead_time, instance_seed
        self.upstream_lead_times = upstream_lead_times
        self.upstream_holding_costs = upstream_holding_costs
        self.reference, self.dp_max_work = reference, dp_max_work
        # the authors round orders at test when demand is integer (``discrete_allocation``)
        self.round_test = (
            demand_law == "poisson" if round_test_orders is None else round_test_orders
        )
        self.config = config  # the identity of the instance (cache keys)
        self.ref_kind = "none"
        self.ref_cost: float | None = None
        self.ref_test_cost: float | None = None
        self._facts: dict[str, Any] = {}

    # -- instance --------------------------------------------------------------------------------
    def _stores(self) -> dict[str, np.ndarray]:
        """Per-store parameters: the scalar keys, or draws from the ranges (instance_seed)."""
        n, rng = self.n_stores, np.random.default_rng(self.instance_seed)
        r = self.ranges

        def draw(key: str, default: float) -> np.ndarray:
            if r[key] is None:
                return np.full(n, float(default))
            return rng.uniform(r[key][0], r[key][1], n)

        mean = draw("demand_mean", self.demand_mean)
        if self.law == "poisson":
            std = np.sqrt(mean)
        elif r["demand_cv"] is not None:
            std = mean * draw("demand_cv", 0.0)
        else:
            std = np.full(n, float(self.demand_std))
        if r["store_lead_time"] is None:
            lead = np.full(n, self.store_lead_time, dtype=np.int64)
        else:
            low, high = r["store_lead_time"]
            lead = rng.integers(int(low), int(high) + 1, n)
        return {
            "mean": mean,
            "std": std,
            "h": draw("holding_cost", self.holding_cost),
            "p": draw("underage_cost", self.underage_cost),
            "lead": lead,
        }

    def natural_heuristic(self) -> str:
        if self.upstream_lead_times:
            return "echelon_stock"
        return "capped_base_stock" if self.lost_sales else "base_stock"

    # -- set-up ----------------------------------------------------------------------------------
    def setup(self, ctx: RunContext) -> None:
        stores = self._stores()
        self.store_params = stores
        self.spec = InventorySpec(
            n_stores=self.n_stores,
            store_lead_times=tuple(int(v) for v in stores["lead"]),
            upstream_lead_times=tuple(self.upstream_lead_times),
            store_holding_costs=ctx.tensor(stores["h"]),
            store_underage_costs=ctx.tensor(stores["p"]),
            upstream_holding_costs=ctx.tensor(self.upstream_holding_costs),
            demand_mean=ctx.tensor(stores["mean"]),
            demand_std=ctx.tensor(stores["std"]),
            lost_sales=self.lost_sales,
            integer_demand=self.law == "poisson",
            heuristic=self.natural_heuristic(),
        )
        law = DemandLaw(self.law, self.spec.demand_mean, self.spec.demand_std, self.correlation)
        self.splits = {
            name: Split(
                name,
                self.spec,
                law,
                *self.sizes[name],
                ctx.problem_random.child(name).integer_seed(),
                self.upstream_initial,
            )
            for name in SPLITS
        }
        self.dynamics = Dynamics(self.spec)
        log.info(
            "inventory: %s; reference %s",
            ", ".join(
                f"{k} {n} x {T} periods (warm-up {w})" for k, (n, T, w) in self.sizes.items()
            ),
            self._reference_kind(),
        )
        self._reference_setup(ctx)

    def split_size(self, split: str) -> int:
        return self._split(split).n_samples

    def _split(self, split: str) -> Split:
        if split not in SPLITS:
            raise ValueError(f"unknown split '{split}' (known: {', '.join(SPLITS)})")
        return self.splits[split]

    # -- oracles ---------------------------------------------------------------------------------
    def _run(
        self,
        policy: InventoryPolicy,
        split: str,
        samples: torch.Tensor | None = None,
        keep_periods: bool = False,
    ) -> Simulation:
        data = self._split(split)
        return self.dynamics.run(
            policy, data.initial.take(samples), data.chunks(samples), data.warmup, keep_periods
        )

    def simulate(
        self,
        policy: InventoryPolicy,
        split: str = "train",
        samples: torch.Tensor | None = None,
        keep_periods: bool = False,
    ) -> Simulation:
        data = self._split(split)
        batch = data.n_samples if samples is None else len(samples)
        self.counters["simulations"] += 1
        self.counters["sample_periods"] += batch * data.n_periods
        return self._run(policy, split, samples, keep_periods)

    @torch.no_grad()
    def mean_cost(self, policy: InventoryPolicy, split: str) -> float:
        """The mean cost of ``policy`` over all samples of ``split`` (uncounted)."""
        return float(self._run(policy, split).cost.mean())

    def test_cost(self, policy: InventoryPolicy) -> float:
        """The mean test cost, orders rounded to integers if ``round_test_orders``."""
        return self.mean_cost(RoundedOrders(policy) if self.round_test else policy, "test")

    # -- reference -------------------------------------------------------------------------------
    def _reference_kind(self) -> str:
        if self.reference != "auto":
            return self.reference
        if not self.upstream_lead_times:
            if not self.lost_sales or max(self.spec.store_lead_times) == 0:
                return "analytic"
            lead = self.spec.store_lead_times[0]
            if (
                self.n_stores == 1
                and self.law == "poisson"
                and self._dp_work(lead) <= self.dp_max_work
            ):
                return "dp"
        return "heuristic"

    def _dp_bound(self) -> tuple[np.ndarray, int]:
        s = self.store_params
        pmf = dp.poisson_pmf(float(s["mean"][0]))
        lead = int(s["lead"][0])
        return pmf, dp.morton_bound(pmf, lead, float(s["h"][0]), float(s["p"][0])) + 2

    def _dp_work(self, lead: int) -> int:
        if lead < 1:
            return 0
        _, M = self._dp_bound()
        return dp.n_transitions(lead, M)  # (state, order, outcome) triples

    def _reference_setup(self, ctx: RunContext) -> None:
        kind = self._reference_kind()
        self.ref_kind = kind
        facts: dict[str, Any] = {"reference": kind}
        policy: InventoryPolicy | None = None
        if kind == "none":
            self._facts = facts
            return
        s = self.store_params
        if kind == "analytic":
            optima = [
                newsvendor.base_stock_optimum(
                    self.law, s["mean"][i], s["std"][i], int(s["lead"][i]), s["h"][i], s["p"][i]
                )
                for i in range(self.n_stores)
            ]
            policy = BaseStock(self.spec)
            with torch.no_grad():
                policy.theta.copy_(ctx.tensor([o.level for o in optima]) / self.spec.demand_mean)
            self.ref_cost = float(np.mean([o.cost for o in optima]))
            facts["optimal_levels"] = [round(float(o.level), 4) for o in optima]
        elif kind == "dp":
            optimum = self._solve_dp(ctx.cache)
            policy = dp.TablePolicy(self.spec, optimum)
            self.ref_cost = optimum.gain
            facts.update(dp_states=len(optimum.states), dp_max_position=optimum.max_position)
            facts.update(dp_iterations=optimum.iterations, dp_span=optimum.span)
        else:
            policy = self._tuned_heuristic(ctx)
            facts["reference_policy"] = json.dumps(policy.describe())
        self.ref_policy = policy
        start = time.monotonic()
        self.ref_test_cost = self.test_cost(policy)
        if self.ref_cost is None:
            self.ref_cost = self.ref_test_cost
        log.info(
            "inventory: reference cost %.4f, %.4f on the test samples (simulated in %.1f s)",
            self.ref_cost,
            self.ref_test_cost,
            time.monotonic() - start,
        )
        facts.update(ref_cost=self.ref_cost, ref_test_cost=self.ref_test_cost)
        self._facts = facts

    def _solve_dp(self, cache: Cache) -> dp.LostSalesOptimum:
        s = self.store_params
        pmf, M = self._dp_bound()
        lead, h, p = int(s["lead"][0]), float(s["h"][0]), float(s["p"][0])
        key = [CACHE_VERSION, "dp", float(s["mean"][0]), lead, h, p, M]

        def solve() -> dp.LostSalesOptimum:
            transitions = dp.n_transitions(lead, M)
            log.info(
                "inventory: solving the lost-sales DP (L = %d, %d transitions)", lead, transitions
            )
            return dp.solve_lost_sales(pmf, lead, h, p, M)

        return cache.get_or_compute("inventory_dp", key, solve)

    def _tuned_heuristic(self, ctx: RunContext) -> Any:
        policy = heuristic_policy(self.spec).to(ctx.device)

        def search() -> list[float]:
            log.info("inventory: tuning the %s reference on the train samples", self.spec.heuristic)
            coordinate_search(policy, lambda pol: self.mean_cost(pol, "train"))
            return policy.theta.detach().cpu().tolist()

        # tuned on the train samples: the key names them by the train split's seed
        key = [CACHE_VERSION, self.config, self.splits["train"].seed, str(ctx.dtype)]
        theta = ctx.cache.get_or_compute("inventory_heuristic", key, search)
        with torch.no_grad():
            policy.theta.copy_(ctx.tensor(theta))
        return policy

    # -- scoring ---------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, solution: InventoryPolicy) -> dict[str, float]:
        samples, periods, _ = self.sizes["test"]
        level = logging.INFO if samples * periods >= LONG_EVALUATION else logging.DEBUG
        log.log(level, "inventory: evaluating on %d test samples x %d periods", samples, periods)
        start = time.monotonic()
        test = self.test_cost(solution)
        log.log(level, "inventory: test cost %.4f (%.1f s)", test, time.monotonic() - start)
        metrics = {"test_cost": test, "dev_cost": self.mean_cost(solution, "dev")}
        if self.ref_cost is not None and self.ref_test_cost is not None:
            metrics["gap_pct"] = 100 * (test - self.ref_cost) / self.ref_cost
            metrics["gap_crn_pct"] = 100 * (test - self.ref_test_cost) / self.ref_test_cost
        return metrics

    def describe(self) -> dict[str, Any]:
        spec = self.spec
        facts = {
            "n_stores": spec.n_stores,
            "lost_sales": spec.lost_sales,
            "demand_law": self.law,
            "store_lead_times": list(spec.store_lead_times),
            "upstream_lead_times": list(spec.upstream_lead_times),
            "natural_heuristic": spec.heuristic,
            **{f"{k}_samples": v[0] for k, v in self.sizes.items()},
        }
        if self.n_stores > 1:
            facts["store_params"] = json.dumps(
                {k: np.round(v, 4).tolist() for k, v in self.store_params.items()}
            )
        return {**facts, **self._facts}


class RoundedOrders(torch.nn.Module):
    """``policy`` with every order rounded to the nearest integer (the authors' test-time
    ``discrete_allocation`` for integer demand)."""

    def __init__(self, policy: InventoryPolicy) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, obs: Observation) -> torch.Tensor:
        return self.policy(obs).round()
