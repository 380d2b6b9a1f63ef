"""The problem contracts.

A problem owns its data, its oracles and its scoring: it *scores*, the algorithm only *proposes*.
Every algorithm paired with a problem is measured by the same ``evaluate`` and charged in the same
oracle units, which is what makes a comparison fair.

Life cycle, driven by the runner:

1. ``__init__(**config)``: store the hyperparameters from the YAML (cheap, no data loaded). Raise
   ``ConfigError`` for a value out of range, with a message starting with the parameter's name.
2. ``setup(ctx)``: load data, build tensors on ``ctx.device`` with ``ctx.dtype``, draw any random
   instance from ``ctx.generator`` / ``ctx.rng``. Raise ``DataError`` naming the file for bad data.
3. oracles, called by the algorithm; each call is counted in ``self.counters``.
4. ``evaluate(solution)``: the metrics of a proposed solution, called by the runner outside the
   algorithm's clock. Deterministic; must not touch the counters.
5. ``describe()``: sizes and facts worth logging (logged once per run as ``problem.*`` tags).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from enum import StrEnum
from typing import Any, ClassVar

import torch

from optbench.platform.context import RunContext


class ProblemKind(StrEnum):
    """The oracle interface a problem offers; an algorithm declares the kinds it accepts."""

    #: empirical risk (1/N) sum_i f_i(x): full and minibatch loss, gradient, Hessian-vector product.
    FINITE_SUM = "finite_sum"
    #: equality-constrained program min f(x) s.t. c(x) = 0: f, grad f, c, J, Hessian of the
    #: Lagrangian, x0, lambda0.
    NLP = "nlp"
    #: a differentiable simulator of an inventory network over demand samples.
    INVENTORY = "inventory"
    #: a stream of related linear systems; the cost of an instance is the solver's iteration count.
    PARAMETER_SEQUENCE = "parameter_sequence"
    #: a stream of token batches with router scores; the cost is the expert load.
    ROUTING_STREAM = "routing_stream"


class Problem(ABC):
    """Base of every problem. Subclasses set ``kind`` and implement the life cycle above."""

    kind: ClassVar[ProblemKind]

    def __init__(self) -> None:
        #: oracle calls by name (e.g. ``grad``, ``hvp``, ``samples``); reported at every evaluation.
        self.counters: Counter[str] = Counter()

    @abstractmethod
    def setup(self, ctx: RunContext) -> None:
        """Load data and build the instance on ``ctx.device`` / ``ctx.dtype``."""

    @abstractmethod
    def evaluate(self, solution: Any) -> dict[str, float]:
        """Metrics of ``solution`` (losses, residuals, gaps). Deterministic, uncounted."""

    def describe(self) -> dict[str, Any]:
        """Sizes and facts worth logging: dimensions, sample counts, known optimum, source file."""
        return {}


class FiniteSumProblem(Problem):
    """``f(x) = (1/N) sum_i f_i(x) + r(x)`` over ``N = n_samples`` samples, ``x`` in R^dim.

    ``batch`` arguments are index tensors (on ``ctx.device``) selecting the samples of a
    minibatch; ``None`` means the full sum. Oracles count calls under ``loss``, ``grad``, ``hvp``
    and ``hessian``, and the samples they touch under ``samples`` (so ``samples / N`` is the
    number of data passes an algorithm used).
    """

    kind = ProblemKind.FINITE_SUM
    n_samples: int
    dim: int

    @abstractmethod
    def initial_point(self) -> torch.Tensor:
        """The starting point x0 (a fresh tensor the algorithm may modify)."""

    @abstractmethod
    def loss(self, x: torch.Tensor, batch: torch.Tensor | None = None) -> float:
        """``f(x)`` on the batch (mean over its samples plus the regulariser)."""

    @abstractmethod
    def loss_grad(
        self, x: torch.Tensor, batch: torch.Tensor | None = None
    ) -> tuple[float, torch.Tensor]:
        """``(f(x), grad f(x))`` on the batch."""

    @abstractmethod
    def hvp(
        self, x: torch.Tensor, v: torch.Tensor, batch: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The Hessian-vector product ``H(x) v`` on the batch."""

    def hessian(self, x: torch.Tensor) -> torch.Tensor:
        """The full Hessian (dim x dim). Default: ``dim`` Hessian-vector products."""
        eye = torch.eye(self.dim, dtype=x.dtype, device=x.device)
        return torch.stack([self.hvp(x, eye[i]) for i in range(self.dim)], dim=1)

    def _count(self, oracle: str, batch: torch.Tensor | None) -> None:
        self.counters[oracle] += 1
        self.counters["samples"] += self.n_samples if batch is None else len(batch)
