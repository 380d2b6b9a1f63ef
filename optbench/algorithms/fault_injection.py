"""Fault injection: gradient descent that raises, produces NaN or hangs on request.

For testing the platform itself (and a user's infrastructure): a sweep over ``fail_at_step`` /
``nan_at_step`` / ``sleep_s`` shows how failed, diverged and timed-out runs are recorded;
``kill_at_step`` kills the job's own process (SIGKILL), as an out-of-memory kill or a crash in
native code would (with ``hydra/launcher=parallel`` that is a worker dying). For
large sweeps, ``fail_fraction`` / ``nan_fraction`` / ``hang_fraction`` pick each run's fault
from its seed: with u the first uniform draw of the algorithm's random stream, the run raises
at step ``fault_step`` if u < fail_fraction, turns NaN there if u < fail_fraction +
nan_fraction, and hangs there (sleeps ``hang_s``) if u < fail_fraction + nan_fraction +
hang_fraction.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import ClassVar

import numpy as np
import torch

from optbench.contracts.algorithm import Algorithm, Progress
from optbench.contracts.context import RunContext
from optbench.contracts.errors import ConfigError
from optbench.contracts.finite_sum import FiniteSumProblem
from optbench.contracts.problem import ProblemKind


class InjectedFault(RuntimeError):
    """The error ``fail_at_step`` raises."""


def seeded_fault(rng: np.random.Generator, fail: float, nan: float, hang: float) -> str | None:
    """The fault a run gets, drawn from its random stream: ``raise``, ``nan``, ``hang`` or None."""
    u = rng.random()
    if u < fail:
        return "raise"
    if u < fail + nan:
        return "nan"
    if u < fail + nan + hang:
        return "hang"
    return None


class FaultInjection(Algorithm):
    """Full-batch gradient descent with step ``lr`` plus the requested faults.

    Args:
        fail_at_step: raise ``InjectedFault`` at this step.
        nan_at_step: from this step on, the iterate is NaN.
        freeze_at_step: from this step on, the iterate and its loss no longer change (a method
            that stopped moving; the runner ends it as ``stalled``).
        sleep_s: sleep this long in every step (a slow method).
        kill_at_step: at this step the process running the job kills itself (SIGKILL).
        fail_fraction, nan_fraction, hang_fraction, fault_step, hang_s: faults drawn from the
            run's seed (see the module docstring).
    """

    accepts: ClassVar[frozenset[ProblemKind]] = frozenset({ProblemKind.FINITE_SUM})

    def __init__(
        self,
        lr: float = 0.1,
        fail_at_step: int | None = None,
        nan_at_step: int | None = None,
        freeze_at_step: int | None = None,
        sleep_s: float = 0.0,
        fail_fraction: float = 0.0,
        nan_fraction: float = 0.0,
        hang_fraction: float = 0.0,
        fault_step: int = 3,
        hang_s: float = 3600.0,
        kill_at_step: int | None = None,
    ) -> None:
        if min(fail_fraction, nan_fraction, hang_fraction) < 0 or (
            fail_fraction + nan_fraction + hang_fraction > 1
        ):
            raise ConfigError("fail_fraction: the fault fractions must be >= 0 and sum to <= 1")
        self.lr, self.fail_at_step, self.nan_at_step, self.sleep_s = (
            lr,
            fail_at_step,
            nan_at_step,
            sleep_s,
        )
        self.freeze_at_step = freeze_at_step
        self.fractions = (fail_fraction, nan_fraction, hang_fraction)
        self.fault_step, self.hang_s = fault_step, hang_s
        self.kill_at_step = kill_at_step

    def run(self, problem: FiniteSumProblem, ctx: RunContext) -> Iterator[Progress]:
        fail_at, nan_at, hang_at = self.fail_at_step, self.nan_at_step, None
        fault = seeded_fault(ctx.algorithm_random.numpy, *self.fractions)
        if fault == "raise":
            fail_at = self.fault_step
        elif fault == "nan":
            nan_at = self.fault_step
        elif fault == "hang":
            hang_at = self.fault_step
        x = problem.initial_point()
        yield Progress(x)
        step = 0
        while True:
            step += 1
            if self.sleep_s:
                time.sleep(self.sleep_s)
            if self.kill_at_step is not None and step == self.kill_at_step:
                os.kill(os.getpid(), signal.SIGKILL)
            if hang_at is not None and step == hang_at:
                time.sleep(self.hang_s)
            if fail_at is not None and step >= fail_at:
                raise InjectedFault(f"injected failure at step {step}")
            loss, grad = problem.loss_grad(x)
            if self.freeze_at_step is None or step < self.freeze_at_step:
                x = x - self.lr * grad
            if nan_at is not None and step >= nan_at:
                x = torch.full_like(x, float("nan"))
                loss = float("nan")
            yield Progress(x, {"loss": loss})
