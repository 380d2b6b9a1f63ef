"""The reference optimum f* of regularised logistic regression, computed once and cached.

f* is found by scipy's exact trust-region Newton method (``trust-exact``, Moré-Sorensen) in
float64, polished by plain Newton steps where it stops short, to a gradient norm of ``tol``
(1e-10 by default) — for the squared loss by solving the normal equations — and kept in the run
context's cache (namespace ``logreg_fstar``), keyed by the data file's sha256 and the problem's
parameters. If
the solver cannot reach ``tol`` (separable data without an L2 term has no minimiser), no f* is
reported and the problem logs no gap.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit

from optbench.contracts.context import Cache
from optbench.problems.convex_optimum import newton_optimum


def logistic_objective(
    w: np.ndarray, X: np.ndarray, y: np.ndarray, l2: float
) -> tuple[float, np.ndarray]:
    z = y * (X @ w)
    loss = float(np.mean(np.logaddexp(0.0, -z)) + 0.5 * l2 * (w @ w))
    grad = -(X.T @ (y * expit(-z))) / len(y) + l2 * w
    return loss, grad


def logistic_hessian(w: np.ndarray, X: np.ndarray, y: np.ndarray, l2: float) -> np.ndarray:
    s = expit(y * (X @ w))
    return (X.T * (s * (1.0 - s))) @ X / len(y) + l2 * np.eye(X.shape[1])


def solve(X: np.ndarray, y: np.ndarray, l2: float, tol: float) -> dict[str, Any]:
    """Minimise the regularised logistic loss; report f*, the final gradient norm, iterations."""
    return newton_optimum(
        lambda w: logistic_objective(w, X, y, l2),
        lambda w: logistic_hessian(w, X, y, l2),
        np.zeros(X.shape[1]),
        tol,
    )


def solve_squared(X: np.ndarray, y: np.ndarray, l2: float, tol: float) -> dict[str, Any]:
    """Minimise (1/2n) ||X w - y||^2 + (l2/2) ||w||^2: (X^T X / n + l2 I) w = X^T y / n."""
    n = len(y)
    w = np.linalg.lstsq(X.T @ X / n + l2 * np.eye(X.shape[1]), X.T @ y / n, rcond=None)[0]
    r = X @ w - y
    grad_norm = float(np.linalg.norm(X.T @ r / n + l2 * w))
    return {
        "f_star": float(0.5 * (r @ r) / n + 0.5 * l2 * (w @ w)),
        "grad_norm": grad_norm,
        "converged": grad_norm <= tol,
        "iterations": 1,
        "solver": "normal equations (numpy lstsq)",
    }


def cached_solve(
    cache: Cache,
    key: Any,
    X: np.ndarray,
    y: np.ndarray,
    l2: float,
    tol: float,
    loss: str = "logistic",
) -> dict[str, Any]:
    """``solve`` (``solve_squared`` for the squared loss) once per ``key`` (which must name the
    data, the loss and every parameter)."""
    if loss == "squared":
        return cache.get_or_compute("logreg_fstar", key, lambda: solve_squared(X, y, l2, tol))
    return cache.get_or_compute("logreg_fstar", key, lambda: solve(X, y, l2, tol))
