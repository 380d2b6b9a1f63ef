"""The MLP classifier problem: oracles against autograd on an independent nn.Module forward and
against finite differences; the closed forms of softmax regression against autograd; f* against
scikit-learn's LogisticRegression; counters; bad configs."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from optbench.contracts.context import RunContext
from optbench.contracts.errors import ConfigError
from optbench.contracts.finite_sum import Curvature, PerSampleGradients, TargetSpace
from optbench.platform.cache import DiskCache
from optbench.problems.mlp import MLPClassifier

pytestmark = pytest.mark.usefixtures("one_thread")


def make(cache: Path, **kwargs: object) -> MLPClassifier:
    problem = MLPClassifier(**kwargs)  # type: ignore[arg-type]
    problem.setup(RunContext.create(3, max_steps=10, cache=DiskCache(cache)))
    return problem


@pytest.fixture(scope="module")
def net(shared_cache: Path) -> MLPClassifier:
    return make(shared_cache, dataset="iris", hidden=[5], l2=1e-3)


@pytest.fixture(scope="module")
def softmax_iris(shared_cache: Path) -> MLPClassifier:
    return make(shared_cache, dataset="iris", hidden=[], l2=1e-3)


def module_loss(problem: MLPClassifier, x: torch.Tensor, batch: torch.Tensor | None = None):
    """The objective through torch.nn.Linear layers loaded from x (an independent forward)."""
    X, y = (problem.X, problem.y) if batch is None else (problem.X[batch], problem.y[batch])
    h, start = X, 0
    sizes = problem.net.sizes
    for i, (inp, out) in enumerate(itertools.pairwise(sizes)):
        W = x[start : start + out * (inp + 1)].view(out, inp + 1)
        start += out * (inp + 1)
        h = F.linear(h, W[:, :inp], W[:, inp])
        if i < len(sizes) - 2:
            h = torch.tanh(h)
    return F.cross_entropy(h, y) + 0.5 * problem.l2 * (x @ x)


def point(problem: MLPClassifier, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 0.5 * torch.randn(problem.dim, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("which", ["net", "softmax_iris"])
def test_gradient_matches_autograd_and_finite_differences(which: str, request) -> None:
    problem: MLPClassifier = request.getfixturevalue(which)
    x = point(problem, 1)
    batch = torch.tensor([0, 5, 7, 30, 30, 99])
    for b in (None, batch):
        loss, grad = problem.loss_grad(x, b)
        xr = x.clone().requires_grad_(True)
        reference = module_loss(problem, xr, b)
        (auto,) = torch.autograd.grad(reference, xr)
        assert loss == pytest.approx(float(reference.detach()), rel=1e-12)
        torch.testing.assert_close(grad, auto, rtol=1e-10, atol=1e-12)
    v = point(problem, 2)
    eps = 1e-6
    fd = (problem.loss(x + eps * v) - problem.loss(x - eps * v)) / (2 * eps)
    assert float(problem.loss_grad(x)[1] @ v) == pytest.approx(fd, rel=1e-6)


@pytest.mark.parametrize("which", ["net", "softmax_iris"])
def test_hessian_vector_product_and_hessian(which: str, request) -> None:
    problem: MLPClassifier = request.getfixturevalue(which)
    x, v = point(problem, 3), point(problem, 4)
    batch = torch.tensor([1, 2, 3, 50, 100])
    for b in (None, batch):
        H = torch.autograd.functional.hessian(lambda w, b=b: module_loss(problem, w, b), x)
        torch.testing.assert_close(problem.hvp(x, v, b), H @ v, rtol=1e-9, atol=1e-11)
        torch.testing.assert_close(problem.curvature(x, "hessian", b), H, rtol=1e-9, atol=1e-11)
    # finite differences of the gradient along v
    eps = 1e-6
    fd = (problem.loss_grad(x + eps * v)[1] - problem.loss_grad(x - eps * v)[1]) / (2 * eps)
    torch.testing.assert_close(problem.hvp(x, v), fd, rtol=1e-5, atol=1e-7)


def test_per_sample_gradients_and_fisher(net: MLPClassifier, softmax_iris: MLPClassifier) -> None:
    assert isinstance(net, PerSampleGradients)
    batch = torch.tensor([4, 9, 9, 100])
    for problem in (net, softmax_iris):
        x = point(problem, 5)
        G = problem.per_sample_grads(x, batch)
        for row, i in zip(G, batch, strict=True):
            _, g_i = problem.loss_grad(x, i.reshape(1))
            torch.testing.assert_close(row, g_i, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(G.mean(0), problem.loss_grad(x, batch)[1])
        # empirical Fisher: (1/n) sum_i grad l_i grad l_i^T + l2 I from single-sample gradients
        data = G - problem.l2 * x
        expected = data.T @ data / len(batch) + problem.l2 * torch.eye(problem.dim)
        torch.testing.assert_close(problem.curvature(x, "fisher", batch), expected)


def test_softmax_curvature_approximations(softmax_iris: MLPClassifier) -> None:
    problem = softmax_iris
    assert isinstance(problem, Curvature)
    x = point(problem, 6)
    H = problem.curvature(x, "hessian")
    torch.testing.assert_close(problem.curvature(x, "gauss_newton"), H)
    wgn = problem.curvature(x, "weighted_gauss_newton")
    # the definition, sample by sample: diag(p_i) kron a_i a_i^T (+ l2 I)
    P = torch.softmax(problem.X1 @ x.view(problem.n_classes, -1).T, dim=1)
    expected = sum(
        torch.kron(torch.diag(p), torch.outer(a, a)) for p, a in zip(P, problem.X1, strict=True)
    )
    expected = expected / problem.n_samples + problem.l2 * torch.eye(problem.dim)
    torch.testing.assert_close(wgn, expected)
    # it bounds the Hessian from above (drops the -p p^T term): W - H is positive semidefinite
    assert torch.linalg.eigvalsh(wgn - H).min() > -1e-12
    with pytest.raises(ConfigError, match="'diagonal' is not offered"):
        problem.curvature(x, "diagonal")


def test_target_space_oracles(net: MLPClassifier) -> None:
    assert isinstance(net, TargetSpace)
    x = point(net, 7)
    batch = torch.tensor([3, 11, 60])
    z, pullback = net.target_pullback(x, batch)
    xr = x.clone().requires_grad_(True)
    logits = net.net.forward(xr, net.X[batch])
    torch.testing.assert_close(z, logits.detach())
    v = torch.randn(z.shape, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    (expected,) = torch.autograd.grad((logits * v).sum(), xr)
    torch.testing.assert_close(pullback(v), expected)
    loss, g = net.target_grads(z, batch)
    zr = z.clone().requires_grad_(True)
    reference = F.cross_entropy(zr, net.y[batch], reduction="sum")  # per-sample gradients
    (auto,) = torch.autograd.grad(reference, zr)
    torch.testing.assert_close(g, auto)
    assert loss == pytest.approx(float(F.cross_entropy(z, net.y[batch])))
    assert net.target_loss(z, batch) == pytest.approx(loss)
    # composition: mean-loss gradient = J^T g / |B| + grad r
    total = pullback(g) / len(batch) + net.regularizer(x)[1]
    torch.testing.assert_close(total, net.loss_grad(x, batch)[1])


def test_counters(net: MLPClassifier) -> None:
    net.counters.clear()
    x = net.initial_point()
    net.loss_grad(x)
    net.loss_grad(x, torch.arange(7))
    net.per_sample_grads(x, torch.arange(5))
    z, pullback = net.target_pullback(x, torch.arange(4))
    net.target_grads(z, torch.arange(4))
    pullback(z)
    net.evaluate(x)  # never charged
    assert net.counters["grad"] == 3
    assert net.counters["samples"] == net.n_samples + 7 + 5 + 4
    assert (net.counters["forward"], net.counters["vjp"], net.counters["target_grad"]) == (1, 1, 1)


def test_reference_optimum_matches_scikit_learn(softmax_iris: MLPClassifier) -> None:
    from sklearn.linear_model import LogisticRegression

    problem = softmax_iris
    n = problem.n_samples
    # sklearn: C sum_i CE + ||W||^2/2 on the weights (intercept unpenalised): fold the bias in
    # as a feature so both penalise it, with C = 1 / (n l2)
    clf = LogisticRegression(
        C=1.0 / (n * problem.l2), fit_intercept=False, tol=1e-12, max_iter=10_000
    )
    clf.fit(problem.X1.numpy(), problem.y.numpy())
    w = torch.as_tensor(clf.coef_).reshape(-1)
    assert problem.f_star is not None
    assert problem.f_star == pytest.approx(problem.loss(w), abs=1e-8)
    assert problem.f_star <= problem.loss(w) + 1e-14
    assert problem.evaluate(problem.initial_point())["gap"] == pytest.approx(
        np.log(problem.n_classes) - problem.f_star
    )


def test_same_seed_same_initial_point_and_bad_config(shared_cache: Path) -> None:
    a = make(shared_cache, dataset="iris", hidden=[4])
    b = make(shared_cache, dataset="iris", hidden=[4])
    torch.testing.assert_close(a.initial_point(), b.initial_point())
    assert a.initial_point().abs().max() <= 4**-0.5  # U(-1/sqrt(in), 1/sqrt(in)), in <= 4
    with pytest.raises(ConfigError, match="unknown dataset 'mnist'"):
        make(shared_cache, dataset="mnist")
    with pytest.raises(ConfigError, match="activation"):
        MLPClassifier(activation="gelu")
    with pytest.raises(ConfigError, match="hidden"):
        MLPClassifier(hidden=[0])
