"""The nlp problems: every oracle against finite differences (CUTEst via S2MPJ) or autograd
(constrained logistic regression, PDE control), known optima, suites and refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from optbench.contracts.context import RunContext, default_data_dir
from optbench.contracts.errors import ConfigError, DataError
from optbench.contracts.nlp import NLPIterate
from optbench.problems.nlp import ConstrainedLogReg, CutestProblem, PDEControl, s2mpj
from optbench.problems.nlp.suites import load_suite


def context(seed: int = 0) -> RunContext:
    return RunContext.create(seed, max_steps=10)


def dense(matrix: object) -> np.ndarray:
    return matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)


def central(fn, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences of a scalar or vector function: columns are partial derivatives."""
    columns = []
    for i in range(len(x)):
        e = np.zeros_like(x)
        e[i] = h
        columns.append((np.atleast_1d(fn(x + e)) - np.atleast_1d(fn(x - e))) / (2 * h))
    return np.stack(columns, axis=-1)


# -- CUTEst via S2MPJ ---------------------------------------------------------------------------
FD_PROBLEMS = ["HS7", "BT2", "HS40", "HS56", "MWRIGHT", "ORTHREGB", "HS100LNP", "HELIXNE"]


@pytest.mark.parametrize("name", FD_PROBLEMS)
def test_cutest_oracles_match_finite_differences(name: str) -> None:
    problem = CutestProblem(name)
    problem.setup(context())
    rng = np.random.default_rng(1)
    x = problem.initial_point() + 0.1 * rng.standard_normal(problem.n)
    lam = rng.standard_normal(problem.m)
    f, grad = problem.f_grad(x)
    _, jac = problem.c_jac(x)
    scale = max(1.0, abs(f))
    assert f == pytest.approx(problem.f(x)) and np.allclose(grad, problem.grad(x))
    np.testing.assert_allclose(grad, central(problem.f, x)[0], rtol=1e-5, atol=1e-6 * scale)
    np.testing.assert_allclose(dense(jac), central(problem.c, x), rtol=1e-5, atol=1e-5)

    def grad_lag(point: np.ndarray) -> np.ndarray:
        return problem.grad(point) + dense(problem.jac(point)).T @ lam

    hessian = dense(problem.hess_lag(x, lam))
    fd_hessian = central(grad_lag, x)
    np.testing.assert_allclose(
        hessian, fd_hessian, rtol=1e-4, atol=1e-4 * max(1, np.abs(fd_hessian).max())
    )
    np.testing.assert_allclose(hessian, hessian.T, atol=1e-12)
    np.testing.assert_allclose(
        dense(problem.hess_obj(x)), central(problem.grad, x), rtol=1e-4, atol=1e-4 * scale
    )
    v = rng.standard_normal(problem.n)
    np.testing.assert_allclose(problem.hess_lag_vec(x, lam, v), hessian @ v, rtol=1e-12, atol=1e-12)


def test_oracle_calls_are_counted_per_oracle() -> None:
    problem = CutestProblem("HS7")
    problem.setup(context())
    x, lam = problem.initial_point(), problem.initial_multiplier()
    problem.f_grad(x)
    problem.c_jac(x)
    problem.f_grad(x)  # a cache hit in time, still two oracle calls
    problem.hess_lag(x, lam)
    problem.hess_lag_vec(x, lam, x)
    assert dict(problem.counters) == {
        "f": 2,
        "grad": 2,
        "c": 1,
        "jac": 1,
        "hess": 1,
        "hvp": 1,
        "evaluations": 8,
    }
    problem.evaluate(NLPIterate(x, lam))
    assert problem.counters["evaluations"] == 8  # scoring is not charged


def test_evaluate_reports_kkt_of_the_given_or_least_squares_multipliers() -> None:
    problem = CutestProblem("HS7")
    problem.setup(context())
    x_star = np.array([0.0, np.sqrt(3.0)])  # HS7's solution; lam* = sqrt(3)/6 (hand KKT)
    lam_star = np.array([np.sqrt(3.0) / 6])
    metrics = problem.evaluate(NLPIterate(x_star, lam_star))
    assert metrics["kkt"] < 1e-12 and metrics["c_norm"] < 1e-12
    assert metrics["f"] == pytest.approx(-np.sqrt(3.0))
    assert metrics["gap"] == pytest.approx(np.sqrt(3.0) - 1.73205, abs=1e-12)
    least_squares = problem.evaluate(x_star)
    assert least_squares["kkt"] < 1e-12
    off = problem.evaluate(NLPIterate(x_star, lam_star + 1))
    grad_lag = np.array([0.0, -1.0]) + np.array([0.0, 2 * np.sqrt(3.0)]) * (lam_star + 1)
    assert off["kkt"] == pytest.approx(np.linalg.norm(grad_lag))


def test_objective_free_problems_have_zero_objective_and_missing_oracle_is_named() -> None:
    problem = CutestProblem("HIMMELBA")
    problem.setup(context())
    x = problem.initial_point()
    assert problem.f(x) == 0.0 and not problem.grad(x).any() and problem.f_star == 0.0
    with pytest.raises(DataError, match=r"HIMMELBA has no 'fx' oracle") as error:
        problem._call("fx", x.reshape(-1, 1))  # S2MPJ prints an error and returns None
    assert "\n" not in str(error.value)


def test_known_optimal_values_from_lo_soltn() -> None:
    values = {}
    for name in ("HS7", "BT2", "HS6", "BT5", "MARATOS"):
        problem = CutestProblem(name)
        problem.setup(context())
        values[name] = problem.f_star
    assert values == {
        "HS7": -1.73205,
        "BT2": 0.0325682,
        "HS6": 0.0,
        "BT5": 961.71517219,
        "MARATOS": 1.0,
    }
    # a sized value belongs to its size only; an unsized one of a variable-size file is unused
    source = s2mpj.ProblemSource(
        Path("X.py"),
        (s2mpj.SizeParameter("N", 0, int, 10),),
        ((10, 1.5), (100, 2.5), (None, 9.0)),
    )
    assert s2mpj.known_optimum(source, [], 20) == 1.5
    assert s2mpj.known_optimum(source, [100], 200) == 2.5
    assert s2mpj.known_optimum(source, [50], 100) is None
    problem = CutestProblem("LUKVLE8")
    problem.setup(context())
    assert problem.n == 50 and problem.f_star is None


def test_size_parameters_and_cutest_spelling() -> None:
    problem = CutestProblem("INTEQNE", params={"N": 20})
    problem.setup(context())
    assert (problem.n, problem.m) == (22, 22)
    spelled = CutestProblem("BA-L1SP")
    spelled.setup(context())
    assert (spelled.n, spelled.m) == (57, 12)
    with pytest.raises(ConfigError, match=r"problem.params.Q: INTEQNE has no such parameter \(N\)"):
        CutestProblem("INTEQNE", params={"Q": 3}).setup(context())


@pytest.mark.parametrize(
    ("name", "backend", "needle"),
    [
        ("HS21", "s2mpj", "HS21 has 1 inequality rows and 4 variable bounds"),
        ("NOSUCHPROB", "s2mpj", "unknown CUTEst problem 'NOSUCHPROB'"),
        ("HS7X", "s2mpj", "close: HS7"),
        ("ROSENBR", "s2mpj", "ROSENBR has no constraints"),
        ("HS7", "pycutest", "pip install pycutest"),
    ],
)
def test_refusals_are_one_line(name: str, backend: str, needle: str) -> None:
    with pytest.raises(ConfigError) as error:
        CutestProblem(name, backend=backend).setup(context())
    assert needle in str(error.value) and "\n" not in str(error.value)
    assert str(error.value).startswith("problem.")


def test_device_and_dtype_are_checked() -> None:
    ctx = RunContext.create(0, dtype=torch.float32, max_steps=10)
    with pytest.raises(ConfigError, match=r"device\.dtype"):
        CutestProblem("HS7").setup(ctx)


def test_adasketch_suite_lists_47_problems_41_loadable() -> None:
    entries = load_suite("adasketch47", default_data_dir())
    assert len(entries) == 47
    missing = sorted(e.name for e in entries if not e.loadable)
    assert missing == ["BA-L1", "DENSCHNCNE", "HIMMELBE", "MOREBVNE", "SINVALNE", "TRIGON1NE"]
    for entry in entries:
        if entry.loadable:
            assert s2mpj.problem_file(entry.name).stem == entry.s2mpj
        else:
            with pytest.raises(ConfigError):
                s2mpj.problem_file(entry.name)


# -- constrained logistic regression ------------------------------------------------------------
def test_constrained_logreg_derivatives_match_autograd() -> None:
    problem = ConstrainedLogReg("sonar_scale")
    problem.setup(context(seed=3))
    assert (problem.n, problem.m) == (60, 11)
    assert problem.A.shape == (10, 60)
    rng = np.random.default_rng(2)
    w = rng.standard_normal(problem.n) * 0.3
    lam = rng.standard_normal(problem.m)
    X, y = torch.tensor(problem.X), torch.tensor(problem.y)
    A, b = torch.tensor(problem.A), torch.tensor(problem.b)

    def f(t: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.softplus(-y * (X @ t)).mean()

    def c(t: torch.Tensor) -> torch.Tensor:
        return torch.cat([A @ t - b, (t @ t - 1).reshape(1)])

    def lagrangian(t: torch.Tensor) -> torch.Tensor:
        return f(t) + torch.tensor(lam) @ c(t)

    wt = torch.tensor(w)
    grad = torch.func.grad(f)(wt).numpy()
    jac = torch.func.jacrev(c)(wt).numpy()
    hess = torch.func.hessian(lagrangian)(wt).numpy()
    assert problem.f(w) == pytest.approx(float(f(wt)), rel=1e-13)
    np.testing.assert_allclose(problem.grad(w), grad, rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(problem.c(w), c(wt).numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(problem.jac(w), jac, rtol=1e-12)
    np.testing.assert_allclose(problem.hess_lag(w, lam), hess, rtol=1e-10, atol=1e-13)
    v = rng.standard_normal(problem.n)
    np.testing.assert_allclose(problem.hess_lag_vec(w, lam, v), hess @ v, rtol=1e-10, atol=1e-12)
    assert np.array_equal(problem.initial_point(), np.ones(60))
    assert np.array_equal(problem.initial_multiplier(), np.ones(11))


def test_constrained_logreg_instance_comes_from_the_seed() -> None:
    one, two, other = (ConstrainedLogReg("sonar_scale") for _ in range(3))
    one.setup(context(seed=5))
    two.setup(context(seed=5))
    other.setup(context(seed=6))
    assert np.array_equal(one.A, two.A) and np.array_equal(one.b, two.b)
    assert not np.array_equal(one.A, other.A)


# -- PDE control --------------------------------------------------------------------------------
def test_pde_control_matches_autograd_and_its_qp_optimum() -> None:
    N = 5
    problem = PDEControl(N=N)
    problem.setup(context())
    assert (problem.n, problem.m) == (50, 25)
    # the Laplacian against a plain loop over the grid (zero Dirichlet boundary)
    h = 2 / (N + 1)
    rng = np.random.default_rng(0)
    w = rng.standard_normal(N * N)
    grid = np.pad(w.reshape(N, N), 1)
    stencil = (
        grid[2:, 1:-1] + grid[:-2, 1:-1] + grid[1:-1, 2:] + grid[1:-1, :-2] - 4 * grid[1:-1, 1:-1]
    ) / h**2
    np.testing.assert_allclose(problem.lap @ w, stencil.ravel(), rtol=1e-12)
    i = np.arange(1, N + 1)[:, None]
    j = np.arange(1, N + 1)[None, :]
    s = 0.1 / np.sqrt(15)
    w_true = np.sin(4 + s * (i - (N + 1) / 2)) + np.cos(3 + s * (j - (N + 1) / 2))
    np.testing.assert_allclose(problem.w_true, w_true.ravel())

    x = rng.standard_normal(problem.n)
    lam = rng.standard_normal(problem.m)
    lap = torch.tensor(problem.lap.toarray())
    target = torch.tensor(problem.w_true)

    def f(t: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((t[: N * N] - target) ** 2).sum() + 0.05 * (t[N * N :] ** 2).sum()

    def c(t: torch.Tensor) -> torch.Tensor:
        return lap @ t[: N * N] + t[N * N :]

    xt = torch.tensor(x)
    np.testing.assert_allclose(problem.f(x), float(f(xt)), rtol=1e-13)
    np.testing.assert_allclose(problem.grad(x), torch.func.grad(f)(xt).numpy(), rtol=1e-12)
    np.testing.assert_allclose(problem.c(x), c(xt).numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dense(problem.jac(x)), torch.func.jacrev(c)(xt).numpy())
    hess = torch.func.hessian(lambda t: f(t) + torch.tensor(lam) @ c(t))(xt).numpy()
    np.testing.assert_allclose(dense(problem.hess_lag(x, lam)), hess, atol=1e-12)

    # f* against an independent solve: eliminate z = -L w, minimise over w by normal equations
    L = problem.lap.toarray()
    w_opt = np.linalg.solve(np.eye(N * N) + 0.1 * L.T @ L, problem.w_true)
    f_opt = 0.5 * np.sum((w_opt - problem.w_true) ** 2) + 0.05 * np.sum((L @ w_opt) ** 2)
    assert problem.f_star == pytest.approx(f_opt, rel=1e-10)
