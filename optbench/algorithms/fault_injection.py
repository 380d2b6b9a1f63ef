"""Fault injection: gradient descent that raises, produces NaN or hangs on request.

For testing the platform itself (and a user's infrastructure): a sweep over ``fail_at_step`` /
``nan_at_step`` / ``sleep_s`` shows how failed, diverged and timed-out runs are recorded.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import ClassVar

import torch

from optbench.algorithms.base import Algorithm, Progress
from optbench.platform.context import RunContext
from optbench.problems.base import FiniteSumProblem, ProblemKind


class InjectedFault(RuntimeError):
    """The error ``fail_at_step`` raises."""


class FaultInjection(Algorithm):
    """Full-batch gradient descent with step ``lr`` plus the requested faults.

    Args:
        fail_at_step: raise ``InjectedFault`` at this step.
        nan_at_step: from this step on, the iterate is NaN.
        sleep_s: sleep this long in every step (a slow or hung method).
    """

    accepts: ClassVar[frozenset[ProblemKind]] = frozenset({ProblemKind.FINITE_SUM})

    def __init__(
        self,
        lr: float = 0.1,
        fail_at_step: int | None = None,
        nan_at_step: int | None = None,
        sleep_s: float = 0.0,
    ) -> None:
        self.lr, self.fail_at_step, self.nan_at_step, self.sleep_s = (
            lr,
            fail_at_step,
            nan_at_step,
            sleep_s,
        )

    def run(self, problem: FiniteSumProblem, ctx: RunContext) -> Iterator[Progress]:
        x = problem.initial_point()
        yield Progress(x)
        step = 0
        while True:
            step += 1
            if self.sleep_s:
                time.sleep(self.sleep_s)
            if self.fail_at_step is not None and step >= self.fail_at_step:
                raise InjectedFault(f"injected failure at step {step}")
            loss, grad = problem.loss_grad(x)
            x = x - self.lr * grad
            if self.nan_at_step is not None and step >= self.nan_at_step:
                x = torch.full_like(x, float("nan"))
                loss = float("nan")
            yield Progress(x, {"loss": loss})
