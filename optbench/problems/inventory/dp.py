"""The optimal policy of one store with lost sales and integer demand, by dynamic programming.

State at the decision of period t (after this period's arrival): x = units on hand and the
outstanding orders (o_1, ..., o_{L-1}), o_j arriving j periods from now. Order q (arrives in L
periods). Demand d: cost h (x - d)^+ + p (d - x)^+, next state ((x - d)^+ + o_1, o_2, ..., q)
(for L = 1: (x - d)^+ + q). The minimal long-run average cost g* and an optimal stationary policy
come from relative value iteration (Puterman, "Markov Decision Processes", 1994, Section 8.5.5)
on the aperiodicity-transformed chain P' = tau P + (1 - tau) I (Section 8.5.4), stopped when the
span of the update is below ``tol``, which brackets g* to within ``tol``.

Truncation: only states and orders whose inventory position x + sum(o) + q stays within
``max_position`` are considered. Morton (1969, "Bounds on the solution of the lagged optimal
inventory equation with no demand backlogging and proportional costs", SIAM Review 11(4)) shows
that the optimal lost-sales position after ordering never exceeds the backlogging base-stock
level F^-1_{L+1}(p / (p + h)), so ``morton_bound`` plus a margin loses nothing (the tests check
that a larger bound gives the same g*). This is how Zipkin (2008, "Old and new methods for
lost-sales inventory systems", Oper. Res. 56(5)) computes the optima the paper compares to.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

from optbench.contracts.inventory import InventorySpec, Observation


@dataclass
class LostSalesOptimum:
    gain: float  # g*: minimal average cost per period
    states: np.ndarray  # (N, L) integer states (x, o_1, ..., o_{L-1})
    orders: np.ndarray  # (N,) optimal order per state
    max_position: int
    iterations: int
    span: float  # final span of the value update (g* is bracketed to within it)


def poisson_pmf(mean: float, tail: float = 1e-15) -> np.ndarray:
    """Poisson probabilities on 0..D with P(D > top) < tail, renormalised."""
    top = int(stats.poisson.ppf(1 - tail, mean)) + 1
    pmf = stats.poisson.pmf(np.arange(top + 1), mean)
    return pmf / pmf.sum()


def morton_bound(pmf: np.ndarray, lead_time: int, h: float, p: float) -> int:
    """The backlogging base-stock level F^-1_{L+1}(p/(p+h)) for the demand ``pmf``."""
    total = pmf
    for _ in range(lead_time):
        total = np.convolve(total, pmf)
    return int(np.searchsorted(np.cumsum(total), p / (p + h)))


def enumerate_states(lead_time: int, max_position: int) -> np.ndarray:
    """All (x, o_1, ..., o_{L-1}) of nonnegative integers with sum <= max_position."""
    dims = max(lead_time, 1)
    states = [
        s for s in itertools.product(range(max_position + 1), repeat=dims) if sum(s) <= max_position
    ]
    return np.array(states, dtype=np.int64).reshape(-1, dims)


def transition_model(
    pmf: np.ndarray, lead_time: int, h: float, p: float, max_position: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """States, immediate costs c(s), next-on-hand probabilities P(s, k), next-state indices
    next[s, q, k] (-1 where order q is not allowed) of the truncated lost-sales MDP."""
    if lead_time < 1:
        raise ValueError("the lost-sales DP needs lead time >= 1 (L = 0 is a newsvendor)")
    M = max_position
    states = enumerate_states(lead_time, M)
    n_states = len(states)
    index = -np.ones((M + 1,) * lead_time, dtype=np.int64)
    index[tuple(states.T)] = np.arange(n_states)
    x = states[:, 0]
    support = np.arange(len(pmf))
    # immediate cost and the law of the on hand left after demand, k = (x - d)^+
    over = np.clip(x[:, None] - support[None, :], 0, None)
    under = np.clip(support[None, :] - x[:, None], 0, None)
    cost = (pmf[None, :] * (h * over + p * under)).sum(1)
    k = np.arange(M + 1)
    prob = np.zeros((n_states, M + 1))
    d = x[:, None] - k[None, :]  # demand leaving k units, valid for 1 <= k <= x
    valid = (k[None, :] >= 1) & (d >= 0) & (d < len(pmf))
    prob[valid] = pmf[d[valid]]
    cdf = np.concatenate([[0.0], np.cumsum(pmf)])
    prob[:, 0] = 1 - cdf[np.minimum(x, len(pmf))]  # P(D >= x)
    # next state for (state, order q, leftover k)
    q = np.arange(M + 1)
    position = states.sum(1)
    allowed = position[:, None] + q[None, :] <= M
    first = k[None, None, :] + (states[:, 1][:, None, None] if lead_time > 1 else q[None, :, None])
    nxt = np.full((n_states, M + 1, M + 1), -1, dtype=np.int64)
    ok = allowed[:, :, None] & (k[None, None, :] <= x[:, None, None])
    ok = ok & (first <= M)
    if lead_time == 1:
        coords = (np.broadcast_to(first, ok.shape)[ok],)
    else:
        rest = [
            np.broadcast_to(states[:, j][:, None, None], ok.shape)[ok] for j in range(2, lead_time)
        ]
        qq = np.broadcast_to(q[None, :, None], ok.shape)[ok]
        coords = (np.broadcast_to(first, ok.shape)[ok], *rest, qq)
    nxt[ok] = index[coords]
    return states, cost, prob, nxt


def solve_lost_sales(
    pmf: np.ndarray,
    lead_time: int,
    h: float,
    p: float,
    max_position: int | None = None,
    tol: float = 1e-7,
    tau: float = 0.9,
    max_iter: int = 100_000,
) -> LostSalesOptimum:
    """g* and an optimal policy by relative value iteration (see the module docstring)."""
    if max_position is None:
        max_position = morton_bound(pmf, lead_time, h, p) + 2
    states, cost, prob, nxt = transition_model(pmf, lead_time, h, p, max_position)
    value = np.zeros(len(states) + 1)  # last entry: read where nxt = -1, always masked out
    span, lo, hi = np.inf, 0.0, 0.0
    iteration = 0
    while iteration < max_iter:
        iteration += 1
        future = (prob[:, None, :] * value[nxt]).sum(-1)  # (N, Q)
        future = np.where(nxt[:, :, 0] >= 0, future, np.inf)
        best = cost + future.min(1)
        delta = best - value[:-1]
        lo, hi = delta.min(), delta.max()
        span = hi - lo
        value[:-1] = value[:-1] + tau * delta
        value[:-1] -= value[0]
        if span < tol:
            break
    orders = np.argmin(
        np.where(nxt[:, :, 0] >= 0, (prob[:, None, :] * value[nxt]).sum(-1), np.inf), 1
    )
    return LostSalesOptimum(
        gain=float((lo + hi) / 2),
        states=states,
        orders=orders,
        max_position=max_position,
        iterations=iteration,
        span=float(span),
    )


class TablePolicy(torch.nn.Module):
    """The DP's optimal policy for one store, looked up from the observed integer state.

    States outside the table (inventory position above the truncation bound) order nothing,
    which is optimal there by Morton's bound.
    """

    def __init__(self, spec: InventorySpec, optimum: LostSalesOptimum) -> None:
        super().__init__()
        ref = spec.demand_mean
        lead = spec.store_lead_times[0]
        M = optimum.max_position
        table = torch.zeros((M + 1,) * max(lead, 1), dtype=ref.dtype)
        table[tuple(torch.as_tensor(optimum.states).T)] = torch.as_tensor(
            optimum.orders, dtype=ref.dtype
        )
        self.register_buffer("table", table.to(ref.device))
        self.lead, self.max_position = lead, M

    def forward(self, obs: Observation) -> torch.Tensor:
        state = torch.cat([obs.store_on_hand, obs.store_pipeline[:, 0, : self.lead - 1]], -1)
        state = state.round().long()
        inside = (state.sum(-1) <= self.max_position) & (state >= 0).all(-1)
        safe = torch.where(inside[:, None], state, torch.zeros_like(state))
        orders = self.table[tuple(safe.T)]
        return torch.where(inside, orders, torch.zeros_like(orders))[:, None]
