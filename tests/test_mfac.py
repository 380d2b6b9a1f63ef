"""M-FAC's inverse-Fisher-vector product against the dense inverse of the damped empirical
Fisher (partial window, full window, after the ring buffer wraps), and the optimizer's steps
(with momentum) by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from optbench.algorithms.mfac import MFAC, SlidingWindowFisher
from optbench.contracts.context import RunContext
from optbench.contracts.errors import ConfigError
from optbench.problems.least_squares import LeastSquares


def dense_inverse_product(
    window: list[np.ndarray], m: int, damp: float, x: np.ndarray
) -> np.ndarray:
    F = damp * np.eye(len(x)) + sum(np.outer(g, g) for g in window) / m
    return np.linalg.inv(F) @ x


@pytest.mark.parametrize(("d", "m"), [(7, 3), (5, 8)])
def test_inverse_fisher_vector_product_against_dense_inverse(d: int, m: int) -> None:
    rng = np.random.default_rng(d * m)
    damp = 1e-2
    fisher = SlidingWindowFisher(m, d, damp, torch.float64, torch.device("cpu"))
    grads = [rng.normal(size=d) for _ in range(2 * m + 1)]
    x = rng.normal(size=d)
    for t, g in enumerate(grads, start=1):
        fisher.update(torch.as_tensor(g))
        window = grads[max(0, t - m) : t]  # the last m gradients (zeros before the window fills)
        expected = dense_inverse_product(window, m, damp, x)
        np.testing.assert_allclose(fisher.solve(torch.as_tensor(x)).numpy(), expected, rtol=1e-8)


def test_authors_damping_is_well_conditioned_in_float64() -> None:
    """The authors' damp = 1e-5 with gradients of norm ~1: F^{-1} F x = x to 1e-6."""
    rng = np.random.default_rng(1)
    d, m, damp = 30, 16, 1e-5
    fisher = SlidingWindowFisher(m, d, damp, torch.float64, torch.device("cpu"))
    grads = [rng.normal(size=d) / np.sqrt(d) for _ in range(m)]
    for g in grads:
        fisher.update(torch.as_tensor(g))
    x = rng.normal(size=d)
    F = damp * np.eye(d) + sum(np.outer(g, g) for g in grads) / m
    np.testing.assert_allclose(
        fisher.solve(torch.as_tensor(F @ x)).numpy(), x, rtol=1e-6, atol=1e-6
    )


def test_mfac_steps_by_hand(tmp_path: Path) -> None:
    problem = LeastSquares(n_samples=40, dim=4)
    ctx = RunContext.create(5, max_steps=10)
    problem.setup(ctx)
    lr, m, damp, mu = 0.1, 3, 1e-3, 0.5
    run = MFAC(lr=lr, ngrads=m, damp=damp, momentum=mu, batch_size=6).run(problem, ctx)
    x = next(run).solution.numpy().copy()
    generator = RunContext.create(5).algorithm_random.torch  # the run's stream, replayed
    window: list[np.ndarray] = []
    v = np.zeros(4)
    for _ in range(5):
        batch = torch.randint(40, (6,), generator=generator)
        A, b = problem.A[batch].numpy(), problem.b[batch].numpy()
        g = A.T @ (A @ x - b) / 6
        window = [*window, g][-m:]
        v = mu * v + (1 - mu) * dense_inverse_product(window, m, damp, g)
        x = x - lr * v
        np.testing.assert_allclose(next(run).solution.numpy(), x, rtol=1e-9, atol=1e-12)


def test_bad_configs() -> None:
    with pytest.raises(ConfigError, match="ngrads"):
        MFAC(ngrads=0)
    with pytest.raises(ConfigError, match="damp"):
        MFAC(damp=0.0)
