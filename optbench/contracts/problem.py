"""The problem contract.

A problem owns its data, its oracles and its scoring: it *scores*, the algorithm only *proposes*.
Every algorithm paired with a problem is measured by the same ``evaluate`` and charged in the same
oracle units, which is what makes a comparison fair.

Life cycle, driven by the runner:

1. ``__init__(**config)``: store the hyperparameters from the YAML (cheap, no data loaded). Raise
   ``ConfigError`` for a value out of range, with a message starting with the parameter's name.
2. ``setup(ctx)``: load data (from ``ctx.data_dir``), build tensors on ``ctx.device`` with
   ``ctx.dtype``, draw any random instance from ``ctx.problem_random`` (never from another
   stream), keep expensive references in ``ctx.cache``. Raise ``DataError`` naming the file for
   bad data.
3. oracles, called by the algorithm; each call is counted in ``self.counters``.
4. ``evaluate(solution)``: the metrics of a proposed solution, called by the runner outside the
   algorithm's clock. Deterministic; must not touch the counters.
5. ``describe()``: sizes and facts worth logging (logged once per run as ``describe.*`` tags).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from enum import StrEnum
from typing import Any, ClassVar

from optbench.contracts.context import RunContext


class ProblemKind(StrEnum):
    """The oracle interface a problem offers; an algorithm declares the kinds it accepts.
    Each kind has its contract module: ``optbench.contracts.<kind>``."""

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
    """Base of every problem. Subclasses set ``kind`` and implement the life cycle above.

    ``headline``: the metric ``evaluate`` reports that best says how well a solution does, and
    whether lower or higher is better; a sweep without a ``report:`` block is reported on it.
    """

    kind: ClassVar[ProblemKind]
    headline: ClassVar[tuple[str, str] | None] = None
    #: every step faces a new instance of a stream (SOR sequences, routing batches): a decision
    #: that stays the same over many steps is a policy, not a stalled method, so the runner's
    #: stagnation detection (``budget.stall_steps``) is off for such a problem.
    stream: ClassVar[bool] = False

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

    def check_budget(self, max_steps: int) -> None:
        """Refuse a step budget the problem cannot serve (e.g. more steps than instances) with a
        ``ConfigError`` naming ``budget.max_steps``. Called by the runner before ``setup``;
        by default any budget is served."""
        return
