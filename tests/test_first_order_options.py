"""Options of the minibatch methods: the averaged-iterate output against the running mean of
the last iterates of a run with the same seed, and a hand-computed SGD step with the UBA
schedule's rate."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from optbench.algorithms.first_order import SGD
from optbench.contracts.context import RunContext
from optbench.contracts.errors import ConfigError
from optbench.problems.least_squares import LeastSquares


def context(tmp_path: Path, steps: int) -> RunContext:
    return RunContext.create(7, max_steps=steps)


def iterates(tmp_path: Path, steps: int, **kwargs: object) -> list[torch.Tensor]:
    problem = LeastSquares(n_samples=50, dim=4)
    ctx = context(tmp_path, steps)
    problem.setup(ctx)
    run = SGD(batch_size=5, **kwargs).run(problem, ctx)  # type: ignore[arg-type]
    return [p.solution.clone() for p in itertools.islice(run, steps + 1)]


def test_average_is_the_running_mean_of_the_last_iterates(tmp_path: Path) -> None:
    last = iterates(tmp_path, 20, lr=0.05, iterate="last")
    average = iterates(tmp_path, 20, lr=0.05, iterate="average")
    torch.testing.assert_close(average[0], last[0])  # x_0 before any step
    for t in range(1, 21):
        torch.testing.assert_close(average[t], torch.stack(last[1 : t + 1]).mean(0))


def test_sgd_step_with_uba_rate_by_hand(tmp_path: Path) -> None:
    problem = LeastSquares(n_samples=30, dim=3)
    ctx = context(tmp_path, 10)
    problem.setup(ctx)
    run = SGD(lr=0.2, batch_size=4, schedule="uba", uba_phi=3.0).run(problem, ctx)
    x0 = next(run).solution.clone()
    generator = RunContext.create(7).algorithm_random.torch  # the run's stream, replayed
    x = x0
    for t in range(3):
        batch = torch.randint(problem.n_samples, (4,), generator=generator)
        A, b = problem.A[batch], problem.b[batch]
        grad = A.T @ (A @ x - b) / 4
        c = 1 + np.cos(np.pi * t / 10)
        x = x - 0.2 * (2 * c / (6 + (2 - 3.0) * c)) * grad
        step = next(run)
        torch.testing.assert_close(step.solution, x)
        assert step.metrics["lr"] == pytest.approx(0.2 * 2 * c / (6 - c))


def test_bad_options() -> None:
    with pytest.raises(ConfigError, match="iterate: unknown 'best'"):
        SGD(iterate="best")
    with pytest.raises(ConfigError, match="uba_phi"):
        SGD(uba_phi=-1.0)
