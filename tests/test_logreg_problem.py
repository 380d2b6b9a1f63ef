"""Logistic regression: oracles against autograd and finite differences, f* against an
independent solver, the loader against the published sizes and malformed files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from optbench.contracts.context import RunContext, default_data_dir
from optbench.contracts.errors import ConfigError, DataError
from optbench.platform.cache import DiskCache
from optbench.problems.logreg import LogisticRegression, datasets
from optbench.problems.logreg.reference import logistic_objective


def make(cache: Path, **kwargs: object) -> LogisticRegression:
    problem = LogisticRegression(**kwargs)  # type: ignore[arg-type]
    problem.setup(RunContext.create(0, max_steps=10, cache=DiskCache(cache)))
    return problem


@pytest.fixture(scope="module")
def sonar(shared_cache: Path) -> LogisticRegression:
    return make(shared_cache, dataset="sonar_scale", l2=1e-3)


def autograd_loss(
    problem: LogisticRegression, w: torch.Tensor, batch: torch.Tensor | None = None
) -> torch.Tensor:
    X, y = (problem.X, problem.y) if batch is None else (problem.X[batch], problem.y[batch])
    return torch.log1p(torch.exp(-y * (X @ w))).mean() + 0.5 * problem.l2 * (w @ w)


def test_gradient_matches_autograd_and_finite_differences(sonar: LogisticRegression) -> None:
    g = torch.Generator().manual_seed(1)
    w = 0.3 * torch.randn(sonar.dim, generator=g, dtype=torch.float64)
    batch = torch.randint(sonar.n_samples, (17,), generator=g)
    for b in (None, batch):
        loss, grad = sonar.loss_grad(w, b)
        wr = w.clone().requires_grad_(True)
        reference = autograd_loss(sonar, wr, b)
        (auto,) = torch.autograd.grad(reference, wr)
        assert loss == pytest.approx(float(reference.detach()), rel=1e-12)
        torch.testing.assert_close(grad, auto, rtol=1e-10, atol=1e-12)
    # central differences along random directions
    for _ in range(3):
        v = torch.randn(sonar.dim, generator=g, dtype=torch.float64)
        eps = 1e-6
        fd = (sonar.loss(w + eps * v) - sonar.loss(w - eps * v)) / (2 * eps)
        assert float(sonar.loss_grad(w)[1] @ v) == pytest.approx(fd, rel=1e-6, abs=1e-9)


def test_hessian_vector_product_matches_autograd(sonar: LogisticRegression) -> None:
    g = torch.Generator().manual_seed(2)
    w = 0.3 * torch.randn(sonar.dim, generator=g, dtype=torch.float64)
    v = torch.randn(sonar.dim, generator=g, dtype=torch.float64)
    batch = torch.randint(sonar.n_samples, (23,), generator=g)
    for b in (None, batch):
        _, hvp_auto = torch.autograd.functional.hvp(lambda x, b=b: autograd_loss(sonar, x, b), w, v)
        torch.testing.assert_close(sonar.hvp(w, v, b), hvp_auto, rtol=1e-10, atol=1e-12)
    H = torch.autograd.functional.hessian(lambda x: autograd_loss(sonar, x), w)
    torch.testing.assert_close(sonar.hessian(w), H, rtol=1e-10, atol=1e-12)


def test_oracles_are_counted(shared_cache: Path) -> None:
    problem = make(shared_cache, dataset="heart_scale")
    w = problem.initial_point()
    problem.loss_grad(w)
    problem.loss_grad(w, torch.arange(10))
    problem.hvp(w, w)
    problem.evaluate(w)  # evaluation is never charged
    assert problem.counters["grad"] == 2
    assert problem.counters["hvp"] == 1
    assert problem.counters["samples"] == 2 * problem.n_samples + 10


def test_reference_optimum_matches_independent_solver(shared_cache: Path) -> None:
    problem = make(shared_cache, dataset="heart_scale", l2=1e-4)
    X = problem.X.numpy()
    y = problem.y.numpy()
    result = minimize(
        logistic_objective,
        np.zeros(X.shape[1]),
        args=(X, y, 1e-4),
        jac=True,
        method="L-BFGS-B",
        options={"gtol": 1e-12, "ftol": 1e-16, "maxiter": 10_000, "maxcor": 30},
    )
    assert np.linalg.norm(result.jac) < 1e-7
    assert problem.f_star is not None
    assert problem.f_star == pytest.approx(result.fun, abs=1e-10)
    assert problem.f_star <= result.fun + 1e-14  # ours is at least as accurate
    assert problem.describe()["f_star_grad_norm"] <= 1e-10
    assert problem.evaluate(problem.initial_point())["gap"] == pytest.approx(
        np.log(2) - problem.f_star
    )


@pytest.mark.parametrize(
    ("name", "samples", "features"),
    [
        ("heart_scale", 270, 13),
        ("a9a", 32561, 123),
        ("breast-cancer_scale", 683, 10),
        ("mushrooms", 8124, 112),
        ("w8a", 49749, 300),
    ],
)
def test_vendored_sets_have_published_sizes(name: str, samples: int, features: int) -> None:
    path, entry = datasets.resolve(name, default_data_dir())
    data, _ = datasets.load(path, entry.n_features if entry else None)
    assert data.X.shape == (samples, features)
    assert set(np.unique(data.y)) == {-1.0, 1.0}


def test_labels_mapped_smaller_to_minus_one() -> None:
    path, entry = datasets.resolve("breast-cancer_scale", default_data_dir())
    data, classes = datasets.load(path, entry.n_features)
    assert classes == (2.0, 4.0)
    assert (data.y == -1).sum() == 444  # label 2 (benign): 444 rows per SOURCES.md


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ("+1 1:0.5 2:1\n-1 1:0.2 0:1\n", "line 2: feature index 0"),
        ("+1 1:0.5\nabc 1:1\n", "line 2: label 'abc'"),
        ("+1 1:0.5\n-1 1:x\n+1 2:1\n", "line 2: value 'x'"),
        ("+1 1:0.5 nonsense\n", "line 1: token 'nonsense'"),
        ("+1 2:0.5 1:0.3\n", "line 1: feature indices not increasing"),
        ("-1 1:0.5\n+1 a:1\n", "line 2: feature index 'a'"),
    ],
)
def test_malformed_file_names_file_and_line(tmp_path: Path, content: str, where: str) -> None:
    bad = tmp_path / "bad.svm"
    bad.write_text(content)
    datasets._parse.cache_clear()
    with pytest.raises(DataError) as info:
        datasets.load(bad, None)
    assert str(bad) in str(info.value) and where in str(info.value)
    assert "\n" not in str(info.value)


def test_label_problems(tmp_path: Path) -> None:
    three = tmp_path / "three.svm"
    three.write_text("1 1:1\n2 1:2\n3 1:3\n")
    with pytest.raises(DataError, match="needs 2 labels"):
        datasets.load(three, None)
    with pytest.raises(DataError, match="not among the training labels"):
        datasets.load(three, None, classes=(1.0, 2.0))


def test_unknown_dataset_and_missing_file() -> None:
    with pytest.raises(ConfigError, match="unknown dataset 'nope'"):
        datasets.resolve("nope", default_data_dir())
    with pytest.raises(DataError, match="no such file"):
        datasets.resolve("/no/such/file.svm", default_data_dir())
