"""my_method: the algorithm this project benchmarks. Replace the class with your own method.

optbench imports it through ``_target_: my_method.MyMethod`` (configs/algorithm/my_method.yaml):
the project directory is on the import path when ``optbench`` runs there. The constructor's typed
signature is the config schema (unknown keys and wrong types are refused before anything runs);
``run`` proposes iterates, the problem scores them, the runner owns the budget and the logging.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import torch

from optbench.contracts import Algorithm, ConfigError, ProblemKind, Progress, RunContext
from optbench.contracts.finite_sum import FiniteSumProblem


class MyMethod(Algorithm):
    """SGD with the stochastic Polyak step size, SPS (Loizou, Vaswani, Laradji and
    Lacoste-Julien, "Stochastic Polyak Step-size for SGD: An Adaptive Learning Rate for Fast
    Convergence", AISTATS 2021), with the step-size smoothing of the authors' code
    (github.com/IssamLaradji/sps, ``adapt_flag="smooth_iter"``, its default).

    Each step draws a minibatch S of ``batch_size`` sample indices uniformly with replacement
    (from the run's algorithm random stream), with minibatch loss f_S(x) and gradient g, and
    moves x <- x - gamma_k g with

        gamma_k = min( (f_S(x) - f_star) / (c ||g||^2),  growth^(b/n) gamma_{k-1},  gamma_max )

    where gamma_{-1} = ``gamma_init``, b/n is the minibatch's fraction of the n samples (the step
    may grow by at most ``growth`` per pass over the data), ``f_star`` is a lower bound of the
    minibatch loss (0 for nonnegative losses, exact when the model interpolates the data) and
    ``gamma_max`` (None: no cap) gives the paper's SPS_max. A step with g = 0 does not move.
    Solves ``finite_sum`` problems. Progress metrics: the minibatch ``loss`` and the step
    ``gamma``.
    """

    accepts: ClassVar[frozenset[ProblemKind]] = frozenset({ProblemKind.FINITE_SUM})

    def __init__(
        self,
        c: float = 0.5,
        growth: float = 2.0,
        gamma_init: float = 1.0,
        gamma_max: float | None = None,
        f_star: float = 0.0,
        batch_size: int = 16,
    ) -> None:
        if c <= 0:
            raise ConfigError(f"c: must be > 0, got {c}")
        if growth < 1:
            raise ConfigError(f"growth: must be >= 1, got {growth}")
        if gamma_init <= 0 or (gamma_max is not None and gamma_max <= 0):
            raise ConfigError(f"gamma_init, gamma_max: must be > 0, got {gamma_init}, {gamma_max}")
        if batch_size < 1:
            raise ConfigError(f"batch_size: must be >= 1, got {batch_size}")
        self.c, self.growth, self.gamma_init, self.gamma_max = c, growth, gamma_init, gamma_max
        self.f_star, self.batch_size = f_star, batch_size

    def run(self, problem: FiniteSumProblem, ctx: RunContext) -> Iterator[Progress]:
        x = problem.initial_point()
        yield Progress(x)  # the starting point
        generator = ctx.algorithm_random.torch
        growth_per_step = self.growth ** (self.batch_size / problem.n_samples)
        gamma = self.gamma_init
        while True:
            batch = torch.randint(
                problem.n_samples, (self.batch_size,), generator=generator, device=ctx.device
            )
            loss, grad = problem.loss_grad(x, batch)
            squared_norm = float(grad @ grad)
            if squared_norm == 0.0:  # a stationary point of the minibatch loss: stay
                yield Progress(x, {"loss": loss, "gamma": 0.0})
                continue
            polyak = max(loss - self.f_star, 0.0) / (self.c * squared_norm)
            gamma = min(polyak, growth_per_step * gamma, self.gamma_max or float("inf"))
            x = x - gamma * grad
            yield Progress(x, {"loss": loss, "gamma": gamma})
