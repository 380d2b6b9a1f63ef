"""AdAdaGrad: AdaGrad and AdaGrad-Norm whose batch size grows by adaptive-sampling tests. Lau,
Liu, Kolar, "AdAdaGrad: Adaptive Batch Size Schemes for Adaptive Gradient Methods" (2024,
arXiv:2402.11215); the tests as the authors' ``tests.py`` (timlautk/AdAdaGrad) computes them.

Each step draws a batch of the current size b_t (uniformly, without replacement within the
batch), takes the per-sample gradients g_i (i in B_t) and their mean g, and updates

  AdaGrad:       s <- s + g * g,          x <- x - lr g / (sqrt(s) + eps)   (torch.optim.Adagrad)
  AdaGrad-Norm:  b^2 <- b^2 + ||g||^2,    x <- x - lr g / b                 (Ward et al. 2019)

then sets b_{t+1} = min(max_batch_size, max(b_t, ceil(T))) with the statistic T of ``test``
(sample variances with Bessel's correction, over the batch):

- ``norm`` (Byrd et al. 2012):      T = ||Var_i(g_i)||_1 / (eta^2 ||g||^2)
- ``inner_product`` (Bollapragada et al. 2018): T = Var_i(<g_i, g>) / (theta^2 ||g||^4)
- ``augmented_inner_product``: max of the inner-product statistic and the orthogonality
  statistic ||Var_i(g_i - <g_i, g> g / ||g||^2)||_1 / (nu^2 ||g||^2)
- ``none``: a constant batch (the baseline).

The test runs every step (the authors' ``test_interval = 1``) and the batch never shrinks.
``max_epochs`` is the authors' sample-based training length (``max_samples``, here in passes
over the data): the run stops (stop reason ``sample budget``) before a batch would take the
samples processed past ``max_epochs * n``.
Deviation (named): the authors' ``Adagradnorm`` class keeps one accumulator per output row of
each weight matrix; ours is the scalar AdaGrad-Norm of the paper's analysis.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import ClassVar

import torch

from optbench.contracts.algorithm import Algorithm, Progress
from optbench.contracts.context import RunContext
from optbench.contracts.errors import ConfigError
from optbench.contracts.finite_sum import FiniteSumProblem, PerSampleGradients, require
from optbench.contracts.problem import ProblemKind

TESTS = ("none", "norm", "inner_product", "augmented_inner_product")
OPTIMIZERS = ("adagrad", "adagrad_norm")


def norm_test(G: torch.Tensor, eta: float) -> float:
    """||Var_i(g_i)||_1 / (eta^2 ||mean||^2) over the rows g_i of G."""
    g = G.mean(0)
    return float(G.var(0, correction=1).sum() / (eta**2 * (g @ g)))


def inner_product_test(G: torch.Tensor, theta: float) -> float:
    """Var_i(<g_i, g>) / (theta^2 ||g||^4), g the mean row."""
    g = G.mean(0)
    return float((G @ g).var(correction=1) / (theta**2 * (g @ g) ** 2))


def orthogonality_test(G: torch.Tensor, nu: float) -> float:
    """||Var_i(g_i - <g_i, g> g / ||g||^2)||_1 / (nu^2 ||g||^2)."""
    g = G.mean(0)
    squared = g @ g
    orthogonal = G - torch.outer(G @ g, g) / squared
    return float(orthogonal.var(0, correction=1).sum() / (nu**2 * squared))


class AdAdaGrad(Algorithm):
    """AdaGrad / AdaGrad-Norm with a batch grown by an adaptive-sampling test."""

    accepts: ClassVar[frozenset[ProblemKind]] = frozenset({ProblemKind.FINITE_SUM})

    def __init__(
        self,
        lr: float = 0.1,
        optimizer: str = "adagrad",
        test: str = "norm",
        batch_size: int = 2,
        max_batch_size: int | None = None,
        eta: float = 0.1,
        theta: float = 0.1,
        nu: float = 0.1,
        eps: float = 1e-10,
        b0: float = 0.1,
        max_epochs: float | None = None,
    ) -> None:
        if lr <= 0:
            raise ConfigError(f"lr: must be > 0, got {lr}")
        if optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer: unknown '{optimizer}' (known: {', '.join(OPTIMIZERS)})")
        if test not in TESTS:
            raise ConfigError(f"test: unknown '{test}' (known: {', '.join(TESTS)})")
        if batch_size < 2 and test != "none":
            raise ConfigError(
                f"batch_size: the tests need a sample variance: >= 2, got {batch_size}"
            )
        if batch_size < 1:
            raise ConfigError(f"batch_size: must be >= 1, got {batch_size}")
        if min(eta, theta, nu) <= 0:
            raise ConfigError(f"eta, theta, nu: must be > 0, got {eta}, {theta}, {nu}")
        self.lr, self.optimizer, self.test = lr, optimizer, test
        self.batch_size, self.max_batch_size = batch_size, max_batch_size
        if max_epochs is not None and max_epochs <= 0:
            raise ConfigError(f"max_epochs: must be > 0, got {max_epochs}")
        self.eta, self.theta, self.nu, self.eps, self.b0 = eta, theta, nu, eps, b0
        self.max_epochs = max_epochs

    def statistic(self, G: torch.Tensor) -> float:
        """The batch size the test asks for, before rounding and capping."""
        if self.test == "norm":
            return norm_test(G, self.eta)
        if self.test == "inner_product":
            return inner_product_test(G, self.theta)
        return max(inner_product_test(G, self.theta), orthogonality_test(G, self.nu))

    def run(self, problem: FiniteSumProblem, ctx: RunContext) -> Iterator[Progress]:
        if self.test != "none":
            require(problem, PerSampleGradients, "adadagrad", f"test={self.test}")
        n = problem.n_samples
        cap = n if self.max_batch_size is None else min(self.max_batch_size, n)
        size = min(self.batch_size, cap)
        x = problem.initial_point()
        squares = torch.zeros_like(x)
        norm_squared = self.b0**2
        budget = math.inf if self.max_epochs is None else self.max_epochs * n
        processed = 0
        yield Progress(x)
        while True:
            if processed + size > budget:
                return "sample budget"
            processed += size
            batch = torch.randperm(n, generator=ctx.algorithm_random.torch, device=ctx.device)[
                :size
            ]
            metrics: dict[str, float] = {"batch_size": float(size)}
            if self.test == "none":
                loss, g = problem.loss_grad(x, batch)
                metrics["loss"] = loss
            else:
                G = problem.per_sample_grads(x, batch)  # type: ignore[attr-defined]
                g = G.mean(0)
            if self.optimizer == "adagrad":
                squares += g * g
                x = x - self.lr * g / (squares.sqrt() + self.eps)
            else:
                norm_squared += float(g @ g)
                x = x - self.lr * g / math.sqrt(norm_squared)
            if self.test != "none":
                wanted = self.statistic(G)
                metrics["test_statistic"] = wanted
                if math.isfinite(wanted):
                    size = min(cap, max(size, math.ceil(wanted)))
            metrics["grad_norm"] = float(torch.linalg.vector_norm(g))
            yield Progress(x, metrics)
