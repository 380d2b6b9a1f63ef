"""SQP methods with the l1 merit function phi_mu(x) = f(x) + mu ||c(x)||_1.

The step z = (dx, dlam) solves (exactly or inexactly) the Newton-KKT system
K z = b, K = [[B, J^T], [J, 0]], b = -(grad_x L, c), with B the Hessian of the Lagrangian,
shifted when the reduced Hessian is not positive definite (``linalg.modify_hessian``). The
model reduction of a step (Byrd, Curtis, Nocedal 2008, eq. (2.6), in the authors' form) is

    Delta m(dx; mu) = -grad f^T dx - max(dx^T B dx / 2, 0) + mu (||c||_1 - ||c + J dx||_1),

the directional derivative of phi_mu along dx is bounded by
D = grad f^T dx - mu (||c||_1 - ||c + J dx||_1), and the step length is the first
alpha in {1, 1/2, ...} with phi_mu(x + alpha dx) <= phi_mu(x) + eta alpha D; then
(x, lam) <- (x + alpha dx, lam + alpha dlam).

- ``SqpL1Gmres``: the inexact SQP of Byrd, Curtis and Nocedal, "An inexact SQP method for
  equality constrained optimization", SIAM J. Optim. 19(1), 2008: GMRES (SciPy) on K z = b,
  checked every ``gmres_chunk`` iterations against termination test I (residual small relative
  to b and sufficient model reduction) and test II (residual small relative to ||c||, after which
  the penalty mu is raised to give a model reduction); when GMRES stagnates (a small system
  solved to rounding error) the step is taken as it is. Parameters and test forms follow the
  AdaSketch authors' baseline code (kappa = 1, kappa1 = 0.1, epsilon = 0.1, tau = 0.1,
  sigma = tau (1 - epsilon), beta = kappa2 = max(||grad_x L_0||_1 / (||c_0||_1 + 1), 1)).
- ``SqpL1GmresAdaptive``: GMRES until ||r||_1 <= kappa ||b||_1; while the model reduction is
  insufficient (Delta m < sigma mu max(||c||_1, ||c + J dx||_1 - ||c||_1)), mu <- nu mu,
  kappa <- kappa / nu^2 and GMRES continues (the authors' adaptive baseline).
- ``SqpNewton``: the exact Newton-KKT step by a direct (LU) solve, with the penalty rule of
  Nocedal and Wright (2006), eq. (18.36): mu >= (grad f^T dx + max(dx^T B dx / 2, 0)) /
  ((1 - tau) ||c||_1). The reference method.
All converge at ||(grad_x L, c)|| <= tol and stop when lambda_min(J J^T) < ``singular_tol``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg as sla
import scipy.sparse.linalg as spla

from optbench.algorithms.constrained.common import (
    NLPAlgorithm,
    Point,
    check_positive,
    evaluate_point,
)
from optbench.algorithms.constrained.linalg import (
    JacobianFacts,
    direct_solve,
    kkt_matrix,
    matvec,
    modify_hessian,
)
from optbench.contracts.algorithm import Progress
from optbench.contracts.context import RunContext
from optbench.contracts.errors import ConfigError
from optbench.contracts.nlp import NLPIterate, NLPProblem


@dataclass
class Step:
    """A Newton-KKT system at an iterate and what the l1 merit needs of a step."""

    point: Point
    B: Any
    K: Any
    b: np.ndarray

    @property
    def n(self) -> int:
        return len(self.point.x)

    def model_reduction(self, z: np.ndarray, mu: float) -> float:
        dx = z[: self.n]
        c = self.point.c
        curvature = max(0.5 * float(dx @ matvec(self.B, dx)), 0.0)
        linearized = np.abs(c + matvec(self.point.jac, dx)).sum()
        return float(-self.point.grad @ dx - curvature + mu * (np.abs(c).sum() - linearized))

    def reduction_threshold(self, z: np.ndarray, mu: float, sigma: float) -> float:
        c1 = np.abs(self.point.c).sum()
        linearized = np.abs(self.point.c + matvec(self.point.jac, z[: self.n])).sum()
        return sigma * mu * max(c1, linearized - c1)

    def slope(self, z: np.ndarray, mu: float) -> float:
        """D = grad f^T dx - mu (||c||_1 - ||c + J dx||_1)."""
        dx = z[: self.n]
        c = self.point.c
        linearized = np.abs(c + matvec(self.point.jac, dx)).sum()
        return float(self.point.grad @ dx - mu * (np.abs(c).sum() - linearized))


class CannotContinue(Exception):
    """Raised by a step computation when the method cannot go on; its text is the reason."""


class _L1Sqp(NLPAlgorithm):
    """The loop shared by the l1-merit SQP methods: subclasses compute the step ``z``."""

    def __init__(
        self, mu: float, eta: float, xi_B: float, tol: float, singular_tol: float, min_step: float
    ) -> None:
        check_positive(mu=mu, xi_B=xi_B, tol=tol, singular_tol=singular_tol, min_step=min_step)
        if not 0 < eta < 0.5:
            raise ConfigError(f"eta: Armijo constant must be in (0, 0.5), got {eta}")
        self.mu0, self.eta, self.xi_B = mu, eta, xi_B
        self.tol, self.singular_tol, self.min_step = tol, singular_tol, min_step

    def start(self, point: Point) -> None:
        """Hook: state set from the starting point."""

    def direction(self, step: Step, mu: float) -> tuple[np.ndarray, float, dict[str, float]]:
        """``(z, mu, metrics)`` for the system of ``step`` at penalty ``mu``."""
        raise NotImplementedError

    def iterate(self, problem: NLPProblem, ctx: RunContext) -> Iterator[Progress]:
        facts = JacobianFacts()
        mu = self.mu0
        point = evaluate_point(problem, problem.initial_point(), problem.initial_multiplier())
        self.start(point)
        yield Progress(NLPIterate(point.x, point.lam))
        if point.kkt <= self.tol:
            return "converged at the starting point"
        n = problem.n
        while True:
            xi_g = facts.min_eig_gram(point.jac)
            if xi_g < self.singular_tol:
                return f"singular Jacobian: lambda_min(J J^T) = {xi_g:.3g} < {self.singular_tol}"
            hessian = problem.hess_lag(point.x, point.lam)
            B, shift, _ = modify_hessian(hessian, point.jac, self.xi_B)
            b = -np.concatenate([point.grad_lag, point.c])
            step = Step(point, B, kkt_matrix(B, point.jac), b)
            try:
                z, mu, metrics = self.direction(step, mu)
            except CannotContinue as stop:
                return str(stop)
            slope = step.slope(z, mu)
            merit = point.f + mu * np.abs(point.c).sum()
            alpha = 1.0
            while True:
                x_trial = point.x + alpha * z[:n]
                trial_merit = problem.f(x_trial) + mu * np.abs(problem.c(x_trial)).sum()
                if trial_merit <= merit + self.eta * alpha * slope:
                    break
                alpha *= 0.5
                if alpha < self.min_step:
                    return f"line search failed (slope {slope:.3g})"
            point = evaluate_point(problem, x_trial, point.lam + alpha * z[n:])
            kkt = point.kkt
            yield Progress(
                NLPIterate(point.x, point.lam),
                {"kkt": kkt, "step_size": alpha, "mu": mu, "hessian_shift": shift, **metrics},
                converged=kkt <= self.tol,
            )


class SqpNewton(_L1Sqp):
    """Exact Newton-KKT SQP (direct LU solve) with the l1 merit line search (the reference).

    Args:
        mu: initial penalty; tau, sigma: the penalty rule's constants (NW eq. (18.36)).
    """

    def __init__(
        self,
        mu: float = 1.0,
        tau: float = 0.1,
        sigma: float = 0.09,
        eta: float = 1e-4,
        xi_B: float = 0.1,
        tol: float = 1e-4,
        singular_tol: float = 1e-10,
        min_step: float = 1e-12,
    ) -> None:
        super().__init__(mu, eta, xi_B, tol, singular_tol, min_step)
        if not 0 < tau < 1:
            raise ConfigError(f"tau: must be in (0, 1), got {tau}")
        self.tau, self.sigma = tau, sigma

    def direction(self, step: Step, mu: float) -> tuple[np.ndarray, float, dict[str, float]]:
        try:
            z = direct_solve(step.K, step.b)
        except (np.linalg.LinAlgError, sla.LinAlgError, RuntimeError) as exc:
            raise CannotContinue(f"singular KKT matrix ({exc})") from None
        if not np.all(np.isfinite(z)):
            raise CannotContinue("singular KKT matrix (the direct solve gave non-finite values)")
        if step.model_reduction(z, mu) < step.reduction_threshold(z, mu, self.sigma):
            c1 = np.abs(step.point.c).sum()
            if c1 > 0:
                dx = z[: step.n]
                curvature = max(0.5 * float(dx @ matvec(step.B, dx)), 0.0)
                mu = max(mu, (float(step.point.grad @ dx) + curvature) / ((1 - self.tau) * c1))
                mu += 1e-4
        return z, mu, {}


class _GmresSqp(_L1Sqp):
    """GMRES on the KKT system, ``gmres_chunk`` iterations at a time from the current z."""

    def __init__(
        self,
        mu: float,
        eta: float,
        xi_B: float,
        tol: float,
        singular_tol: float,
        min_step: float,
        gmres_chunk: int,
        max_gmres_iterations: int,
    ) -> None:
        super().__init__(mu, eta, xi_B, tol, singular_tol, min_step)
        if gmres_chunk < 1:
            raise ConfigError(f"gmres_chunk: must be >= 1, got {gmres_chunk}")
        if max_gmres_iterations < 1:
            raise ConfigError(f"max_gmres_iterations: must be >= 1, got {max_gmres_iterations}")
        self.gmres_chunk, self.max_gmres_iterations = gmres_chunk, max_gmres_iterations

    def gmres_more(self, K: Any, b: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, int]:
        """``gmres_chunk`` more GMRES iterations from z (one restart cycle); (z, iterations)."""
        count = [0]

        def tick(_: Any) -> None:
            count[0] += 1

        z, _ = spla.gmres(
            K,
            b,
            x0=z,
            rtol=0.0,
            atol=0.0,
            restart=self.gmres_chunk,
            maxiter=1,
            callback=tick,
            callback_type="pr_norm",
        )
        return z, max(count[0], 1)


class SqpL1Gmres(_GmresSqp):
    """Inexact SQP of Byrd, Curtis and Nocedal (2008) with GMRES and termination tests I/II."""

    def __init__(
        self,
        mu: float = 1.0,
        kappa: float = 1.0,
        kappa1: float = 0.1,
        epsilon: float = 0.1,
        tau: float = 0.1,
        eta: float = 1e-8,
        xi_B: float = 0.1,
        tol: float = 1e-4,
        singular_tol: float = 1e-6,
        min_step: float = 1e-12,
        gmres_chunk: int = 2,
        max_gmres_iterations: int = 10_000,
    ) -> None:
        super().__init__(
            mu, eta, xi_B, tol, singular_tol, min_step, gmres_chunk, max_gmres_iterations
        )
        check_positive(kappa=kappa, kappa1=kappa1, epsilon=epsilon)
        if not 0 < tau < 1:
            raise ConfigError(f"tau: must be in (0, 1), got {tau}")
        self.kappa, self.kappa1, self.epsilon, self.tau = kappa, kappa1, epsilon, tau
        self.sigma = tau * (1 - epsilon)

    def start(self, point: Point) -> None:
        self.beta = max(np.abs(point.grad_lag).sum() / (np.abs(point.c).sum() + 1), 1.0)

    def direction(self, step: Step, mu: float) -> tuple[np.ndarray, float, dict[str, float]]:
        n, b = step.n, step.b
        c1 = np.abs(step.point.c).sum()
        residual_bound = self.kappa * np.abs(b).sum()
        constraint_bound = max(self.kappa1 * np.abs(b[:n]).sum(), self.beta * np.abs(b[n:]).sum())
        z = np.zeros(len(b))
        iterations = 0
        test = 0.0
        previous = np.inf
        while iterations < self.max_gmres_iterations:
            z, used = self.gmres_more(step.K, b, z)
            iterations += used
            r = matvec(step.K, z) - b
            rx, rc = np.abs(r[:n]).sum(), np.abs(r[n:]).sum()
            current = float(np.linalg.norm(r))
            if current >= previous * (1 - 1e-12):
                test = 3.0  # GMRES stagnated (e.g. solved exactly): take the step as it is
                break
            previous = current
            reduction = step.model_reduction(z, mu)
            if (
                np.abs(r).sum() <= residual_bound
                and rc <= constraint_bound
                and reduction >= step.reduction_threshold(z, mu, self.sigma)
            ):
                test = 1.0
                break
            if rx <= self.epsilon * c1 and rc <= self.beta * c1:
                test = 2.0
                break
        if step.model_reduction(z, mu) < step.reduction_threshold(z, mu, self.sigma):
            dx = z[:n]
            decrease = c1 - np.abs(step.point.c + matvec(step.point.jac, dx)).sum()
            if decrease > 0:
                curvature = max(0.5 * float(dx @ matvec(step.B, dx)), 0.0)
                wanted = (float(step.point.grad @ dx) + curvature) / ((1 - self.tau) * decrease)
                mu = max(wanted, mu) + 1e-4
        return z, mu, {"inner_iterations": float(iterations), "termination_test": test}


class SqpL1GmresAdaptive(_GmresSqp):
    """l1-merit SQP with GMRES to ||r||_1 <= kappa ||b||_1, mu <- nu mu and kappa <- kappa/nu^2
    while the model reduction is insufficient (the authors' adaptive baseline)."""

    def __init__(
        self,
        mu: float = 1.0,
        kappa: float = 0.1,
        nu: float = 1.5,
        sigma: float = 0.09,
        eta: float = 1e-8,
        xi_B: float = 0.1,
        tol: float = 1e-4,
        singular_tol: float = 1e-6,
        min_step: float = 1e-12,
        gmres_chunk: int = 2,
        max_gmres_iterations: int = 10_000,
        max_mu: float = 1e8,
    ) -> None:
        super().__init__(
            mu, eta, xi_B, tol, singular_tol, min_step, gmres_chunk, max_gmres_iterations
        )
        check_positive(kappa=kappa, sigma=sigma, max_mu=max_mu)
        if nu <= 1:
            raise ConfigError(f"nu: must be > 1, got {nu}")
        self.kappa0, self.nu, self.sigma, self.max_mu = kappa, nu, sigma, max_mu

    def start(self, point: Point) -> None:
        self.kappa = self.kappa0

    def direction(self, step: Step, mu: float) -> tuple[np.ndarray, float, dict[str, float]]:
        b = step.b
        z = np.zeros(len(b))
        iterations = 0
        b1 = np.abs(b).sum()
        r = -b  # the residual K z - b, computed once per z
        while True:
            previous = np.inf
            while np.abs(r).sum() > self.kappa * b1 and iterations < self.max_gmres_iterations:
                z, used = self.gmres_more(step.K, b, z)
                iterations += used
                r = matvec(step.K, z) - b
                current = float(np.linalg.norm(r))
                if current >= previous * (1 - 1e-12):
                    break  # stagnated: as accurate as GMRES gets
                previous = current
            if mu > self.max_mu or iterations >= self.max_gmres_iterations:
                break
            if step.model_reduction(z, mu) < step.reduction_threshold(z, mu, self.sigma):
                mu *= self.nu
                self.kappa /= self.nu**2
                continue
            break
        return z, mu, {"inner_iterations": float(iterations), "kappa": self.kappa}
