"""SSO: stochastic surrogate optimisation in target space. Lavington, Vaswani, Babanezhad,
Schmidt, Le Roux, "Target-based Surrogates for Stochastic Optimization" (ICML 2023,
arXiv:2302.02607), as the authors' ``SGD_FMDOpt`` / ``SLS_FMDOpt`` with the ``LSOpt`` inner
optimiser run it (WilderLavington/Target-Based-Surrogates-For-Stochastic-Optimization).

The objective is a composite f(x) = (1/N) sum_i l_i(t_i(x)) + r(x) (the problem's
``TargetSpace`` oracles; t_i = logits or margins). Outer step t, on a minibatch B:

1. the targets z = t_B(x_t) and, the one EXPENSIVE oracle of the step, the per-sample target
   gradients g_i = dl_i/dz_i (``target_grads``);
2. the surrogate (projected SGD in target space: its target-space minimiser is
   z - (lr/2) g, i.e. a target step of eta = lr / 2), scaled as the authors' code does
   (mean over the |B| x k entries):

     h(x) = (1 / (|B| k)) sum_{i,j} [lr g_ij t_ij(x) + (t_ij(x) - z_ij)^2] + (lr / k) r(x)

3. m inner steps of the deterministic Armijo line search on h (cheap: a forward pass and a
   vector-Jacobian product each, no new loss gradient): the step s starts at ``inner_lr``
   (reset every outer step), is multiplied by ``expand ** (|B| / N)`` before each search, and
   shrinks by ``beta`` until h(x - s grad h) <= h(x) - c s ||grad h||^2 (at most 100 trials,
   or s < 1e-6); the loop ends early when ||grad h|| <= 1e-6.

``outer=constant``: lr is fixed (``SGD_FMDOpt``). ``outer=armijo`` (``SLS_FMDOpt``): each outer
step first searches the target step in target space, starting from 1/lr_prev expanded by
``expand``: the largest 1/eta with (1/|B|) sum_i l_i(z_i - g_i / eta) <= l_B(z) - (c_outer /
eta) ||g||^2 / |B|, eta divided by ``beta`` per failure and clipped to [1e-4, 1e4]; then lr =
1/eta in the surrogate.

Deviations from the authors' code (named): minibatches drawn uniformly with replacement (theirs:
shuffled epochs); the regulariser r(x) of the problem enters the surrogate exactly (their
models have none); the inner loop is the Armijo search only (their ``inner_opt`` option).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import ClassVar

import torch

from optbench.algorithms.line_search import armijo
from optbench.contracts.algorithm import Algorithm, Progress
from optbench.contracts.context import RunContext
from optbench.contracts.errors import ConfigError
from optbench.contracts.finite_sum import FiniteSumProblem, TargetSpace, require
from optbench.contracts.problem import ProblemKind

OUTER = ("constant", "armijo")


class SSO(Algorithm):
    """Target-based surrogate optimisation: one target-gradient oracle, m cheap inner steps."""

    accepts: ClassVar[frozenset[ProblemKind]] = frozenset({ProblemKind.FINITE_SUM})

    def __init__(
        self,
        lr: float = 1.0,
        m: int = 10,
        batch_size: int = 25,
        outer: str = "constant",
        inner_lr: float = 10.0,
        c: float = 0.1,
        beta: float = 0.9,
        expand: float = 2.0,
        outer_c: float = 0.5,
    ) -> None:
        if lr <= 0:
            raise ConfigError(f"lr: must be > 0, got {lr}")
        if m < 1:
            raise ConfigError(f"m: inner steps must be >= 1, got {m}")
        if batch_size < 1:
            raise ConfigError(f"batch_size: must be >= 1, got {batch_size}")
        if outer not in OUTER:
            raise ConfigError(f"outer: unknown '{outer}' (known: {', '.join(OUTER)})")
        if not (0 < c < 1 and 0 < beta < 1 and expand >= 1 and 0 < outer_c < 1):
            raise ConfigError(
                f"c, beta, expand, outer_c: need 0<c<1, 0<beta<1, expand>=1, 0<outer_c<1 "
                f"(got {c}, {beta}, {expand}, {outer_c})"
            )
        self.lr, self.m, self.batch_size, self.outer = lr, m, batch_size, outer
        self.inner_lr, self.c, self.beta, self.expand, self.outer_c = (
            inner_lr,
            c,
            beta,
            expand,
            outer_c,
        )

    def target_step(
        self,
        problem: TargetSpace,
        z: torch.Tensor,
        g: torch.Tensor,
        loss: float,
        batch: torch.Tensor,
        eta: float,
    ) -> float:
        """The authors' target-space Armijo search (``SLS_FMDOpt``): the new eta (= 1/lr)."""
        proposal = eta / self.expand
        squared = float((g * g).sum()) / len(batch)
        for _ in range(100):
            if (
                problem.target_loss(z - g / proposal, batch)
                > loss - self.outer_c / proposal * squared
            ):
                proposal /= self.beta
            else:
                break
        return min(max(proposal, 1e-4), 1e4)

    def surrogate(
        self,
        problem: TargetSpace,
        batch: torch.Tensor,
        z: torch.Tensor,
        g: torch.Tensor,
        lr: float,
    ) -> Callable[[torch.Tensor, bool], tuple[float, torch.Tensor | None]]:
        """h(x) and (optionally) its gradient for this outer step."""
        scale = 1.0 / (len(batch) * problem.n_targets)

        def h(x: torch.Tensor, gradient: bool) -> tuple[float, torch.Tensor | None]:
            t, pullback = problem.target_pullback(x, batch)
            r, r_grad = problem.regularizer(x)
            residual = t - z
            value = scale * float((lr * g * t + residual * residual).sum())
            value += lr / problem.n_targets * r
            if not gradient:
                return value, None
            grad = scale * pullback(lr * g + 2 * residual) + lr / problem.n_targets * r_grad
            return value, grad

        return h

    def run(self, problem: FiniteSumProblem, ctx: RunContext) -> Iterator[Progress]:
        require(problem, TargetSpace, "sso", "the target-space oracles")
        target: TargetSpace = problem  # type: ignore[assignment]
        x = problem.initial_point()
        n = problem.n_samples
        growth = self.expand ** (self.batch_size / n)
        eta = 1.0 / self.lr
        yield Progress(x)
        while True:
            batch = torch.randint(
                n, (self.batch_size,), generator=ctx.algorithm_random.torch, device=ctx.device
            )
            z, _ = target.target_pullback(x, batch)
            loss, g = target.target_grads(z, batch)  # the expensive oracle
            if self.outer == "armijo":
                eta = self.target_step(target, z, g, loss, batch, eta)
            lr = 1.0 / eta
            h = self.surrogate(target, batch, z, g, lr)
            step, inner = self.inner_lr, 0
            while inner < self.m:
                value, grad = h(x, True)
                assert grad is not None
                step, _ = armijo(
                    value,
                    grad,
                    step * growth,
                    lambda s, x=x, grad=grad, h=h: h(x - s * grad, False)[0],
                    self.c,
                    self.beta,
                )
                x = x - step * grad
                inner += 1
                if float(torch.linalg.vector_norm(grad)) <= 1e-6:
                    break
            yield Progress(
                x,
                {"loss": loss, "lr": lr, "inner_steps": inner, "inner_step_size": step},
            )
