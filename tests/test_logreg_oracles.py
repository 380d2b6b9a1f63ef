"""The optional oracles of the LIBSVM problem (per-sample gradients, target space, curvature
matrices) and its squared loss, against autograd, explicit per-sample loops, the log-sum-exp
definition of the weighted Gauss-Newton matrix and an independent least-squares solve."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch

from optbench.contracts.context import RunContext
from optbench.contracts.errors import ConfigError
from optbench.contracts.finite_sum import Curvature, PerSampleGradients, TargetSpace
from optbench.platform.cache import DiskCache
from optbench.problems.logreg import LogisticRegression


def make(cache: Path, **kwargs: object) -> LogisticRegression:
    problem = LogisticRegression(**kwargs)  # type: ignore[arg-type]
    problem.setup(RunContext.create(0, max_steps=10, cache=DiskCache(cache)))
    return problem


@pytest.fixture(scope="module", params=["logistic", "squared"])
def heart(request: pytest.FixtureRequest, shared_cache: Path) -> LogisticRegression:
    return make(shared_cache, dataset="heart_scale", l2=1e-3, loss=request.param)


def terms(problem: LogisticRegression, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if problem.loss_kind == "squared":
        return 0.5 * (z - y) ** 2
    return torch.log1p(torch.exp(-y * z))


def objective(problem: LogisticRegression, w: torch.Tensor, batch: torch.Tensor | None = None):
    X, y = (problem.X, problem.y) if batch is None else (problem.X[batch], problem.y[batch])
    return terms(problem, X @ w, y).mean() + 0.5 * problem.l2 * (w @ w)


def point(problem: LogisticRegression, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 0.3 * torch.randn(problem.dim, generator=g, dtype=torch.float64)


def test_gradient_hvp_and_hessian_match_autograd(heart: LogisticRegression) -> None:
    w, v = point(heart, 1), point(heart, 2)
    batch = torch.tensor([0, 3, 3, 100, 250])
    for b in (None, batch):
        wr = w.clone().requires_grad_(True)
        value = objective(heart, wr, b)
        (auto,) = torch.autograd.grad(value, wr)
        loss, grad = heart.loss_grad(w, b)
        assert loss == pytest.approx(float(value.detach()), rel=1e-12)
        torch.testing.assert_close(grad, auto)
        H = torch.autograd.functional.hessian(lambda x, b=b: objective(heart, x, b), w)
        torch.testing.assert_close(heart.hessian(w, b), H)
        torch.testing.assert_close(heart.curvature(w, "gauss_newton", b), H)
        torch.testing.assert_close(heart.hvp(w, v, b), H @ v)


def test_per_sample_gradients_and_fisher(heart: LogisticRegression) -> None:
    assert isinstance(heart, PerSampleGradients) and isinstance(heart, Curvature)
    w = point(heart, 3)
    batch = torch.tensor([5, 6, 7, 7, 200])
    G = heart.per_sample_grads(w, batch)
    for row, i in zip(G, batch, strict=True):
        torch.testing.assert_close(row, heart.loss_grad(w, i.reshape(1))[1])
    data = G - heart.l2 * w
    fisher = data.T @ data / len(batch) + heart.l2 * torch.eye(heart.dim)
    torch.testing.assert_close(heart.curvature(w, "fisher", batch), fisher)


def test_weighted_gauss_newton_is_the_log_sum_exp_approximation(shared_cache: Path) -> None:
    problem = make(shared_cache, dataset="heart_scale", l2=1e-3)
    w = point(problem, 4)
    # log(1 + e^{-m}) = logsumexp(a_0, a_1) with a_0 = 0, a_1 = -y x^T w: keep
    # sum_c pi_c grad a_c grad a_c^T, drop the -(sum_c pi_c grad a_c)(...)^T term
    total = torch.zeros(problem.dim, problem.dim, dtype=torch.float64)
    for x, y in zip(problem.X, problem.y, strict=True):
        pi = torch.softmax(torch.stack([torch.zeros(()), -y * (x @ w)]), dim=0)
        total += pi[1] * torch.outer(-y * x, -y * x)
    expected = total / problem.n_samples + problem.l2 * torch.eye(problem.dim)
    approx = problem.curvature(w, "weighted_gauss_newton")
    torch.testing.assert_close(approx, expected)
    assert torch.linalg.eigvalsh(approx - problem.hessian(w)).min() > -1e-12
    squared = make(shared_cache, dataset="heart_scale", l2=1e-3, loss="squared")
    with pytest.raises(ConfigError, match="'weighted_gauss_newton' is not offered"):
        squared.curvature(w, "weighted_gauss_newton")


def test_target_space(heart: LogisticRegression) -> None:
    assert isinstance(heart, TargetSpace)
    w = point(heart, 5)
    batch = torch.tensor([1, 50, 51])
    z, pullback = heart.target_pullback(w, batch)
    torch.testing.assert_close(z.reshape(-1), heart.X[batch] @ w)
    v = torch.tensor([[0.5], [-1.0], [2.0]], dtype=torch.float64)
    torch.testing.assert_close(pullback(v), heart.X[batch].T @ v.reshape(-1))
    loss, g = heart.target_grads(z, batch)
    zr = z.clone().requires_grad_(True)
    (auto,) = torch.autograd.grad(terms(heart, zr.reshape(-1), heart.y[batch]).sum(), zr)
    torch.testing.assert_close(g, auto)
    assert loss == pytest.approx(heart.target_loss(z, batch))
    total = pullback(g) / len(batch) + heart.regularizer(w)[1]
    torch.testing.assert_close(total, heart.loss_grad(w, batch)[1])


def test_squared_loss_reference_matches_independent_solve(shared_cache: Path) -> None:
    problem = make(shared_cache, dataset="heart_scale", l2=1e-3, loss="squared")
    X, y, n, l2 = problem.X.numpy(), problem.y.numpy(), problem.n_samples, problem.l2
    # ridge as an ordinary least-squares problem on [X / sqrt(n); sqrt(l2) I] w = [y / sqrt(n); 0]
    A = np.vstack([X / np.sqrt(n), np.sqrt(l2) * np.eye(X.shape[1])])
    b = np.concatenate([y / np.sqrt(n), np.zeros(X.shape[1])])
    w = scipy.linalg.lstsq(A, b)[0]
    assert problem.f_star == pytest.approx(problem.loss(torch.as_tensor(w)), abs=1e-12)
    assert problem.evaluate(problem.initial_point())["gap"] == pytest.approx(0.5 - problem.f_star)
    with pytest.raises(ConfigError, match="loss: unknown 'hinge'"):
        LogisticRegression(loss="hinge")
