"""AdaSketch-Newton: exact augmented Lagrangian + adaptive randomized iterative sketching.

Hong, Na, Mahoney, Kolar, "Constrained Optimization via Exact Augmented Lagrangian and
Randomized Iterative Sketching", ICML 2023 (Algorithm 1). For ``min f(x) s.t. c(x) = 0`` with
Lagrangian L = f + lam^T c, the merit function is the exact augmented Lagrangian

    L_eta(x, lam) = L(x, lam) + (eta1/2) ||c||^2 + (eta2/2) ||grad_x L||^2,

    grad_x L_eta   = grad_x L + eta1 J^T c + eta2 grad^2_xx L grad_x L,
    grad_lam L_eta = c + eta2 J grad_x L.

Iteration k at (x, lam), b = -(grad_x L, c):
1. stop (singular) if lambda_min(J J^T) < ``singular_tol`` (1e-2);
2. B = H + (xi_B + ||H||) I if the reduced Hessian Z^T H Z is not positive definite, else H
   (H = grad^2_xx L);
3. psi = 20 max(||B||^2, 1) / (min(lambda_min(J J^T), 1) min(xi_B, 1)),
   Upsilon = max(||J||, ||H||, 1), delta_trial = (0.5 - beta) eta2 / ((1 + eta1 + eta2)
   Upsilon^2 psi^2), delta = max(min(delta, delta_trial), delta_min);
4. sketch K z = b (K = [[B, J^T], [J, 0]]) from z = 0 until ||K|| psi ||r|| <= theta delta ||b||;
   while z is not a sufficient descent direction of L_eta
   (grad L_eta^T z > -(eta2/2) ||b||^2) raise the penalties (eta1 <- nu^2 eta1,
   eta2 <- eta2/nu, delta <- max(min(delta/nu^4, delta_trial), delta_min)) and keep sketching
   from the current z;
5. Armijo backtracking on L_eta: alpha in {1, 1/2, ...} with
   L_eta(x + alpha dx, lam + alpha dlam) <= L_eta(x, lam) + beta alpha grad L_eta^T z.
Defaults are the paper's: eta1 = 1, eta2 = 0.1, delta = 0.1, xi_B = 0.1, beta = 0.1, nu = 1.5,
theta = 1; converged at ||(grad_x L, c)|| <= tol (1e-4). Matrix norms are Frobenius norms, as in
the authors' code (Julia's ``norm``), an upper bound on the spectral norms of the analysis.

Settings the authors' code (github.com/IlgeeHong/AdaSketch-Newton, one folder per test set)
chooses per test set, the defaults here (``None``) looked up in ``AUTHORS_SETTINGS`` by the
problem's class: the cap on sketch steps of one sketch solve (``t < 1e5`` or ``1e6``, reset at
every penalty increase: ``max_sketch_iterations``) and the tolerance of the Hessian-modification
test lambda_min(Z^T H Z) < tol (``hessian_tol``). A number overrides the table. The Kaczmarz
sketch samples rows uniformly (``sample(1:(nx+nlam))``) as the authors do;
``sampling="norm"`` (probabilities ~ ||K_i||^2, Strohmer and Vershynin 2009) is optbench's
option, as is ``sketch_cap_scope="iteration"`` (the cap on the sum over one Newton iteration).

The merit gradient uses the Hessian of the Lagrangian (``merit_hessian="lagrangian"``, the
exact gradient of L_eta). The authors' code used the Hessian of f there; ``merit_hessian=
"objective"`` reproduces that (one more Hessian evaluation per iteration).
Per step the progress reports the inner sketch iterations, the penalties, delta, the Hessian
shift and the step size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from optbench.algorithms.constrained.common import (
    NLPAlgorithm,
    Point,
    check_positive,
    evaluate_point,
)
from optbench.algorithms.constrained.linalg import (
    JacobianFacts,
    frobenius,
    kkt_matrix,
    matvec,
    modify_hessian,
    rmatvec,
)
from optbench.algorithms.constrained.sketching import SketchSolver
from optbench.contracts.algorithm import Progress
from optbench.contracts.context import RunContext
from optbench.contracts.errors import ConfigError
from optbench.contracts.nlp import NLPIterate, NLPProblem


@dataclass(frozen=True)
class AuthorsSettings:
    """The per-test-set constants of the authors' code."""

    cap_gaussian: int  # sketch steps per solve, Gaussian vector sketch (GV)
    cap_kaczmarz: int  # ... randomized Kaczmarz (RK)
    hessian_tol: float  # Hessian modification when lambda_min(Z^T H Z) < hessian_tol


#: Keyed by the optbench problem class; files of IlgeeHong/AdaSketch-Newton @ d7e0c22:
#: CUTEst/AdaSketchNewton{GV,RK}/*.jl (t < 1e5, eigmin < 1e-6),
#: ConstrainedLogisticRegression/AdaSketchNewton{GV,RK}/*.jl (t < 1e6, eigmin < 1e-2),
#: PDE/AdaSketchNewtonGV (t < 1e6), PDE/AdaSketchNewtonRK (t < 1e5); the PDE code has no
#: modification (B = H, positive definite there), which the 1e-6 test reproduces.
AUTHORS_SETTINGS: dict[str, AuthorsSettings] = {
    "CutestProblem": AuthorsSettings(100_000, 100_000, 1e-6),
    "ConstrainedLogReg": AuthorsSettings(1_000_000, 1_000_000, 1e-2),
    "PDEControl": AuthorsSettings(1_000_000, 100_000, 1e-6),
}
#: any other problem: the CUTEst folder's constants.
OTHER_PROBLEMS = AUTHORS_SETTINGS["CutestProblem"]


def merit(point: Point, eta1: float, eta2: float) -> float:
    """L_eta(x, lam) = f + lam^T c + (eta1/2) ||c||^2 + (eta2/2) ||grad_x L||^2."""
    return float(
        point.f
        + point.lam @ point.c
        + 0.5 * eta1 * (point.c @ point.c)
        + 0.5 * eta2 * (point.grad_lag @ point.grad_lag)
    )


def merit_gradient(point: Point, hessian: Any, eta1: float, eta2: float) -> np.ndarray:
    """(grad_x L + eta1 J^T c + eta2 H grad_x L, c + eta2 J grad_x L); exact for H the
    Hessian of the Lagrangian at (x, lam)."""
    return np.concatenate(
        [
            point.grad_lag
            + eta1 * rmatvec(point.jac, point.c)
            + eta2 * matvec(hessian, point.grad_lag),
            point.c + eta2 * matvec(point.jac, point.grad_lag),
        ]
    )


class AdaSketchNewton(NLPAlgorithm):
    """AdaSketch-Newton (Hong et al., ICML 2023, Algorithm 1); see the module docstring.

    Args:
        sketch: ``gaussian`` (Gaussian vector sketch, "GV") or ``kaczmarz`` (randomized
            Kaczmarz, "RK").
        sampling: Kaczmarz row probabilities: ``uniform`` (the authors' code) or ``norm``
            (proportional to ||K_i||^2).
        block_size: sketch columns per step (1: the paper's vector sketches; q > 1: block).
        merit_hessian: the Hessian in grad L_eta: ``lagrangian`` (exact) or ``objective``
            (the authors' code).
        max_sketch_iterations: cap on sketch steps (``None``: the authors' value for the
            problem's test set, ``AUTHORS_SETTINGS``); at the cap the current direction is used.
        sketch_cap_scope: the cap bounds each sketch solve (``solve``, the authors': a penalty
            increase starts a new solve) or their sum over one Newton iteration (``iteration``).
        hessian_tol: the Hessian-modification threshold on lambda_min(Z^T H Z) (``None``: the
            authors' value for the problem's test set).
    """

    def __init__(
        self,
        sketch: Literal["gaussian", "kaczmarz"] = "gaussian",
        sampling: Literal["uniform", "norm"] = "uniform",
        block_size: int = 1,
        eta1: float = 1.0,
        eta2: float = 0.1,
        delta: float = 0.1,
        delta_min: float = 1e-6,
        xi_B: float = 0.1,
        beta: float = 0.1,
        nu: float = 1.5,
        theta: float = 1.0,
        tol: float = 1e-4,
        singular_tol: float = 1e-2,
        merit_hessian: Literal["lagrangian", "objective"] = "lagrangian",
        max_sketch_iterations: int | None = None,
        sketch_cap_scope: Literal["solve", "iteration"] = "solve",
        hessian_tol: float | None = None,
        max_eta1: float = 1e8,
        min_eta2: float = 1e-8,
        min_step: float = 1e-12,
    ) -> None:
        check_positive(eta1=eta1, eta2=eta2, delta=delta, delta_min=delta_min, xi_B=xi_B)
        check_positive(theta=theta, tol=tol, min_step=min_step)
        if not 0 < beta < 0.5:
            raise ConfigError(f"beta: must be in (0, 0.5), got {beta}")
        if nu <= 1:
            raise ConfigError(f"nu: must be > 1, got {nu}")
        if block_size < 1:
            raise ConfigError(f"block_size: must be >= 1, got {block_size}")
        if max_sketch_iterations is not None and max_sketch_iterations < 1:
            raise ConfigError(f"max_sketch_iterations: must be >= 1, got {max_sketch_iterations}")
        if hessian_tol is not None and hessian_tol < 0:
            raise ConfigError(f"hessian_tol: must be >= 0, got {hessian_tol}")
        self.sketch, self.sampling, self.block_size = sketch, sampling, block_size
        self.eta1, self.eta2, self.delta, self.delta_min = eta1, eta2, delta, delta_min
        self.xi_B, self.beta, self.nu, self.theta = xi_B, beta, nu, theta
        self.tol, self.singular_tol, self.merit_hessian = tol, singular_tol, merit_hessian
        self.max_sketch_iterations, self.sketch_cap_scope = max_sketch_iterations, sketch_cap_scope
        self.hessian_tol = hessian_tol
        self.max_eta1, self.min_eta2, self.min_step = max_eta1, min_eta2, min_step

    def _delta_trial(self, eta1: float, eta2: float, upsilon: float, psi: float) -> float:
        return (0.5 - self.beta) * eta2 / ((1 + eta1 + eta2) * upsilon**2 * psi**2)

    def settings(self, problem: NLPProblem) -> tuple[int, float]:
        """(sketch-step cap, Hessian-modification tolerance) for ``problem``: the configured
        values, else the authors' for its test set."""
        authors = AUTHORS_SETTINGS.get(type(problem).__name__, OTHER_PROBLEMS)
        cap = self.max_sketch_iterations
        if cap is None:
            cap = authors.cap_gaussian if self.sketch == "gaussian" else authors.cap_kaczmarz
        tol = authors.hessian_tol if self.hessian_tol is None else self.hessian_tol
        return cap, tol

    def iterate(self, problem: NLPProblem, ctx: RunContext) -> Iterator[Progress]:
        cap, hessian_tol = self.settings(problem)
        solver = SketchSolver(
            ctx.algorithm_random.numpy, self.sketch, self.sampling, self.block_size
        )
        facts = JacobianFacts()
        eta1, eta2, delta = self.eta1, self.eta2, self.delta
        n = problem.n
        point = evaluate_point(problem, problem.initial_point(), problem.initial_multiplier())
        yield Progress(NLPIterate(point.x, point.lam))
        if point.kkt <= self.tol:
            return "converged at the starting point"
        while True:
            hessian = problem.hess_lag(point.x, point.lam)
            xi_g = facts.min_eig_gram(point.jac)
            if xi_g < self.singular_tol:
                return f"singular Jacobian: lambda_min(J J^T) = {xi_g:.3g} < {self.singular_tol}"
            b_matrix, shift, _ = modify_hessian(hessian, point.jac, self.xi_B, hessian_tol)
            psi = 20 * max(frobenius(b_matrix) ** 2, 1) / (min(xi_g, 1) * min(self.xi_B, 1))
            upsilon = max(frobenius(point.jac), frobenius(hessian), 1.0)
            delta_trial = self._delta_trial(eta1, eta2, upsilon, psi)
            delta = max(min(delta, delta_trial), self.delta_min)
            K = kkt_matrix(b_matrix, point.jac)
            b = -np.concatenate([point.grad_lag, point.c])
            b_norm = float(np.linalg.norm(b))
            k_norm = frobenius(K)
            merit_h = hessian if self.merit_hessian == "lagrangian" else problem.hess_obj(point.x)

            z = np.zeros(len(b))
            inner = 0
            increases = 0
            while True:
                target = self.theta * delta * b_norm / (k_norm * psi)
                budget = cap - inner if self.sketch_cap_scope == "iteration" else cap
                result = solver.solve(K, b, z, target, budget)
                z, inner = result.z, inner + result.iterations
                slope = float(merit_gradient(point, merit_h, eta1, eta2) @ z)
                if eta1 > self.max_eta1 or eta2 < self.min_eta2:
                    break
                if slope > -0.5 * eta2 * b_norm**2:
                    eta1 *= self.nu**2
                    eta2 /= self.nu
                    increases += 1
                    delta_trial = self._delta_trial(eta1, eta2, upsilon, psi)
                    delta = max(min(delta / self.nu**4, delta_trial), self.delta_min)
                    continue
                break

            value = merit(point, eta1, eta2)
            alpha = 1.0
            while True:
                trial = evaluate_point(problem, point.x + alpha * z[:n], point.lam + alpha * z[n:])
                trial_merit = merit(trial, eta1, eta2)
                if trial_merit <= value + self.beta * alpha * slope:
                    break
                alpha *= 0.5
                if alpha < self.min_step:
                    return f"line search failed (slope {slope:.3g}, merit {value:.6g})"
            point = trial
            kkt = point.kkt
            yield Progress(
                NLPIterate(point.x, point.lam),
                {
                    "kkt": kkt,
                    "inner_iterations": float(inner),
                    "step_size": alpha,
                    "eta1": eta1,
                    "eta2": eta2,
                    "delta": delta,
                    "penalty_increases": float(increases),
                    "hessian_shift": shift,
                    "merit": trial_merit,
                },
                converged=kkt <= self.tol,
            )
