"""The classical augmented Lagrangian method (Hestenes 1969, Powell 1969; Nocedal and Wright,
"Numerical Optimization", 2nd ed., Framework 17.3) with inexact Newton inner solves.

For multipliers lam and penalty mu, the inner problem is min_x L_A(x) with

    L_A(x) = f(x) + lam^T c(x) + (mu/2) ||c(x)||^2,
    grad L_A = grad f + J^T (lam + mu c),
    grad^2 L_A = grad^2_xx L(x, lam + mu c) + mu J^T J.

Each step is one inner Newton iteration: the Hessian, modified to be positive definite, is
solved against
-grad L_A by GMRES to ||r|| <= kappa ||grad L_A|| (kappa = 1e-4, the authors' baseline), then an
Armijo backtracking on L_A (beta = 0.1). When ||grad L_A|| <= tau, the outer update
lam <- lam + mu c(x), mu <- 1.5 mu, tau <- 0.1 tau follows (mu0 = 1, tau0 = 0.1, as the issue and
the authors' baseline specify); at most ``max_inner`` Newton steps are spent per outer iteration.

Hessian modification (``modification``): ``floor`` (default) adds tau I with the smallest tau
in {0, xi, 2 xi, ...} making the Hessian minus ``min_curvature`` I positive definite (Nocedal
and Wright, Algorithm 3.3: Cholesky, or an inertia-revealing sparse LU for large sparse
problems); ``authors`` shifts to lambda_min = 1 at every step, A + (1 - lambda_min(A)) I, as the
AdaSketch authors' baseline code does (a regularised, Levenberg-Marquardt-like step; needs the
smallest eigenvalue, so at most 2000 variables).

The iterate reported is (x, lam + mu c(x)), the first-order multiplier estimate whose Lagrangian
gradient is grad L_A, so the KKT residual scored by the problem goes to zero with the method.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np
import scipy.sparse.linalg as spla

from optbench.algorithms.constrained.common import (
    NLPAlgorithm,
    Point,
    check_positive,
    evaluate_point,
)
from optbench.algorithms.constrained.linalg import (
    DENSE_LIMIT,
    compact,
    min_eig_sym,
    shift_to_positive_definite,
)
from optbench.contracts.algorithm import Progress
from optbench.contracts.context import RunContext
from optbench.contracts.errors import ConfigError
from optbench.contracts.nlp import NLPIterate, NLPProblem


class AugmentedLagrangian(NLPAlgorithm):
    """Augmented Lagrangian with GMRES-Newton inner iterations (one step = one Newton step)."""

    def __init__(
        self,
        mu: float = 1.0,
        tau: float = 0.1,
        mu_factor: float = 1.5,
        tau_factor: float = 0.1,
        kappa: float = 1e-4,
        beta: float = 0.1,
        modification: Literal["floor", "authors"] = "floor",
        xi: float = 0.1,
        min_curvature: float = 1e-6,
        max_inner: int = 100,
        max_gmres_iterations: int = 10_000,
        tol: float = 1e-4,
        min_step: float = 1e-12,
    ) -> None:
        check_positive(mu=mu, tau=tau, kappa=kappa, xi=xi, tol=tol, min_step=min_step)
        if mu_factor < 1:
            raise ConfigError(f"mu_factor: must be >= 1, got {mu_factor}")
        if not 0 < tau_factor <= 1:
            raise ConfigError(f"tau_factor: must be in (0, 1], got {tau_factor}")
        if not 0 < beta < 0.5:
            raise ConfigError(f"beta: must be in (0, 0.5), got {beta}")
        if max_inner < 1:
            raise ConfigError(f"max_inner: must be >= 1, got {max_inner}")
        self.mu0, self.tau0, self.mu_factor, self.tau_factor = mu, tau, mu_factor, tau_factor
        self.kappa, self.beta, self.xi, self.min_curvature = kappa, beta, xi, min_curvature
        self.modification = modification
        self.max_inner, self.max_gmres_iterations = max_inner, max_gmres_iterations
        self.tol, self.min_step = tol, min_step

    @staticmethod
    def _value(point: Point, lam: np.ndarray, mu: float) -> float:
        return float(point.f + lam @ point.c + 0.5 * mu * (point.c @ point.c))

    def iterate(self, problem: NLPProblem, ctx: RunContext) -> Iterator[Progress]:
        mu, tau = self.mu0, self.tau0
        lam = problem.initial_multiplier()
        point = evaluate_point(problem, problem.initial_point(), lam)
        reported = point.with_multiplier(lam + mu * point.c)
        yield Progress(NLPIterate(point.x, reported.lam))
        if reported.kkt <= self.tol:
            return "converged at the starting point"
        inner = 0
        outer = 0
        n = problem.n
        while True:
            gradient = reported.grad_lag  # grad L_A = grad f + J^T (lam + mu c)
            if np.linalg.norm(gradient) <= tau or inner >= self.max_inner:
                lam = lam + mu * point.c
                mu *= self.mu_factor
                tau *= self.tau_factor
                outer += 1
                inner = 0
                reported = point.with_multiplier(lam + mu * point.c)
                gradient = reported.grad_lag
            hessian = problem.hess_lag(point.x, lam + mu * point.c)
            jac = point.jac
            A = compact(hessian) + mu * compact(jac.T @ jac)
            if self.modification == "authors":
                if n > DENSE_LIMIT:
                    raise ConfigError(
                        f"algorithm.modification: 'authors' needs the smallest eigenvalue, "
                        f"computed densely up to {DENSE_LIMIT} variables (n = {n}); use floor"
                    )
                A = A + (1.0 - min_eig_sym(A)) * np.eye(n)
            else:
                A, _ = shift_to_positive_definite(A, self.xi, self.min_curvature)
            direction, gmres_iterations = self._solve(A, -gradient)
            slope = float(gradient @ direction)
            value = self._value(point, lam, mu)
            alpha = 1.0
            while True:
                trial = evaluate_point(problem, point.x + alpha * direction, lam)
                if self._value(trial, lam, mu) <= value + self.beta * alpha * slope:
                    break
                alpha *= 0.5
                if alpha < self.min_step:
                    return f"line search failed (slope {slope:.3g})"
            point = trial
            inner += 1
            reported = point.with_multiplier(lam + mu * point.c)
            kkt = reported.kkt
            yield Progress(
                NLPIterate(point.x, reported.lam),
                {
                    "kkt": kkt,
                    "step_size": alpha,
                    "mu": mu,
                    "tau": tau,
                    "outer_iterations": float(outer),
                    "inner_iterations": float(gmres_iterations),
                },
                converged=kkt <= self.tol,
            )

    def _solve(self, A: object, rhs: np.ndarray) -> tuple[np.ndarray, int]:
        count = [0]

        def tick(_: object) -> None:
            count[0] += 1

        target = self.kappa * float(np.linalg.norm(rhs))
        solution, _ = spla.gmres(
            A,
            rhs,
            rtol=0.0,
            atol=target,
            restart=min(len(rhs), 50),
            maxiter=max(1, self.max_gmres_iterations // min(len(rhs), 50)),
            callback=tick,
            callback_type="pr_norm",
        )
        return np.asarray(solution).ravel(), count[0]
