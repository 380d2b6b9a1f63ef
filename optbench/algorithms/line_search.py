"""Gradient methods whose step size comes from a backtracking line search.

- ``GradientMethod``: full-batch gradient descent with the adaptive estimate of the Lipschitz
  constant L used as a baseline by Semenov, Jaggi, Doikov (ICLR 2026; the authors'
  ``gradient_method`` in epfml/grad-norm-smooth): T = x - g / L, accept when
  f(T) <= f(x) + <g, T - x> + (L/2) ||T - x||^2 and then L <- max(L/2, L_min), else L <- 2L
  (at most 31 trials).
- ``SLS``: stochastic gradient descent with the stochastic Armijo line search of Vaswani et al.
  (NeurIPS 2019), as the SSO authors' ``LSOpt`` (Lavington et al., ICML 2023) runs it as a
  baseline: on the minibatch loss f_B, the step s (carried over from the previous step and
  first multiplied by ``expand ** (batch_size / n)``) shrinks by ``beta`` until
  f_B(x - s g) <= f_B(x) - c s ||g||^2 (at most 100 trials, or s < 1e-6), then x <- x - s g.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import ClassVar

import torch

from optbench.contracts.algorithm import Algorithm, Progress
from optbench.contracts.context import RunContext
from optbench.contracts.errors import ConfigError
from optbench.contracts.finite_sum import FiniteSumProblem
from optbench.contracts.problem import ProblemKind


class GradientMethod(Algorithm):
    """Gradient descent with the authors' doubling/halving search on L."""

    accepts: ClassVar[frozenset[ProblemKind]] = frozenset({ProblemKind.FINITE_SUM})

    def __init__(self, L0: float = 1.0, L_min: float = 1e-5, max_trials: int = 31) -> None:
        if L0 <= 0 or L_min <= 0:
            raise ConfigError(f"L0, L_min: must be > 0, got {L0}, {L_min}")
        self.L0, self.L_min, self.max_trials = L0, L_min, max_trials

    def run(self, problem: FiniteSumProblem, ctx: RunContext) -> Iterator[Progress]:
        x = problem.initial_point()
        loss, grad = problem.loss_grad(x)
        L = self.L0
        yield Progress(x)
        while True:
            trials = 0
            while trials < self.max_trials:
                trials += 1
                trial = x - grad / L
                trial_loss = problem.loss(trial)
                step = trial - x
                if trial_loss <= loss + float(grad @ step) + 0.5 * L * float(step @ step):
                    L = max(0.5 * L, self.L_min)
                    break
                L *= 2
            x = trial
            loss, grad = problem.loss_grad(x)
            yield Progress(
                x,
                {
                    "loss": loss,
                    "grad_norm": float(torch.linalg.vector_norm(grad)),
                    "L": L,
                    "trials": trials,
                },
            )


def armijo(
    value: float,
    grad: torch.Tensor,
    step: float,
    evaluate: Callable[[float], float],
    c: float,
    beta: float,
    max_trials: int = 100,
    min_step: float = 1e-6,
) -> tuple[float, int]:
    """Backtrack ``step`` by ``beta`` until evaluate(step) <= value - c step ||grad||^2 (the
    loss at x - step grad); the accepted (or last) step and the number of trials."""
    squared = float(grad @ grad)
    trials = 0
    while trials < max_trials:
        trials += 1
        if evaluate(step) <= value - c * step * squared:
            break
        step *= beta
        if step < min_step:
            break
    return step, trials


class SLS(Algorithm):
    """Minibatch SGD with the stochastic Armijo line search (Vaswani et al. 2019)."""

    accepts: ClassVar[frozenset[ProblemKind]] = frozenset({ProblemKind.FINITE_SUM})

    def __init__(
        self,
        lr: float = 1.0,
        batch_size: int = 25,
        c: float = 0.5,
        beta: float = 0.9,
        expand: float = 2.0,
    ) -> None:
        if lr <= 0:
            raise ConfigError(f"lr: initial step must be > 0, got {lr}")
        if batch_size < 1:
            raise ConfigError(f"batch_size: must be >= 1, got {batch_size}")
        if not 0 < beta < 1 or expand < 1 or not 0 < c < 1:
            raise ConfigError(
                f"c, beta, expand: need 0<c<1, 0<beta<1, expand>=1 ({c}, {beta}, {expand})"
            )
        self.lr, self.batch_size, self.c, self.beta, self.expand = lr, batch_size, c, beta, expand

    def run(self, problem: FiniteSumProblem, ctx: RunContext) -> Iterator[Progress]:
        x = problem.initial_point()
        step = self.lr
        growth = self.expand ** (self.batch_size / problem.n_samples)
        yield Progress(x)
        while True:
            batch = torch.randint(
                problem.n_samples,
                (self.batch_size,),
                generator=ctx.algorithm_random.torch,
                device=ctx.device,
            )
            loss, grad = problem.loss_grad(x, batch)

            def minibatch_loss(s: float, x=x, grad=grad, batch=batch) -> float:
                return problem.loss(x - s * grad, batch)

            step, trials = armijo(loss, grad, step * growth, minibatch_loss, self.c, self.beta)
            x = x - step * grad
            yield Progress(
                x,
                {
                    "loss": loss,
                    "grad_norm": float(torch.linalg.vector_norm(grad)),
                    "lr": step,
                    "trials": trials,
                },
            )
