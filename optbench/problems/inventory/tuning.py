"""Tuning a parametric heuristic on sample paths: the problem's reference where no optimum is known.

Cyclic coordinate descent on the mean simulated cost: per coordinate, a grid over its bounds,
then Brent's bounded scalar minimisation (``scipy.optimize.minimize_scalar``) between the grid
neighbours of the best grid point; sweeps until a sweep improves the cost by less than ``rtol``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy import optimize

from optbench.contracts.inventory import ParametricPolicy


@torch.no_grad()
def coordinate_search(
    policy: ParametricPolicy,
    cost: Callable[[ParametricPolicy], float],
    grid_points: int = 9,
    max_sweeps: int = 4,
    rtol: float = 1e-4,
    xatol: float = 1e-3,
) -> float:
    """Minimise ``cost(policy)`` over ``policy.theta`` in place; return the final cost."""
    low, high = (b.detach().cpu().numpy() for b in policy.bounds())
    theta = policy.theta

    def at(j: int, value: float) -> float:
        theta[j] = value
        return cost(policy)

    best = cost(policy)
    for _ in range(max_sweeps):
        start = best
        for j in range(theta.numel()):
            current = float(theta[j])
            grid = np.linspace(low[j], high[j], grid_points)
            values = [at(j, float(v)) for v in grid]
            i = int(np.argmin(values))
            lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid_points - 1)]
            found = optimize.minimize_scalar(
                lambda v, j=j: at(j, float(v)),
                bounds=(lo, hi),
                method="bounded",
                options={"xatol": xatol},
            )
            candidates = [(best, current), (values[i], float(grid[i])), (found.fun, found.x)]
            best, value = min(candidates, key=lambda c: c[0])
            theta[j] = float(value)
        if start - best <= rtol * abs(start):
            break
    return best
