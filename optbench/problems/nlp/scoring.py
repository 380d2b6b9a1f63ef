"""The scoring every ``nlp`` problem shares: the KKT residual of a primal-dual point.

``evaluate(NLPIterate | x)`` returns ``f``, ``c_norm`` (||c||_2), ``grad_lag_norm``
(||grad_x L||_2 with L(x, lam) = f(x) + lam^T c(x)), ``kkt`` (||(grad_x L, c)||_2) and, when the
optimal value ``f_star`` is known, ``gap`` = |f - f_star|. A point without multipliers is scored
with its least-squares multipliers. Only the uncounted oracles are used.
"""

from __future__ import annotations

import numpy as np

from optbench.contracts.nlp import NLPIterate, NLPProblem, least_squares_multiplier


class ScoredNLP(NLPProblem):
    """An ``NLPProblem`` scored by its KKT residual (the base of every concrete nlp problem)."""

    def evaluate(self, solution: NLPIterate | np.ndarray) -> dict[str, float]:
        if isinstance(solution, NLPIterate):
            x, lam = solution.x, solution.lam
        else:
            x, lam = np.asarray(solution), None
        f, grad = self._f_grad(x)
        c, jac = self._c_jac(x)
        if lam is None:
            lam = least_squares_multiplier(grad, jac)
        grad_lag = grad + np.asarray(jac.T @ lam).ravel()
        c_norm = float(np.linalg.norm(c))
        grad_lag_norm = float(np.linalg.norm(grad_lag))
        metrics = {
            "f": float(f),
            "c_norm": c_norm,
            "grad_lag_norm": grad_lag_norm,
            "kkt": float(np.hypot(c_norm, grad_lag_norm)),
        }
        if self.f_star is not None:
            metrics["gap"] = abs(float(f) - self.f_star)
        return metrics
