"""The exact balanced assignment of one batch: a linear program solved by HiGHS.

    maximise    sum_{t,i} s_{t,i} x_{t,i}
    subject to  sum_i x_{t,i} = K           for every token t        (K experts per token)
                sum_t x_{t,i} <= C          for every expert i       (capacity)
                0 <= x_{t,i} <= 1

the assignment problem of Han and Zhong (2025, "A Theoretical Framework for Auxiliary-Loss-Free
Load Balancing of Sparse Mixture-of-Experts in Large-Scale AI Models"). Its constraint
matrix is that of a bipartite b-matching (totally unimodular), so a vertex optimum is a 0/1
routing; scipy's HiGHS returns one. Feasible iff N C >= T K. With C = T K / N (an integer) the
optimum is perfectly balanced (MaxVio = 0).

Duality: with capacity multipliers lambda_i >= 0 and the bias b_i = -lambda_i, the dual function is

    D(b) = sum_t topK_i (s_{t,i} + b_i) - C sum_i b_i,

convex and piecewise linear, D(b) >= OPT for every b <= 0 (every b when C = T K / N, where D is
invariant to adding a constant to b) and D(b*) = OPT at the optimal multipliers. ALF-LB is a
sign-subgradient method on D: the gradient of D is load_i - C.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from optbench.contracts.errors import ConfigError


@dataclass
class Assignment:
    """An optimal routing: ``selected`` (T, K) expert indices (on the scores' device),
    ``objective`` the routed score sum, ``bias`` b* = -lambda (N,), the optimal dual bias."""

    selected: torch.Tensor
    objective: float
    bias: np.ndarray


def _matrices(n_tokens: int, n_experts: int) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    per_token = sp.kron(sp.eye(n_tokens, format="csr"), np.ones((1, n_experts)), format="csr")
    per_expert = sp.kron(np.ones((1, n_tokens)), sp.eye(n_experts, format="csr"), format="csr")
    return per_token, per_expert


def optimal_assignment(scores: torch.Tensor, top_k: int, cap: int) -> Assignment:
    """The exact optimum of the LP above for a (T, N) score matrix, K = ``top_k``, C = ``cap``."""
    n_tokens, n_experts = scores.shape
    if cap * n_experts < n_tokens * top_k:
        raise ConfigError(
            f"capacity_factor: capacity {cap} x {n_experts} experts cannot hold "
            f"{n_tokens} tokens x {top_k}"
        )
    s = scores.detach().to("cpu", torch.float64).numpy()
    per_token, per_expert = _matrices(n_tokens, n_experts)
    result = linprog(
        -s.ravel(),
        A_ub=per_expert,
        b_ub=np.full(n_experts, float(cap)),
        A_eq=per_token,
        b_eq=np.full(n_tokens, float(top_k)),
        bounds=(0.0, 1.0),
        method="highs",
    )
    if result.status != 0:
        raise RuntimeError(f"HiGHS failed on the assignment LP: {result.message}")
    x = result.x.reshape(n_tokens, n_experts)
    bias = np.asarray(result.ineqlin.marginals, dtype=np.float64)  # = -lambda <= 0
    if np.abs(x - np.round(x)).max() > 1e-6:  # not a vertex: solve the integer program instead
        x = _integral(s, top_k, cap, per_token, per_expert)
    chosen = np.argsort(-np.round(x), axis=1, kind="stable")[:, :top_k]
    selected = torch.as_tensor(chosen, dtype=torch.long, device=scores.device)
    objective = float(np.take_along_axis(s, chosen, axis=1).sum())
    return Assignment(selected, objective, bias)


def _integral(
    s: np.ndarray, top_k: int, cap: int, per_token: sp.csr_matrix, per_expert: sp.csr_matrix
) -> np.ndarray:
    n_tokens, n_experts = s.shape
    result = milp(
        -s.ravel(),
        constraints=[
            LinearConstraint(per_token, top_k, top_k),
            LinearConstraint(per_expert, 0, cap),
        ],
        integrality=np.ones(s.size),
        bounds=Bounds(0, 1),
    )
    if result.status != 0:
        raise RuntimeError(f"HiGHS failed on the assignment MILP: {result.message}")
    return result.x.reshape(n_tokens, n_experts)


def dual_function(scores: torch.Tensor, bias: torch.Tensor, top_k: int, cap: float) -> float:
    """D(b) = sum_t topK_i (s_{t,i} + b_i) - C sum_i b_i (the Lagrangian dual of the LP)."""
    shifted = scores.to(torch.float64) + bias.to(torch.float64)
    return float(torch.topk(shifted, top_k, dim=1).values.sum() - cap * bias.sum())
