"""Search over a heuristic's parameters on the train samples (grid + golden section).

The benchmark heuristics of Alvo, Russo and Kanoria (2023-25) are tuned by search on sample
paths. Cyclic coordinate descent on the mean train cost of a ``ParametricPolicy`` (base-stock
levels, capped base-stock (S, cap), echelon levels, newsvendor quantiles): for one coordinate, a
grid of ``grid_points`` over its bounds, then golden-section search (Kiefer 1953) with
``golden_iters`` evaluations between the grid neighbours of the best grid point. One runner step
is one coordinate; the run converges when a full sweep improves the train cost by less than
``rtol`` (relative).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import torch

from optbench.algorithms.inventory.training import build_policy
from optbench.contracts.algorithm import Algorithm, Progress
from optbench.contracts.context import RunContext
from optbench.contracts.errors import ConfigError
from optbench.contracts.inventory import InventoryProblem, ParametricPolicy
from optbench.contracts.problem import ProblemKind

INV_PHI = (math.sqrt(5) - 1) / 2


class HeuristicSearch(Algorithm):
    """Coordinate-wise grid + golden-section search; see the module docstring."""

    accepts: ClassVar[frozenset[ProblemKind]] = frozenset({ProblemKind.INVENTORY})

    def __init__(
        self,
        policy: Callable[..., Any],
        grid_points: int = 11,
        golden_iters: int = 20,
        train_samples: int | None = None,
        rtol: float = 1e-4,
    ) -> None:
        if not callable(policy):
            raise ConfigError("policy: expected a policy config (configs/policy) with _partial_")
        if grid_points < 3:
            raise ConfigError(f"grid_points: must be >= 3, got {grid_points}")
        if golden_iters < 0:
            raise ConfigError(f"golden_iters: must be >= 0, got {golden_iters}")
        if train_samples is not None and train_samples < 1:
            raise ConfigError(f"train_samples: must be >= 1, got {train_samples}")
        self.policy_factory, self.grid_points, self.golden_iters = policy, grid_points, golden_iters
        self.train_samples, self.rtol = train_samples, rtol

    def run(self, problem: InventoryProblem, ctx: RunContext) -> Iterator[Progress]:
        policy = build_policy(self.policy_factory, problem, ctx)
        if not isinstance(policy, ParametricPolicy):
            raise ConfigError(
                f"algorithm.policy: heuristic_search needs a parametric policy, got "
                f"{type(policy).__name__}"
            )
        n = problem.split_size("train")
        samples = None
        if self.train_samples is not None and self.train_samples < n:
            samples = torch.arange(self.train_samples, device=ctx.device)
        theta = policy.theta
        low, high = (b.detach().cpu().tolist() for b in policy.bounds())

        @torch.no_grad()
        def cost_at(j: int, value: float) -> float:
            theta[j] = value
            return float(problem.simulate(policy, "train", samples).cost.mean())

        with torch.no_grad():
            best = float(problem.simulate(policy, "train", samples).cost.mean())
        yield Progress(copy.deepcopy(policy), {"train_cost": best})
        j, sweep_start = 0, best
        while True:
            current = float(theta[j].detach())
            grid = torch.linspace(low[j], high[j], self.grid_points).tolist()
            values = [cost_at(j, v) for v in grid]
            i = min(range(len(grid)), key=values.__getitem__)
            candidates = [(best, current), (values[i], grid[i])]
            a, b = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
            c, d = b - INV_PHI * (b - a), a + INV_PHI * (b - a)
            fc, fd = cost_at(j, c), cost_at(j, d)
            for _ in range(max(self.golden_iters - 2, 0)):
                if fc <= fd:
                    b, d, fd = d, c, fc
                    c = b - INV_PHI * (b - a)
                    fc = cost_at(j, c)
                else:
                    a, c, fc = c, d, fd
                    d = a + INV_PHI * (b - a)
                    fd = cost_at(j, d)
            candidates += [(fc, c), (fd, d)]
            best, value = min(candidates, key=lambda pair: pair[0])
            with torch.no_grad():
                theta[j] = value
            metrics = {"train_cost": best, "coordinate": float(j)}
            j += 1
            converged = False
            if j == theta.numel():
                converged = sweep_start - best <= self.rtol * abs(sweep_start)
                j, sweep_start = 0, best
            yield Progress(copy.deepcopy(policy), metrics, converged)
