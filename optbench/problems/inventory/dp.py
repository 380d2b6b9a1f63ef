"""The optimal policy of one store with lost sales and integer demand, by dynamic programming.

State at the decision of period t (after this period's arrival): x = units on hand and the
outstanding orders (o_1, ..., o_{L-1}), o_j arriving j periods from now. Order q (arrives in L
periods). Demand d: cost h (x - d)^+ + p (d - x)^+, next state ((x - d)^+ + o_1, o_2, ..., q)
(for L = 1: (x - d)^+ + q). The minimal long-run average cost g* and an optimal stationary policy
come from relative value iteration (Puterman, "Markov Decision Processes", 1994, Section 8.5.5)
on the aperiodicity-transformed chain P' = tau P + (1 - tau) I (Section 8.5.4), stopped when the
span of the update is below ``tol``; min and max of the update bracket g* (Odoni 1969), so g* is
known to within ``tol``.

Truncation: only states and orders whose inventory position x + sum(o) + q stays within
``max_position`` are considered. Morton (1969, "Bounds on the solution of the lagged optimal
inventory equation with no demand backlogging and proportional costs", SIAM Review 11(4)) shows
that the optimal lost-sales position after ordering never exceeds the backlogging base-stock
level F^-1_{L+1}(p / (p + h)), so ``morton_bound`` plus a margin loses nothing (the tests check
that a larger bound gives the same g*). This is how Zipkin (2008, "Old and new methods for
lost-sales inventory systems", Oper. Res. 56(5)) computes the optima the paper compares to.

Speed: only the first coordinate of the state is random, so the expected next value of a
(state, order) pair is sum_k P(k | x) V(k + o_1, o_2, ..., q) over the k = (x - d)^+ left on hand.
Every (state, order) pair is a row of one sparse matrix over the states, with x + 1 entries;
one Bellman update is one sparse product and a minimum over each state's orders. The matrix has
C(M + L + 2, L + 2) entries (M = max_position): about 6 x 10^6 for Poisson(5), L = 4, p = 39.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import sparse, stats

from optbench.contracts.inventory import InventorySpec, Observation


@dataclass
class LostSalesOptimum:
    gain: float  # g*: minimal average cost per period
    states: np.ndarray  # (N, L) integer states (x, o_1, ..., o_{L-1})
    orders: np.ndarray  # (N,) optimal order per state
    max_position: int
    iterations: int
    span: float  # final span of the value update (g* is bracketed to within it)


@dataclass
class LostSalesModel:
    """The truncated MDP: ``states`` (N, L); ``cost`` (N,) expected period cost c(x);
    ``pairs``: the (state, order) rows, grouped by state, ``first`` (N,) the row of each state's
    order 0 (its orders are 0, 1, ... up to the next state's first row); ``transition``: the
    (rows, N) sparse matrix of next-state probabilities."""

    states: np.ndarray
    cost: np.ndarray
    first: np.ndarray
    transition: sparse.csr_matrix

    @property
    def n_orders(self) -> np.ndarray:
        return np.diff(np.append(self.first, self.transition.shape[0]))


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


def n_transitions(lead_time: int, max_position: int) -> int:
    """Nonzeros of the transition matrix: C(M + L + 2, L + 2) (see the module docstring)."""
    return math.comb(max_position + lead_time + 2, lead_time + 2)


def enumerate_states(lead_time: int, max_position: int) -> np.ndarray:
    """All (x, o_1, ..., o_{L-1}) of nonnegative integers with sum <= max_position, in
    lexicographic order."""
    dims = max(lead_time, 1)
    grid = np.indices((max_position + 1,) * dims).reshape(dims, -1).T
    return grid[grid.sum(1) <= max_position]


def transition_model(
    pmf: np.ndarray, lead_time: int, h: float, p: float, max_position: int
) -> LostSalesModel:
    """The truncated lost-sales MDP as a sparse matrix (see ``LostSalesModel``)."""
    if lead_time < 1:
        raise ValueError("the lost-sales DP needs lead time >= 1 (L = 0 is a newsvendor)")
    M, L = max_position, lead_time
    states = enumerate_states(L, M)
    n_states = len(states)
    index = np.full((M + 1,) * L, -1, dtype=np.int64)
    index[tuple(states.T)] = np.arange(n_states)
    x = states[:, 0]
    support = np.arange(len(pmf))
    over = np.clip(x[:, None] - support[None, :], 0, None)
    under = np.clip(support[None, :] - x[:, None], 0, None)
    cost = (pmf[None, :] * (h * over + p * under)).sum(1)
    # (state, order) rows: order q = 0 .. M - position(state)
    n_orders = M - states.sum(1) + 1
    first = np.concatenate([[0], np.cumsum(n_orders)[:-1]])
    row_state = np.repeat(np.arange(n_states), n_orders)
    row_order = np.arange(len(row_state)) - np.repeat(first, n_orders)
    row_x = x[row_state]
    tail = 1 - np.concatenate([[0.0], np.cumsum(pmf)])  # tail[j] = P(D >= j)
    rows, columns, probs = [], [], []
    for k in range(M + 1):  # k = (x - d)^+ left on hand: P(D >= x) for k = 0, P(D = x - k) else
        r = np.flatnonzero(row_x >= k)
        s, d = row_state[r], row_x[r] - k
        if k == 0:
            prob = tail[np.minimum(d, len(pmf))]
        else:
            prob = np.where(d < len(pmf), pmf[np.minimum(d, len(pmf) - 1)], 0.0)
        if L == 1:
            coords: tuple[np.ndarray, ...] = (k + row_order[r],)
        else:
            rest = tuple(states[s, j] for j in range(2, L))
            coords = (k + states[s, 1], *rest, row_order[r])
        keep = prob > 0
        rows.append(r[keep])
        columns.append(index[coords][keep])
        probs.append(prob[keep])
    transition = sparse.csr_matrix(
        (np.concatenate(probs), (np.concatenate(rows), np.concatenate(columns))),
        shape=(len(row_state), n_states),
    )
    return LostSalesModel(states, cost, first, transition)


def _best_orders(model: LostSalesModel, future: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per state, the minimum of ``future`` over its orders and the smallest order attaining it."""
    best = np.minimum.reduceat(future, model.first)
    rows = np.arange(len(future))
    attained = future <= np.repeat(best, model.n_orders)
    order = np.minimum.reduceat(np.where(attained, rows, len(future)), model.first) - model.first
    return best, order


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
    model = transition_model(pmf, lead_time, h, p, max_position)
    value = np.zeros(len(model.states))
    span, lo, hi = np.inf, 0.0, 0.0
    iteration = 0
    while iteration < max_iter:
        iteration += 1
        best = np.minimum.reduceat(model.transition @ value, model.first)
        delta = model.cost + best - value
        lo, hi = float(delta.min()), float(delta.max())
        span = hi - lo
        value += tau * delta
        value -= value[0]
        if span < tol:
            break
    _, orders = _best_orders(model, model.transition @ value)
    return LostSalesOptimum(
        gain=(lo + hi) / 2,
        states=model.states,
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
