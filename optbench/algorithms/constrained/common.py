"""What every Newton-KKT method on an ``NLPProblem`` evaluates at an iterate (x, lam)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from optbench.algorithms.constrained.linalg import rmatvec
from optbench.contracts.algorithm import Algorithm, Progress
from optbench.contracts.context import RunContext
from optbench.contracts.errors import ConfigError
from optbench.contracts.nlp import NLPProblem
from optbench.contracts.problem import ProblemKind


@dataclass
class Point:
    """Oracle values at (x, lam): f, grad f, c, J, grad_x L = grad f + J^T lam."""

    x: np.ndarray
    lam: np.ndarray
    f: float
    grad: np.ndarray
    c: np.ndarray
    jac: Any
    grad_lag: np.ndarray

    @property
    def kkt(self) -> float:
        """||(grad_x L, c)||_2."""
        return float(np.hypot(np.linalg.norm(self.grad_lag), np.linalg.norm(self.c)))

    def with_multiplier(self, lam: np.ndarray) -> Point:
        """The same x with other multipliers (no oracle call)."""
        grad_lag = self.grad + rmatvec(self.jac, lam)
        return Point(self.x, lam, self.f, self.grad, self.c, self.jac, grad_lag)


def evaluate_point(problem: NLPProblem, x: np.ndarray, lam: np.ndarray) -> Point:
    """f, grad f, c and J at x (counted: f, grad, c, jac)."""
    f, grad = problem.f_grad(x)
    c, jac = problem.c_jac(x)
    return Point(x, lam, f, grad, c, jac, grad + rmatvec(jac, lam))


def check_positive(**values: float) -> None:
    """``ConfigError("name: must be > 0")`` for the first non-positive value."""
    for name, value in values.items():
        if not value > 0:
            raise ConfigError(f"{name}: must be > 0, got {value}")


_THREADPOOLS: Any = None


class NLPAlgorithm(Algorithm):
    """Base of the family's algorithms: ``run`` drives ``iterate`` with one BLAS thread.

    The family's products are small (KKT systems of a few to a few thousand rows), where
    multi-threaded BLAS costs more than it gains on a shared machine; the limit (threadpoolctl)
    holds while the run's generator is open and is lifted when it ends or is closed.
    """

    accepts: ClassVar[frozenset[ProblemKind]] = frozenset({ProblemKind.NLP})

    def iterate(self, problem: NLPProblem, ctx: RunContext) -> Iterator[Progress]:
        raise NotImplementedError

    def run(self, problem: NLPProblem, ctx: RunContext) -> Iterator[Progress]:
        global _THREADPOOLS
        if _THREADPOOLS is None:
            from threadpoolctl import ThreadpoolController

            _THREADPOOLS = ThreadpoolController()
        with _THREADPOOLS.limit(limits=1, user_api="blas"):
            return (yield from self.iterate(problem, ctx))
