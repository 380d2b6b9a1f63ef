"""The reference optimum of a smooth, strongly convex objective (the f* behind a problem's
``gap``): scipy's exact trust-region Newton method (``trust-exact``, Moré-Sorensen) in float64,
then plain Newton steps while they lower the gradient norm (trust-exact can stop short of a
tight ``tol``), at most ``polish`` of them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.optimize import minimize

Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]
Hessian = Callable[[np.ndarray], np.ndarray]


def newton_optimum(
    fun: Objective, hess: Hessian, w0: np.ndarray, tol: float, polish: int = 5
) -> dict[str, Any]:
    """f*, the final gradient norm, whether it reached ``tol``, and the iterations used.
    ``fun`` returns the value and the gradient."""
    result = minimize(
        fun, w0, jac=True, hess=hess, method="trust-exact", options={"gtol": tol, "maxiter": 500}
    )
    w = result.x
    f_star, grad = fun(w)
    grad_norm = float(np.linalg.norm(grad))
    steps = 0
    while grad_norm > tol and steps < polish:
        trial = w - np.linalg.solve(hess(w), grad)
        trial_f, trial_grad = fun(trial)
        trial_norm = float(np.linalg.norm(trial_grad))
        if not trial_norm < grad_norm:
            break
        w, f_star, grad, grad_norm, steps = trial, trial_f, trial_grad, trial_norm, steps + 1
    return {
        "f_star": f_star,
        "grad_norm": grad_norm,
        "converged": grad_norm <= tol,
        "iterations": int(result.nit) + steps,
        "solver": "scipy trust-exact",
    }
