"""The optimal base-stock level and cost of one store with backlogging (or lead time 0).

With backlogging, an order placed in period t is the last one that can affect the inventory
after the demand of period t + L, so the base-stock policy with level S is optimal and its
expected cost per period is the newsvendor cost over the protection interval of L + 1 periods,
``C(S) = h E(S - X)^+ + p E(X - S)^+`` with X the sum of L + 1 demands, minimised at the
critical ratio S* = F_X^-1(p / (p + h)) (Karlin 1958; Zipkin, "Foundations of Inventory
Management", 2000, Section 9.4). The same holds for lost sales when L = 0 (post-demand inventory
never exceeds S, so S is reached every period).

X is computed numerically: Poisson demand sums to Poisson((L+1) mu) exactly; demand
max(N(mu, sigma^2), 0) is discretised on a grid of step sigma/400 (midpoint rule, the atom at 0
in the first cell) and convolved L + 1 times by FFT.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal, stats


@dataclass(frozen=True)
class BaseStockOptimum:
    level: float
    cost: float


def lead_time_demand(
    law: str, mean: float, std: float, periods: int, cells_per_std: int = 400
) -> tuple[np.ndarray, np.ndarray]:
    """Support and probabilities of the sum of ``periods`` i.i.d. demands."""
    if law == "poisson":
        rate = mean * periods
        top = int(stats.poisson.ppf(1 - 1e-15, rate)) + 2 if rate > 0 else 1
        support = np.arange(top + 1, dtype=float)
        return support, stats.poisson.pmf(support, rate)
    step = std / cells_per_std
    top = int(np.ceil((mean + 12 * std) / step))
    edges = (np.arange(top + 1) + 0.5) * step
    cdf = stats.norm.cdf(edges, mean, std)
    pmf = np.diff(np.concatenate([[0.0], cdf]))  # cell 0 holds P(D < step/2), atom included
    total = pmf
    for _ in range(periods - 1):
        total = np.clip(signal.fftconvolve(total, pmf), 0, None)
    total = total / total.sum()
    return np.arange(len(total)) * step, total


def newsvendor_cost(
    support: np.ndarray, pmf: np.ndarray, level: float, h: float, p: float
) -> float:
    """``h E(S - X)^+ + p E(X - S)^+`` for the discrete X given by (support, pmf)."""
    gap = level - support
    return float(h * (pmf * np.clip(gap, 0, None)).sum() + p * (pmf * np.clip(-gap, 0, None)).sum())


def base_stock_optimum(
    law: str, mean: float, std: float, lead_time: int, h: float, p: float
) -> BaseStockOptimum:
    """The optimal base-stock level S* and expected cost per period C(S*)."""
    support, pmf = lead_time_demand(law, mean, std, lead_time + 1)
    cdf = np.cumsum(pmf)
    index = int(np.searchsorted(cdf, p / (p + h)))
    level = float(support[min(index, len(support) - 1)])
    if law != "poisson" and 0 < index < len(support):
        # the cell holds the mass of [x - step/2, x + step/2): interpolate the quantile inside
        step = support[1] - support[0]
        below = cdf[index - 1]
        level = support[index] - step / 2 + step * (p / (p + h) - below) / pmf[index]
    return BaseStockOptimum(level, newsvendor_cost(support, pmf, level, h, p))
