"""The nlp methods: the sketching solver against a direct solve and against its plain loop,
the merit gradient against finite differences, convergence to the CUTEst problems' known
optima, the baselines on HS7's analytic solution, reproducibility and configuration errors."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pytest
import scipy.sparse as sp

from optbench.algorithms.constrained import (
    AdaSketchNewton,
    AugmentedLagrangian,
    ScipySLSQP,
    ScipyTrustConstr,
    SqpL1Gmres,
    SqpL1GmresAdaptive,
    SqpNewton,
)
from optbench.algorithms.constrained.adasketch import merit, merit_gradient
from optbench.algorithms.constrained.common import evaluate_point
from optbench.algorithms.constrained.linalg import (
    DENSE_LIMIT,
    kkt_matrix,
    modify_hessian,
    positive_definite,
    shift_to_positive_definite,
)
from optbench.algorithms.constrained.sketching import SketchSolver
from optbench.contracts.algorithm import Algorithm
from optbench.contracts.context import RunContext
from optbench.contracts.errors import ConfigError
from optbench.contracts.nlp import NLPProblem
from optbench.problems.nlp import CutestProblem, PDEControl


def context(seed: int = 0) -> RunContext:
    return RunContext.create(seed, max_steps=10)


def solve(
    algorithm: Algorithm, problem: NLPProblem, max_steps: int = 500, seed: int = 0
) -> tuple[dict[str, float], int, list]:
    """Drive a method like the runner does; (final metrics, steps, progress list)."""
    ctx = context(seed)
    problem.setup(ctx)
    steps = algorithm.run(problem, ctx)
    history = [next(steps)]
    for _ in range(max_steps):
        try:
            history.append(next(steps))
        except StopIteration:
            break
        if history[-1].converged:
            break
    steps.close()
    return problem.evaluate(history[-1].solution), len(history) - 1, history


def random_kkt(rng: np.random.Generator, n: int = 8, m: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """A well-conditioned KKT matrix [[B, J^T], [J, 0]] (B SPD) and a right-hand side."""
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    B = q @ np.diag(rng.uniform(1.0, 3.0, n)) @ q.T
    J = rng.standard_normal((m, n))
    return kkt_matrix(B, J), rng.standard_normal(n + m)


# -- the sketching solver -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sketch", "sampling", "block_size"),
    [
        ("gaussian", "norm", 1),
        ("kaczmarz", "norm", 1),
        ("kaczmarz", "uniform", 1),
        ("gaussian", "norm", 3),
        ("kaczmarz", "norm", 3),
    ],
)
def test_sketch_solver_converges_to_the_direct_solution(
    sketch: str, sampling: str, block_size: int
) -> None:
    rng = np.random.default_rng(4)
    K, b = random_kkt(rng)
    exact = np.linalg.solve(K, b)
    solver = SketchSolver(np.random.default_rng(0), sketch, sampling, block_size)
    result = solver.solve(K, b, np.zeros(len(b)), 1e-10 * np.linalg.norm(b), 1_000_000)
    assert np.linalg.norm(K @ result.z - b) <= 1e-10 * np.linalg.norm(b)
    np.testing.assert_allclose(result.z, exact, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(result.residual, K @ result.z - b, atol=1e-14)
    assert 0 < result.iterations < 1_000_000


@pytest.mark.parametrize("sketch", ["gaussian", "kaczmarz"])
def test_batched_steps_are_the_plain_loop_steps(sketch: str) -> None:
    """Same random stream, same iterates: the batched recursion is the sequential method."""
    K, b = random_kkt(np.random.default_rng(7), n=5, m=2)
    z0 = np.zeros(len(b))
    for iterations in (1, 7, 300):
        batched = SketchSolver(np.random.default_rng(3), sketch).solve(K, b, z0, 0.0, iterations)
        plain = SketchSolver(np.random.default_rng(3), sketch, batched=False).solve(
            K, b, z0, 0.0, iterations
        )
        assert batched.iterations == plain.iterations == iterations
        np.testing.assert_allclose(batched.z, plain.z, rtol=1e-9, atol=1e-12)
    # and both stop at the first step meeting the target
    target = 1e-3 * np.linalg.norm(b)
    runs = [
        SketchSolver(np.random.default_rng(5), sketch, batched=flag).solve(K, b, z0, target, 10**5)
        for flag in (True, False)
    ]
    assert runs[0].iterations == runs[1].iterations


def test_sketch_solver_stops_at_its_budget_and_continues_from_z() -> None:
    K, b = random_kkt(np.random.default_rng(1))
    solver = SketchSolver(np.random.default_rng(0))
    partial = solver.solve(K, b, np.zeros(len(b)), 0.0, 50)
    assert partial.iterations == 50
    resumed = solver.solve(K, b, partial.z, 1e-8, 10**6)
    assert np.linalg.norm(K @ resumed.z - b) <= 1e-8


# -- pieces of AdaSketch ------------------------------------------------------------------------
def test_merit_gradient_is_the_exact_gradient_of_the_augmented_lagrangian() -> None:
    problem = CutestProblem("BT2")
    problem.setup(context())
    rng = np.random.default_rng(0)
    x = problem.initial_point() * 0.3 + rng.standard_normal(problem.n) * 0.1
    lam = rng.standard_normal(problem.m)
    eta1, eta2 = 1.7, 0.3
    point = evaluate_point(problem, x, lam)
    gradient = merit_gradient(point, problem.hess_lag(x, lam), eta1, eta2)
    h = 1e-6
    numeric = []
    for i in range(problem.n + problem.m):
        e = np.zeros(problem.n + problem.m)
        e[i] = h

        def value(shift: np.ndarray) -> float:
            return merit(
                evaluate_point(problem, x + shift[: problem.n], lam + shift[problem.n :]),
                eta1,
                eta2,
            )

        numeric.append((value(e) - value(-e)) / (2 * h))
    np.testing.assert_allclose(gradient, numeric, rtol=1e-5)
    # the authors' variant (Hessian of f instead of the Lagrangian's) is not the gradient here
    authors = merit_gradient(point, problem.hess_obj(x), eta1, eta2)
    assert not np.allclose(authors, numeric, rtol=1e-3)


def test_hessian_is_shifted_only_when_the_reduced_hessian_is_indefinite() -> None:
    H = np.diag([1.0, -1.0, 2.0])
    J = np.array([[0.0, 1.0, 0.0]])  # null space e1, e3: reduced Hessian diag(1, 2): PD
    B, shift, reduced = modify_hessian(H, J, xi=0.1)
    assert shift == 0.0 and reduced == pytest.approx(1.0) and B is H
    J = np.array([[1.0, 0.0, 0.0]])  # null space e2, e3: reduced Hessian diag(-1, 2)
    B, shift, reduced = modify_hessian(H, J, xi=0.1)
    assert reduced == pytest.approx(-1.0)
    assert shift == pytest.approx(0.1 + np.sqrt(6.0))  # xi + ||H||_F
    np.testing.assert_allclose(B, H + shift * np.eye(3))


@pytest.mark.parametrize("n", [50, DENSE_LIMIT + 200], ids=["dense", "sparse"])
def test_definiteness_tests_match_the_analytic_spectrum(n: int) -> None:
    """tridiag(-1, d, -1) has eigenvalues d - 2 cos(k pi / (n + 1)), k = 1..n."""

    def tridiagonal(d: float) -> object:
        matrix = sp.diags([-1.0, d, -1.0], [-1, 0, 1], shape=(n, n), format="csr")
        return matrix if n > DENSE_LIMIT else matrix.toarray()

    smallest = 2.0 - 2.0 * np.cos(np.pi / (n + 1))
    assert positive_definite(tridiagonal(2.0), shift=0.5 * smallest)
    assert not positive_definite(tridiagonal(2.0), shift=1.5 * smallest)
    # d = 1.5: lambda_min ~ -0.5; the shifts tried are 0, 0.1, 0.2, 0.4, 0.8
    _, tau = shift_to_positive_definite(tridiagonal(1.5), xi=0.1, floor=1e-6)
    assert tau == pytest.approx(0.8)
    _, tau = shift_to_positive_definite(tridiagonal(2.5), xi=0.1, floor=1e-6)
    assert tau == 0.0


# -- convergence to known optima ----------------------------------------------------------------
KNOWN = ["HS6", "HS7", "HS28", "BT2"]


@pytest.mark.parametrize(
    "make",
    [
        lambda: SqpNewton(tol=1e-6),
        lambda: AdaSketchNewton(sketch="gaussian", tol=1e-6),
        lambda: AdaSketchNewton(sketch="kaczmarz", tol=1e-6),
    ],
    ids=["sqp_newton", "adasketch_gv", "adasketch_rk"],
)
@pytest.mark.parametrize("name", KNOWN)
def test_newton_methods_reach_the_known_optimum(name: str, make: Callable[[], Algorithm]) -> None:
    problem = CutestProblem(name)
    metrics, steps, history = solve(make(), problem)
    assert history[-1].converged and metrics["kkt"] <= 1e-6, (steps, metrics)
    assert problem.f_star is not None
    assert abs(metrics["f"] - problem.f_star) <= 1e-5 * max(1.0, abs(problem.f_star))


@pytest.mark.parametrize(
    "make",
    [
        lambda: SqpL1Gmres(tol=1e-6),
        lambda: SqpL1GmresAdaptive(tol=1e-6),
        lambda: AugmentedLagrangian(tol=1e-6),
        lambda: AugmentedLagrangian(tol=1e-6, modification="authors"),
        lambda: ScipyTrustConstr(tol=1e-6),
        lambda: ScipySLSQP(tol=1e-6),
    ],
    ids=["sqp_l1_gmres", "adaptive", "auglag", "auglag_authors", "trust_constr", "slsqp"],
)
def test_baselines_find_hs7_analytic_solution(make: Callable[[], Algorithm]) -> None:
    """HS7: min log(1 + x1^2) - x2 s.t. (1 + x1^2)^2 + x2^2 = 4; x* = (0, sqrt 3)."""
    problem = CutestProblem("HS7")
    metrics, _, history = solve(make(), problem, max_steps=60)
    x = history[-1].solution.x
    np.testing.assert_allclose(x, [0.0, np.sqrt(3.0)], atol=1e-5)
    assert metrics["f"] == pytest.approx(-np.sqrt(3.0), abs=1e-6)
    assert metrics["kkt"] <= 1e-5


def test_trust_constr_multipliers_follow_the_lagrangian_sign_convention() -> None:
    problem = CutestProblem("BT2")
    _, _, history = solve(ScipyTrustConstr(tol=1e-8), problem, max_steps=200)
    for progress in history[1:]:
        scored = problem.evaluate(progress.solution)["kkt"]
        assert progress.metrics["kkt"] == pytest.approx(scored, rel=1e-6, abs=1e-12)


def test_closing_a_scipy_run_stops_its_worker_thread() -> None:
    problem = CutestProblem("BT2")
    ctx = context()
    problem.setup(ctx)
    steps = ScipySLSQP().run(problem, ctx)
    for _ in range(3):
        next(steps)
    assert any(t.name == "optbench-scipy" for t in threading.enumerate())
    steps.close()
    assert not any(t.name == "optbench-scipy" for t in threading.enumerate())


def test_pde_control_newton_step_is_exact_and_adasketch_reaches_the_qp_optimum() -> None:
    problem = PDEControl(N=6)
    metrics, steps, _ = solve(SqpNewton(tol=1e-8), problem)
    assert steps == 1 and metrics["gap"] <= 1e-10 * problem.f_star  # a QP: one Newton step
    problem = PDEControl(N=2)  # vector sketches need ~||K||_F^2 / sigma_min^2 steps: keep N small
    metrics, _, _ = solve(AdaSketchNewton(tol=1e-6), problem)
    assert metrics["kkt"] <= 1e-6 and metrics["gap"] <= 1e-6 * problem.f_star


def test_adasketch_is_reproducible_from_the_seed() -> None:
    runs = [solve(AdaSketchNewton(), CutestProblem("HS7"), seed=seed)[2] for seed in (3, 3, 4)]
    same = [p.metrics.get("inner_iterations") for p in runs[0]]
    assert same == [p.metrics.get("inner_iterations") for p in runs[1]]
    np.testing.assert_array_equal(runs[0][-1].solution.x, runs[1][-1].solution.x)
    assert same != [p.metrics.get("inner_iterations") for p in runs[2]]


def test_singular_jacobian_ends_the_run_with_its_reason() -> None:
    problem = CutestProblem("HS7")
    ctx = context()
    problem.setup(ctx)
    steps = AdaSketchNewton(singular_tol=1e6).run(problem, ctx)
    next(steps)
    with pytest.raises(StopIteration) as stop:
        next(steps)
    assert str(stop.value.value).startswith("singular Jacobian: lambda_min(J J^T)")


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda: AdaSketchNewton(beta=0.7), "beta: must be in (0, 0.5)"),
        (lambda: AdaSketchNewton(nu=1.0), "nu: must be > 1"),
        (lambda: AdaSketchNewton(eta2=0.0), "eta2: must be > 0"),
        (lambda: SqpL1Gmres(gmres_chunk=0), "gmres_chunk: must be >= 1"),
        (lambda: AugmentedLagrangian(mu_factor=0.5), "mu_factor: must be >= 1"),
        (lambda: SqpNewton(tau=1.5), "tau: must be in (0, 1)"),
    ],
)
def test_bad_hyperparameters_name_the_key(make: Callable[[], Algorithm], needle: str) -> None:
    with pytest.raises(ConfigError) as error:
        make()
    assert str(error.value).startswith(needle)
