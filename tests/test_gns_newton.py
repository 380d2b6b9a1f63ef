"""GNS-Newton (Semenov et al. 2025, Algorithm 1) and its baselines against independent
computations: the regularised Newton steps and the adaptive search replayed with numpy's dense
solver, the cubic model's minimiser against scipy, and hand-computed line-search steps."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import scipy.optimize
import torch

from optbench.algorithms.cubic_newton import CubicNewton, cubic_step
from optbench.algorithms.gns_newton import GNSNewton
from optbench.algorithms.line_search import SLS, GradientMethod
from optbench.contracts.context import RunContext
from optbench.contracts.errors import ConfigError
from optbench.platform.cache import DiskCache
from optbench.problems.least_squares import LeastSquares
from optbench.problems.logreg import LogisticRegression

pytestmark = pytest.mark.usefixtures("one_thread")


def context(cache: Path) -> RunContext:
    return RunContext.create(0, max_steps=100, cache=DiskCache(cache))


@pytest.fixture(scope="module")
def heart(shared_cache: Path) -> LogisticRegression:
    problem = LogisticRegression(dataset="heart_scale", l2=1e-3)
    problem.setup(context(shared_cache))
    return problem


def numpy_objective(problem: LogisticRegression, w: np.ndarray) -> tuple[float, np.ndarray]:
    X, y, l2 = problem.X.numpy(), problem.y.numpy(), problem.l2
    z = y * (X @ w)
    loss = np.mean(np.logaddexp(0, -z)) + 0.5 * l2 * w @ w
    return float(loss), -(X.T @ (y / (1 + np.exp(z)))) / len(y) + l2 * w


def numpy_curvature(problem: LogisticRegression, w: np.ndarray, kind: str) -> np.ndarray:
    X, y, l2 = problem.X.numpy(), problem.y.numpy(), problem.l2
    s = 1 / (1 + np.exp(-y * (X @ w)))  # sigma(margin)
    weights = {"exact": s * (1 - s), "weighted_gauss_newton": 1 - s}[kind]
    return (X.T * weights) @ X / len(y) + l2 * np.eye(X.shape[1])


@pytest.mark.parametrize("kind", ["exact", "weighted_gauss_newton"])
def test_steps_replay_algorithm_1_with_a_dense_solver(
    heart: LogisticRegression, kind: str, tmp_path: Path
) -> None:
    """Three iterations of the method against the rule replayed in numpy (np.linalg.solve)."""
    run = GNSNewton(hessian=kind).run(heart, context(tmp_path))
    x = next(run).solution.numpy().copy()
    gamma = 1.0
    for _ in range(3):
        loss, grad = numpy_objective(heart, x)
        H = numpy_curvature(heart, x, kind)
        while True:  # the adaptive search on gamma
            lam = np.linalg.norm(grad) / (gamma + 1e-8)
            trial = x - np.linalg.solve(H + lam * np.eye(len(x)), grad)
            trial_loss, trial_grad = numpy_objective(heart, trial)
            if loss - trial_loss >= trial_grad @ trial_grad / (8 * lam):
                gamma *= 2
                break
            gamma /= 2
        x = trial
        step = next(run)
        np.testing.assert_allclose(step.solution.numpy(), x, rtol=1e-9, atol=1e-12)
        assert step.metrics["gamma"] == pytest.approx(gamma)


def test_linear_convergence_on_a_quadratic(tmp_path: Path) -> None:
    """On least squares every accepted step contracts the gap; exact Newton's regulariser
    lambda ~ ||g|| makes the rate superlinear: the gap falls below 1e-12 within 15 steps."""
    problem = LeastSquares(n_samples=60, dim=5, condition=100.0)
    problem.setup(context(tmp_path))
    gaps = [
        problem.evaluate(p.solution)["gap"]
        for p in itertools.islice(GNSNewton().run(problem, context(tmp_path)), 16)
    ]
    assert all(b < a for a, b in itertools.pairwise(gaps) if a > 1e-14)
    assert gaps[-1] < 1e-12


def test_subsampled_and_diagonal_hessians(heart: LogisticRegression, tmp_path: Path) -> None:
    algorithm = GNSNewton(hessian="subsampled", sample_fraction=0.2)
    ctx = context(tmp_path)
    x = heart.initial_point() + 0.1
    H = algorithm.approximate_hessian(heart, x, ctx)
    # the exact Hessian of the first ceil(0.2 * 270) = 54 indices of a permutation drawn from
    # the algorithm's random stream (seed 0)
    generator = RunContext.create(0).algorithm_random.torch  # the run's stream, replayed
    batch = torch.randperm(heart.n_samples, generator=generator)[:54]
    torch.testing.assert_close(H, heart.hessian(x, batch))
    diagonal = GNSNewton(hessian="diagonal").approximate_hessian(heart, x, ctx)
    torch.testing.assert_close(diagonal, torch.diag(torch.diagonal(heart.hessian(x))))
    with pytest.raises(ConfigError, match="hessian: unknown 'bfgs'"):
        GNSNewton(hessian="bfgs")


def test_cubic_step_minimises_the_cubic_model() -> None:
    rng = np.random.default_rng(0)
    B = rng.normal(size=(6, 6))
    A, g, H = B @ B.T / 6, rng.normal(size=6), 0.7
    h, value = cubic_step(torch.as_tensor(g), torch.as_tensor(A), H)

    def model(v: np.ndarray) -> float:
        return float(g @ v + 0.5 * v @ A @ v + H / 3 * np.linalg.norm(v) ** 3)

    best = scipy.optimize.minimize(model, np.zeros(6), method="BFGS", options={"gtol": 1e-12})
    np.testing.assert_allclose(h.numpy(), best.x, atol=1e-6)
    assert value == pytest.approx(best.fun, abs=1e-10)
    # first-order condition of the model: g + A h + H ||h|| h = 0
    hn = h.numpy()
    np.testing.assert_allclose(g + A @ hn + H * np.linalg.norm(hn) * hn, 0, atol=1e-7)


def test_cubic_newton_and_gradient_method_first_steps(
    heart: LogisticRegression, tmp_path: Path
) -> None:
    x0 = heart.initial_point().numpy()
    loss, grad = numpy_objective(heart, x0)
    # gradient method: L = 1 first; accept when the quadratic upper model holds, else double
    L = 1.0
    while True:
        trial = x0 - grad / L
        if numpy_objective(heart, trial)[0] <= loss + grad @ (trial - x0) + L / 2 * np.sum(
            (trial - x0) ** 2
        ):
            break
        L *= 2
    step = list(itertools.islice(GradientMethod().run(heart, context(tmp_path)), 2))[1]
    np.testing.assert_allclose(step.solution.numpy(), trial, rtol=1e-12)
    assert step.metrics["L"] == pytest.approx(max(L / 2, 1e-5))
    # cubic Newton: the first accepted step is the model minimiser for the accepted M
    step = list(itertools.islice(CubicNewton().run(heart, context(tmp_path)), 2))[1]
    M = 2 * step.metrics["M"]  # halved after acceptance
    h, _ = cubic_step(
        torch.as_tensor(grad), torch.as_tensor(numpy_curvature(heart, x0, "exact")), M / 2
    )
    np.testing.assert_allclose(step.solution.numpy(), x0 + h.numpy(), rtol=1e-9, atol=1e-12)


def test_sls_step_by_hand(tmp_path: Path) -> None:
    problem = LeastSquares(n_samples=40, dim=3)
    ctx = context(tmp_path)
    problem.setup(ctx)
    run = SLS(lr=10.0, batch_size=8, c=0.5, beta=0.9, expand=2.0).run(problem, ctx)
    x = next(run).solution.clone()
    generator = RunContext.create(0).algorithm_random.torch  # the run's stream, replayed
    step_size = 10.0
    for _ in range(2):
        batch = torch.randint(40, (8,), generator=generator)
        A, b = problem.A[batch], problem.b[batch]

        def f(v: torch.Tensor, A: torch.Tensor = A, b: torch.Tensor = b) -> float:
            r = A @ v - b
            return float(0.5 * (r @ r) / 8)

        g = A.T @ (A @ x - b) / 8
        step_size *= 2.0 ** (8 / 40)
        while f(x - step_size * g) > f(x) - 0.5 * step_size * float(g @ g):
            step_size *= 0.9
        x = x - step_size * g
        torch.testing.assert_close(next(run).solution, x)
