"""A linear-quadratic PDE-constrained control problem (Hong, Na, Mahoney, Kolar, ICML 2023,
Section 5, "PDE-constrained problem").

On an N x N interior grid of the square [-1, 1]^2 (mesh h = 2 / (N + 1), zero Dirichlet
boundary), with state w and control z (x = (w, z), n = 2 N^2, m = N^2):

    min  1/2 ||w - w_true||^2 + 0.05 ||z||^2   s.t.   Delta_h w + z = 0,

where Delta_h is the 5-point Laplacian divided by h^2 and
w_true(i, j) = sin(4 + (0.1/sqrt 15)(i - (N+1)/2)) + cos(3 + (0.1/sqrt 15)(j - (N+1)/2)),
i, j = 1..N (grid point (i, j) is entry (i - 1) N + (j - 1)). x0 = 1, lambda0 = 1 (all ones), as
in the authors' code (which used N = 3).

The problem is a convex QP with linear constraints, so its optimal value is the KKT solution's,
computed once in ``setup`` by a sparse direct solve (SciPy's SuperLU); ``evaluate`` reports the
gap to it. J = [Delta_h, I] is constant; the Hessian of the Lagrangian is diag(I, 0.1 I).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from optbench.contracts.context import RunContext
from optbench.contracts.errors import ConfigError
from optbench.problems.nlp.scoring import ScoredNLP


def laplacian(N: int) -> sp.csr_matrix:
    """The 5-point Laplacian on the N x N interior grid of [-1, 1]^2 (zero Dirichlet), / h^2."""
    h = 2.0 / (N + 1)
    second = sp.diags([1.0, -2.0, 1.0], [-1, 0, 1], shape=(N, N)) / h**2
    eye = sp.identity(N)
    return sp.csr_matrix(sp.kron(second, eye) + sp.kron(eye, second))


def target_state(N: int) -> np.ndarray:
    """w_true on the grid, flattened row-major ((i - 1) N + (j - 1))."""
    k = np.arange(1, N + 1) - (N + 1) / 2
    scale = 0.1 / np.sqrt(15.0)
    return (np.sin(4 + scale * k)[:, None] + np.cos(3 + scale * k)[None, :]).ravel()


class PDEControl(ScoredNLP):
    """min 1/2 ||w - w_true||^2 + 0.05 ||z||^2  s.t.  Delta_h w + z = 0 on an N x N grid.

    Args:
        N: interior grid points per side (n = 2 N^2 variables, m = N^2 constraints).
        control_weight: the weight of ||z||^2 (0.05 in the paper).
    """

    def __init__(self, N: int = 8, control_weight: float = 0.05) -> None:
        super().__init__()
        if N < 1:
            raise ConfigError(f"N: must be >= 1, got {N}")
        if control_weight <= 0:
            raise ConfigError(f"control_weight: must be > 0, got {control_weight}")
        self.N, self.control_weight = N, control_weight
        self._facts: dict[str, Any] = {}

    def setup(self, ctx: RunContext) -> None:
        self.check_context(ctx)
        N = self.N
        self.k = N * N
        self.n, self.m = 2 * self.k, self.k
        self.lap = laplacian(N)
        self.w_true = target_state(N)
        self.J = sp.csr_matrix(sp.hstack([self.lap, sp.identity(self.k)]))
        weights = np.concatenate([np.ones(self.k), np.full(self.k, 2 * self.control_weight)])
        self.H = sp.diags(weights, format="csr")
        self.f_star = self._solve_optimum()
        self._facts = {"N": N, "n": self.n, "m": self.m, "f_star": self.f_star}

    def _solve_optimum(self) -> float:
        """f at the KKT point of the QP: [[H, J^T], [J, 0]] (x, lam) = ((w_true, 0), 0)."""
        rhs = np.concatenate([self.w_true, np.zeros(self.k), np.zeros(self.m)])
        kkt = sp.bmat([[self.H, self.J.T], [self.J, None]], format="csc")
        solution = spla.spsolve(kkt, rhs)
        return self._f(solution[: self.n])

    def describe(self) -> dict[str, Any]:
        return dict(self._facts)

    def initial_point(self) -> np.ndarray:
        return np.ones(self.n)

    def initial_multiplier(self) -> np.ndarray:
        return np.ones(self.m)

    # -- oracles ---------------------------------------------------------------------------------
    def _f(self, x: np.ndarray) -> float:
        w, z = x[: self.k], x[self.k :]
        diff = w - self.w_true
        return float(0.5 * diff @ diff + self.control_weight * (z @ z))

    def _grad(self, x: np.ndarray) -> np.ndarray:
        w, z = x[: self.k], x[self.k :]
        return np.concatenate([w - self.w_true, 2 * self.control_weight * z])

    def _c(self, x: np.ndarray) -> np.ndarray:
        return self.lap @ x[: self.k] + x[self.k :]

    def _jac(self, x: np.ndarray) -> sp.csr_matrix:
        return self.J

    def _hess_lag(self, x: np.ndarray, lam: np.ndarray) -> sp.csr_matrix:
        return self.H

    def _hess_lag_vec(self, x: np.ndarray, lam: np.ndarray, v: np.ndarray) -> np.ndarray:
        return self.H @ v
