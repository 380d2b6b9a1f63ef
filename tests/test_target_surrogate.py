"""SSO (Lavington et al. 2023) against an independent numpy replay of the authors' update on
logistic and squared losses (surrogate, inner Armijo steps, target-space outer search), the
surrogate's gradient against autograd, and its fixed point: with many inner steps the inner
loop reaches the surrogate's minimiser."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.optimize
import torch

from optbench.algorithms.target_surrogate import SSO
from optbench.contracts.context import RunContext
from optbench.contracts.errors import ConfigError
from optbench.platform.cache import DiskCache
from optbench.problems.least_squares import LeastSquares
from optbench.problems.logreg import LogisticRegression


def make(cache: Path, loss: str) -> tuple[LogisticRegression, RunContext]:
    problem = LogisticRegression(dataset="heart_scale", l2=1e-2, loss=loss)
    ctx = RunContext.create(2, max_steps=10, cache=DiskCache(cache))
    problem.setup(ctx)
    return problem, ctx


def terms(z: np.ndarray, y: np.ndarray, loss: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample losses and derivatives of the margins' loss."""
    if loss == "squared":
        return 0.5 * (z - y) ** 2, z - y
    return np.logaddexp(0, -y * z), -y / (1 + np.exp(y * z))


@pytest.mark.parametrize(
    ("loss", "outer"), [("logistic", "constant"), ("squared", "constant"), ("logistic", "armijo")]
)
def test_outer_steps_replayed_in_numpy(loss: str, outer: str, shared_cache: Path) -> None:
    problem, ctx = make(shared_cache, loss)
    lr, m, b, c, beta, expand = 0.7, 4, 6, 0.1, 0.9, 2.0
    run = SSO(lr=lr, m=m, batch_size=b, outer=outer, c=c, beta=beta, expand=expand).run(
        problem, ctx
    )
    x = next(run).solution.numpy().copy()
    X, y, l2, n = problem.X.numpy(), problem.y.numpy(), problem.l2, problem.n_samples
    generator = RunContext.create(2).algorithm_random.torch  # the run's stream, replayed
    growth = expand ** (b / n)
    eta = 1 / lr
    for _ in range(3):
        batch = torch.randint(n, (b,), generator=generator).numpy()
        Xb, yb = X[batch], y[batch]
        z = Xb @ x
        values, g = terms(z, yb, loss)
        if outer == "armijo":  # the target-space search of SLS_FMDOpt, on the batch's sum
            proposal = eta / expand
            for _ in range(100):
                lhs = terms(z - g / proposal, yb, loss)[0].sum()
                if lhs > values.sum() - 0.5 / proposal * (g @ g):
                    proposal /= beta
                else:
                    break
            eta = min(max(proposal, 1e-4), 1e4)
        step_lr = 1 / eta

        def h(w: np.ndarray, z=z, g=g, Xb=Xb, step_lr=step_lr) -> tuple[float, np.ndarray]:
            t = Xb @ w
            value = np.mean(step_lr * g * t + (t - z) ** 2) + step_lr * 0.5 * l2 * (w @ w)
            grad = Xb.T @ (step_lr * g + 2 * (t - z)) / len(z) + step_lr * l2 * w
            return value, grad

        step = 10.0
        for _ in range(m):
            value, grad = h(x)
            step *= growth
            for _ in range(100):
                if h(x - step * grad)[0] <= value - c * step * (grad @ grad):
                    break
                step *= beta
                if step < 1e-6:
                    break
            x = x - step * grad
        progress = next(run)
        np.testing.assert_allclose(progress.solution.numpy(), x, rtol=1e-9, atol=1e-12)
        assert progress.metrics["lr"] == pytest.approx(step_lr)
        assert progress.metrics["loss"] == pytest.approx(values.mean())


def test_surrogate_gradient_matches_autograd(shared_cache: Path) -> None:
    problem, _ = make(shared_cache, "logistic")
    batch = torch.tensor([3, 4, 99, 200])
    x = 0.1 * torch.ones(problem.dim, dtype=torch.float64)
    z, _ = problem.target_pullback(x, batch)
    _, g = problem.target_grads(z, batch)
    h = SSO().surrogate(problem, batch, z, g, lr=0.3)
    w = (x + 0.05).clone().requires_grad_(True)
    t = (problem.X[batch] @ w).unsqueeze(1)
    reference = (0.3 * g * t + (t - z) ** 2).mean() + 0.3 * 0.5 * problem.l2 * (w @ w)
    (auto,) = torch.autograd.grad(reference, w)
    value, grad = h(x + 0.05, True)
    assert value == pytest.approx(float(reference.detach()))
    torch.testing.assert_close(grad, auto)


def test_many_inner_steps_reach_the_surrogate_minimiser(shared_cache: Path) -> None:
    """m large: x_{t+1} minimises h (checked with scipy on the same surrogate)."""
    problem, ctx = make(shared_cache, "squared")
    run = SSO(lr=0.5, m=2000, batch_size=5).run(problem, ctx)
    x0 = next(run).solution.numpy().copy()
    x1 = next(run).solution.numpy()
    generator = RunContext.create(2).algorithm_random.torch  # the run's stream, replayed
    batch = torch.randint(problem.n_samples, (5,), generator=generator).numpy()
    Xb, yb = problem.X.numpy()[batch], problem.y.numpy()[batch]
    z = Xb @ x0
    g = z - yb

    def h(w: np.ndarray) -> float:
        t = Xb @ w
        return float(np.mean(0.5 * g * t + (t - z) ** 2) + 0.5 * 0.5 * problem.l2 * (w @ w))

    best = scipy.optimize.minimize(h, x0, method="BFGS", options={"gtol": 1e-12})
    assert h(x1) == pytest.approx(best.fun, abs=1e-9)


def test_needs_target_space_and_bad_configs(tmp_path: Path) -> None:
    problem = LeastSquares()
    ctx = RunContext.create(0, max_steps=10)
    problem.setup(ctx)
    with pytest.raises(ConfigError, match="needs the target-space oracles"):
        next(SSO().run(problem, ctx))
    with pytest.raises(ConfigError, match="outer: unknown"):
        SSO(outer="wolfe")
    with pytest.raises(ConfigError, match="m: inner steps"):
        SSO(m=0)
