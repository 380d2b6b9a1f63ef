"""Gradient-regularised Newton with approximate Hessians and the gradient-normalised
smoothness step rule: Semenov, Jaggi, Doikov, "Gradient-Normalized Smoothness for Optimization
with Approximate Hessians" (ICLR 2026, arXiv:2506.13710), Algorithm 1, as the authors'
``grad_norm_smooth`` (epfml/grad-norm-smooth, src/methods.py) runs it with B = I.

At x_k with gradient g_k and an approximate Hessian H_k (computed once per iteration):

  lambda = ||g_k|| / (gamma + eps),   Delta = -(H_k + lambda I)^{-1} g_k   (Cholesky)
  accept when f(x_k) - f(x_k + Delta) >= ||grad f(x_k + Delta)||^2 / (8 lambda), then
  gamma <- max(2 gamma, gamma_min); otherwise gamma <- gamma / 2 and try again

(at most 41 trials, as the authors' loop runs; x_{k+1} = x_k + Delta of the last trial). gamma
is the radius of gradient-normalised smoothness: lambda_k = ||g_k|| / gamma_k replaces a
Hessian-Lipschitz constant. Each trial costs one ``loss_grad`` call.

``hessian`` chooses H_k: ``exact``; ``gauss_newton``, ``weighted_gauss_newton`` (the paper's
log-sum-exp / softmax approximation, dropping -pi pi^T), ``fisher`` (empirical Fisher) from the
problem's ``Curvature`` oracle; ``diagonal`` (the diagonal of the exact Hessian); ``subsampled``
(the exact Hessian of a uniform sample, without replacement, of ``sample_fraction`` of the
data, drawn afresh every iteration from the run's generator).

Deviation (named): when H_k + lambda I is not positive definite (only possible with an
indefinite exact Hessian, i.e. a non-convex problem) the trial counts as rejected (gamma
halves, lambda grows); the authors' loop stops searching there.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import ClassVar

import torch

from optbench.contracts.algorithm import Algorithm, Progress
from optbench.contracts.context import RunContext
from optbench.contracts.errors import ConfigError
from optbench.contracts.finite_sum import Curvature, FiniteSumProblem, require
from optbench.contracts.problem import ProblemKind

HESSIANS = ("exact", "gauss_newton", "weighted_gauss_newton", "fisher", "diagonal", "subsampled")


class GNSNewton(Algorithm):
    """Algorithm 1 of Semenov et al. (2025) with a choice of approximate Hessian."""

    accepts: ClassVar[frozenset[ProblemKind]] = frozenset({ProblemKind.FINITE_SUM})

    def __init__(
        self,
        hessian: str = "exact",
        gamma0: float = 1.0,
        gamma_min: float = 1e-9,
        eps: float = 1e-8,
        max_trials: int = 41,
        sample_fraction: float = 0.1,
        tol: float = 1e-12,
    ) -> None:
        if hessian not in HESSIANS:
            raise ConfigError(f"hessian: unknown '{hessian}' (known: {', '.join(HESSIANS)})")
        if gamma0 <= 0:
            raise ConfigError(f"gamma0: must be > 0, got {gamma0}")
        if max_trials < 1:
            raise ConfigError(f"max_trials: must be >= 1, got {max_trials}")
        if not 0 < sample_fraction <= 1:
            raise ConfigError(f"sample_fraction: must be in (0, 1], got {sample_fraction}")
        self.hessian, self.gamma0, self.gamma_min = hessian, gamma0, gamma_min
        self.eps, self.max_trials, self.sample_fraction, self.tol = (
            eps,
            max_trials,
            sample_fraction,
            tol,
        )

    def approximate_hessian(
        self, problem: FiniteSumProblem, x: torch.Tensor, ctx: RunContext
    ) -> torch.Tensor:
        """H_k for the configured ``hessian``."""
        if self.hessian in ("gauss_newton", "weighted_gauss_newton", "fisher"):
            return problem.curvature(x, self.hessian)  # type: ignore[attr-defined]
        if self.hessian == "subsampled":
            n = problem.n_samples
            size = max(1, math.ceil(self.sample_fraction * n))
            batch = torch.randperm(n, generator=ctx.algorithm_random.torch, device=ctx.device)[
                :size
            ]
            return problem.curvature(x, "hessian", batch)  # type: ignore[attr-defined]
        H = problem.hessian(x)
        return torch.diag(torch.diagonal(H)) if self.hessian == "diagonal" else H

    def run(self, problem: FiniteSumProblem, ctx: RunContext) -> Iterator[Progress]:
        if self.hessian not in ("exact", "diagonal"):
            require(problem, Curvature, "gns_newton", f"hessian={self.hessian}")
        x = problem.initial_point()
        loss, grad = problem.loss_grad(x)
        grad_norm = float(torch.linalg.vector_norm(grad))
        gamma = self.gamma0
        eye = torch.eye(problem.dim, dtype=x.dtype, device=x.device)
        yield Progress(x)
        while True:
            H = self.approximate_hessian(problem, x, ctx)
            trial = trial_loss = trial_grad = None
            lam = math.nan
            trials = 0
            while trials < self.max_trials:
                trials += 1
                lam = grad_norm / (gamma + self.eps)
                factor, info = torch.linalg.cholesky_ex(H + lam * eye)
                if int(info) != 0:  # not positive definite: a larger lambda
                    gamma /= 2
                    continue
                delta = -torch.cholesky_solve(grad.unsqueeze(1), factor).squeeze(1)
                trial = x + delta
                trial_loss, trial_grad = problem.loss_grad(trial)
                if loss - trial_loss >= float(trial_grad @ trial_grad) / (8 * lam):
                    gamma = max(2 * gamma, self.gamma_min)
                    break
                gamma /= 2
            if trial is None:
                return "H + lambda I never positive definite"
            x, loss, grad = trial, trial_loss, trial_grad
            grad_norm = float(torch.linalg.vector_norm(grad))
            yield Progress(
                x,
                {
                    "loss": loss,
                    "grad_norm": grad_norm,
                    "gamma": gamma,
                    "lambda": lam,
                    "trials": trials,
                },
                converged=grad_norm <= self.tol,
            )
