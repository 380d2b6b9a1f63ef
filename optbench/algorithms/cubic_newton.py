"""Cubic-regularised Newton (Nesterov and Polyak 2006) with the adaptive search on the
regularisation constant of the baseline in Semenov, Jaggi, Doikov (ICLR 2026; the authors'
``cubic_newton`` in epfml/grad-norm-smooth, src/methods.py).

At x_k with gradient g and Hessian A, for the current M (start ``M0``):

  h = argmin_h <g, h> + (1/2) <A h, h> + (M/6) ||h||^3          (the cubic model, H = M/2)
  accept when f(x_k + h) <= f(x_k) + model(h), then M <- max(M/2, M_min); else M <- 2 M

(at most 41 trials). The model's minimiser is h(r) = -(A + (M/2) r I)^{-1} g at the root r > 0
of r = ||h(r)||, found by doubling r until r >= ||h(r)|| and then Newton's method on
r - ||h(r)|| (derivative 1 + (M/2) h^T (A + (M/2) r I)^{-1} h / ||h||), as the authors do.
A convex problem (A positive semidefinite) is assumed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import torch

from optbench.contracts.algorithm import Algorithm, Progress
from optbench.contracts.context import RunContext
from optbench.contracts.errors import ConfigError
from optbench.contracts.finite_sum import FiniteSumProblem
from optbench.contracts.problem import ProblemKind


def cubic_step(
    g: torch.Tensor, A: torch.Tensor, H: float, tol: float = 1e-8, max_iter: int = 50
) -> tuple[torch.Tensor, float] | None:
    """The minimiser h of <g, h> + <A h, h>/2 + (H/3) ||h||^3 and the model value there; None
    when the root search fails."""
    eye = torch.eye(len(g), dtype=g.dtype, device=g.device)

    def at(r: float) -> tuple[float, torch.Tensor, float, torch.Tensor]:
        factor, info = torch.linalg.cholesky_ex(A + H * r * eye)
        if int(info) != 0:
            raise torch.linalg.LinAlgError("A + H r I is not positive definite")
        h = -torch.cholesky_solve(g.unsqueeze(1), factor).squeeze(1)
        norm = float(torch.linalg.vector_norm(h))
        return r - norm, h, norm, factor

    def model(h: torch.Tensor, norm: float) -> float:
        return float(g @ h + 0.5 * (h @ (A @ h)) + H * norm**3 / 3)

    try:
        r = 1.0
        for _ in range(max_iter):  # bracket: r - ||h(r)|| >= 0
            residual, h, norm, factor = at(r)
            if abs(residual) <= tol:
                return h, model(h, norm)
            if residual > 0:
                break
            r *= 2
        for _ in range(max_iter):  # Newton on r - ||h(r)||, decreasing to the root
            residual, h, norm, factor = at(r)
            if abs(residual) <= tol:
                return h, model(h, norm)
            solved = torch.cholesky_solve(h.unsqueeze(1), factor).squeeze(1)
            r -= residual / (1 + H / norm * float(solved @ h))
    except torch.linalg.LinAlgError:
        return None
    return None


class CubicNewton(Algorithm):
    """Cubic Newton with the authors' adaptive search on M (a baseline of Semenov et al.)."""

    accepts: ClassVar[frozenset[ProblemKind]] = frozenset({ProblemKind.FINITE_SUM})

    def __init__(
        self, M0: float = 1.0, M_min: float = 1e-5, max_trials: int = 41, tol: float = 1e-12
    ) -> None:
        if M0 <= 0 or M_min <= 0:
            raise ConfigError(f"M0, M_min: must be > 0, got {M0}, {M_min}")
        self.M0, self.M_min, self.max_trials, self.tol = M0, M_min, max_trials, tol

    def run(self, problem: FiniteSumProblem, ctx: RunContext) -> Iterator[Progress]:
        x = problem.initial_point()
        loss = problem.loss(x)
        M = self.M0
        yield Progress(x)
        while True:
            _, grad = problem.loss_grad(x)
            A = problem.hessian(x)
            trials = 0
            while trials < self.max_trials:
                trials += 1
                step = cubic_step(grad, A, 0.5 * M)
                if step is None:
                    return "cubic subproblem failed"
                h, model = step
                trial_loss = problem.loss(x + h)
                if trial_loss <= loss + model:
                    M = max(0.5 * M, self.M_min)
                    break
                M *= 2
            x, loss = x + h, trial_loss
            grad_norm = float(torch.linalg.vector_norm(grad))
            yield Progress(
                x,
                {"loss": loss, "grad_norm_before": grad_norm, "M": M, "trials": trials},
                converged=grad_norm <= self.tol,
            )
