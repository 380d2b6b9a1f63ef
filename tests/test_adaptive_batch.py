"""AdAdaGrad's batch-size tests against their definitions on constructed gradients (values
worked out by hand), and the method's steps and batch growth replayed by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from optbench.algorithms.adaptive_batch import (
    AdAdaGrad,
    inner_product_test,
    norm_test,
    orthogonality_test,
)
from optbench.contracts.context import RunContext
from optbench.contracts.errors import ConfigError
from optbench.platform.cache import DiskCache
from optbench.problems.least_squares import LeastSquares
from optbench.problems.logreg import LogisticRegression


def test_tests_on_constructed_gradients() -> None:
    # rows (1, 1) and (3, -1): mean g = (2, 0), ||g||^2 = 4
    # per-coordinate sample variances: (2, 2) -> ||Var||_1 = 4
    # <g_i, g> = 2, 6 -> variance 8; ||g||^4 = 16
    # parts orthogonal to g: (0, 1), (0, -1) -> variances (0, 2), sum 2
    G = torch.tensor([[1.0, 1.0], [3.0, -1.0]], dtype=torch.float64)
    assert norm_test(G, eta=0.5) == pytest.approx(4 / (0.25 * 4))
    assert inner_product_test(G, theta=0.5) == pytest.approx(8 / (0.25 * 16))
    assert orthogonality_test(G, nu=0.25) == pytest.approx(2 / (0.0625 * 4))
    algorithm = AdAdaGrad(test="augmented_inner_product", theta=0.5, nu=0.25)
    assert algorithm.statistic(G) == pytest.approx(max(2.0, 8.0))
    # identical rows: no variance, every test is satisfied by any batch
    same = torch.tensor([[0.3, -0.2]] * 4, dtype=torch.float64)
    assert norm_test(same, 0.1) == pytest.approx(0.0, abs=1e-12)
    assert inner_product_test(same, 0.1) == pytest.approx(0.0, abs=1e-12)


def test_random_gradients_against_numpy_definitions() -> None:
    rng = np.random.default_rng(0)
    G = rng.normal(size=(9, 5)) + np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    g = G.mean(0)
    norm = np.var(G, axis=0, ddof=1).sum() / (0.1**2 * g @ g)
    ip = np.var(G @ g, ddof=1) / (0.2**2 * (g @ g) ** 2)
    orth = np.var(G - np.outer(G @ g, g) / (g @ g), axis=0, ddof=1).sum() / (0.3**2 * g @ g)
    Gt = torch.as_tensor(G)
    assert norm_test(Gt, 0.1) == pytest.approx(norm)
    assert inner_product_test(Gt, 0.2) == pytest.approx(ip)
    assert orthogonality_test(Gt, 0.3) == pytest.approx(orth)


@pytest.mark.parametrize("optimizer", ["adagrad", "adagrad_norm"])
def test_steps_and_batch_growth_by_hand(optimizer: str, shared_cache: Path) -> None:
    problem = LogisticRegression(dataset="heart_scale", l2=1e-3)
    ctx = RunContext.create(4, max_steps=10, cache=DiskCache(shared_cache))
    problem.setup(ctx)
    run = AdAdaGrad(lr=0.5, optimizer=optimizer, test="norm", eta=0.5, batch_size=2).run(
        problem, ctx
    )
    x = next(run).solution.clone()
    generator = RunContext.create(4).algorithm_random.torch  # the run's stream, replayed
    size, squares, b2 = 2, torch.zeros_like(x), 0.1**2
    for _ in range(4):
        batch = torch.randperm(problem.n_samples, generator=generator)[:size]
        G = torch.stack([problem.loss_grad(x, i.reshape(1))[1] for i in batch])
        g = G.mean(0)
        if optimizer == "adagrad":
            squares = squares + g * g
            x = x - 0.5 * g / (squares.sqrt() + 1e-10)
        else:
            b2 += float(g @ g)
            x = x - 0.5 * g / math.sqrt(b2)
        step = next(run)
        assert step.metrics["batch_size"] == size
        torch.testing.assert_close(step.solution, x)
        wanted = float(G.var(0).sum() / (0.25 * (g @ g)))
        size = min(problem.n_samples, max(size, math.ceil(wanted)))
    assert size > 2  # the norm test grew the batch


def test_sample_budget(tmp_path: Path) -> None:
    problem = LeastSquares(n_samples=20)
    ctx = RunContext.create(0, max_steps=10)
    problem.setup(ctx)
    steps = list(AdAdaGrad(test="none", batch_size=3, max_epochs=1.0).run(problem, ctx))
    assert len(steps) - 1 == 6  # 6 batches of 3 <= 20 samples < 7 batches
    assert problem.counters["samples"] == 18


def test_needs_per_sample_gradients_and_bad_configs(tmp_path: Path) -> None:
    problem = LeastSquares()
    ctx = RunContext.create(0, max_steps=10)
    problem.setup(ctx)
    with pytest.raises(ConfigError, match="needs test=norm"):
        next(AdAdaGrad().run(problem, ctx))
    next(AdAdaGrad(test="none").run(problem, ctx))  # the constant-batch baseline runs anywhere
    with pytest.raises(ConfigError, match="test: unknown"):
        AdAdaGrad(test="variance")
    with pytest.raises(ConfigError, match="batch_size"):
        AdAdaGrad(batch_size=1)
