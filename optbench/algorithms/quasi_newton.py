"""Full-batch deterministic methods on finite sums: L-BFGS and Newton's method."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, Literal

import torch

from optbench.contracts.algorithm import Algorithm, Progress
from optbench.contracts.context import RunContext
from optbench.contracts.errors import ConfigError
from optbench.contracts.finite_sum import FiniteSumProblem
from optbench.contracts.problem import ProblemKind


class LBFGS(Algorithm):
    """L-BFGS (Liu and Nocedal, 1989) on the full objective, via ``torch.optim.LBFGS``.

    One step is one L-BFGS iteration (``max_iter=1``) with a strong-Wolfe line search. Progress
    reports the loss and gradient norm at the iterate the step started from (torch evaluates
    there first); the run is converged once that gradient norm is at most ``tolerance_grad``.
    """

    accepts: ClassVar[frozenset[ProblemKind]] = frozenset({ProblemKind.FINITE_SUM})

    def __init__(
        self,
        lr: float = 1.0,
        history_size: int = 10,
        line_search: Literal["strong_wolfe", "none"] = "strong_wolfe",
        tolerance_grad: float = 1e-10,
    ) -> None:
        if lr <= 0:
            raise ConfigError(f"lr: must be > 0, got {lr}")
        if history_size < 1:
            raise ConfigError(f"history_size: must be >= 1, got {history_size}")
        self.lr, self.history_size = lr, history_size
        self.line_search, self.tolerance_grad = line_search, tolerance_grad

    def run(self, problem: FiniteSumProblem, ctx: RunContext) -> Iterator[Progress]:
        param = torch.nn.Parameter(problem.initial_point())
        optimizer = torch.optim.LBFGS(
            [param],
            lr=self.lr,
            max_iter=1,
            history_size=self.history_size,
            line_search_fn=None if self.line_search == "none" else "strong_wolfe",
            tolerance_grad=0.0,
            tolerance_change=0.0,
        )
        evaluations: list[tuple[float, float]] = []

        def closure() -> torch.Tensor:
            loss, grad = problem.loss_grad(param.detach())
            param.grad = grad
            evaluations.append((loss, float(torch.linalg.vector_norm(grad))))
            return torch.tensor(loss, dtype=grad.dtype)

        yield Progress(param.detach())
        while True:
            evaluations.clear()
            optimizer.step(closure)
            loss, grad_norm = evaluations[0]  # at the iterate this step started from
            yield Progress(
                param.detach(),
                {"loss": loss, "grad_norm": grad_norm, "evaluations": len(evaluations)},
                converged=grad_norm <= self.tolerance_grad,
            )


class Newton(Algorithm):
    """Damped Newton's method with Armijo backtracking (a reference solver for small ``dim``).

    d = -H(x)^-1 grad f(x) by Cholesky (a ``damping * I`` shift if H is not positive definite),
    step t in {1, 1/2, 1/4, ...} until f(x + t d) <= f(x) + c t grad^T d. Converged when
    ||grad f(x)|| <= ``tol``.
    """

    accepts: ClassVar[frozenset[ProblemKind]] = frozenset({ProblemKind.FINITE_SUM})

    def __init__(
        self, tol: float = 1e-10, c: float = 1e-4, damping: float = 1e-8, max_dim: int = 5000
    ) -> None:
        if not 0 < c < 0.5:
            raise ConfigError(f"c: Armijo constant must be in (0, 0.5), got {c}")
        self.tol, self.c, self.damping, self.max_dim = tol, c, damping, max_dim

    def run(self, problem: FiniteSumProblem, ctx: RunContext) -> Iterator[Progress]:
        if problem.dim > self.max_dim:
            raise ConfigError(
                f"algorithm.max_dim: Newton forms the {problem.dim}x{problem.dim} Hessian; "
                f"dim {problem.dim} exceeds max_dim={self.max_dim}"
            )
        x = problem.initial_point()
        yield Progress(x)
        loss, grad = problem.loss_grad(x)
        while True:
            hessian = problem.hessian(x)
            factor, info = torch.linalg.cholesky_ex(hessian)
            if int(info) != 0:
                eye = torch.eye(problem.dim, dtype=x.dtype, device=x.device)
                factor = torch.linalg.cholesky(hessian + self.damping * eye)
            direction = -torch.cholesky_solve(grad.unsqueeze(1), factor).squeeze(1)
            slope = float(grad @ direction)
            t = 1.0
            while True:
                trial = x + t * direction
                trial_loss = problem.loss(trial)
                if trial_loss <= loss + self.c * t * slope or t < 1e-12:
                    break
                t *= 0.5
            x = trial
            loss, grad = problem.loss_grad(x)
            grad_norm = float(torch.linalg.vector_norm(grad))
            yield Progress(
                x,
                {"loss": loss, "grad_norm": grad_norm, "step_size": t},
                converged=grad_norm <= self.tol,
            )
