"""SOR-sequence family: kernels vs plain reference implementations, Young's omega* vs brute
force, the heat equation's Crank-Nicolson step vs a dense solve, the hindsight baselines vs
an independent recomputation, the bandit learners on bandits with a known best arm."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import brentq

from optbench.algorithms.relaxation import ChebCB, TsallisINF, TsallisINFState
from optbench.algorithms.relaxation_oracles import BestFixedOracle, InstanceOptimalOracle
from optbench.contracts.context import RunContext
from optbench.contracts.errors import ConfigError
from optbench.contracts.parameter_sequence import ParameterSequenceProblem
from optbench.contracts.problem import Problem
from optbench.platform.build import build
from optbench.platform.cache import DiskCache
from optbench.problems.sor_sequence.grids import HeatGrid, laplacian_5pt
from optbench.problems.sor_sequence.heat_equation import HeatEquation
from optbench.problems.sor_sequence.kernels import SplitCSR, library, pcg_solve, sor_solve
from optbench.problems.sor_sequence.reference import plain_pcg, plain_sor, ssor_operator
from optbench.problems.sor_sequence.shifted_laplacian import ShiftedLaplacian, young_omega
from tests.conftest import compose, main_in_process


def context(cache: Path, steps: int, seed: int = 0) -> RunContext:
    return RunContext.create(seed, max_steps=steps, cache=DiskCache(cache))


def loop_laplacian(m: int) -> np.ndarray:
    """The 5-point Laplacian built entry by entry (independent of the kron construction)."""
    A = np.zeros((m * m, m * m))
    for i in range(m):
        for j in range(m):
            k = i * m + j
            A[k, k] = 4.0
            for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                if 0 <= i + di < m and 0 <= j + dj < m:
                    A[k, (i + di) * m + j + dj] = -1.0
    return A


def test_kernels_are_compiled() -> None:
    assert library() is not None  # gcc is part of this machine kind; the fallback is slow


def test_sor_iteration_counts_equal_the_plain_definition() -> None:
    rng = np.random.default_rng(3)
    assert np.array_equal(laplacian_5pt(6).toarray(), loop_laplacian(6))
    matrices = [laplacian_5pt(10) + c * sp.eye(100) for c in (-0.15, 0.0, 0.45)]
    # a non-symmetric, diagonally dominant sparse matrix with a random pattern
    R = sp.random(80, 80, density=0.08, random_state=4, format="csr")
    R.data -= 0.5
    matrices.append(R + sp.diags(np.abs(R).sum(axis=1).A1 + 0.3))
    compared = 0
    for i, A in enumerate(matrices):
        split = SplitCSR.from_matrix(A)
        omegas = (1.0, 1.3, 1.6, 1.8, 1.95) if i < 3 else (0.7, 0.9, 1.0, 1.1, 1.2)
        for omega in omegas:
            b = rng.standard_normal(A.shape[0])
            x0 = rng.standard_normal(A.shape[0]) * 0.1
            x_fast, x_plain = x0.copy(), x0.copy()
            k_fast, res_fast = sor_solve(split, b, x_fast, omega, 1e-8, 10000)
            k_plain, res_plain = plain_sor(A, b, x_plain, omega, 1e-8, 10000)
            assert k_fast == k_plain, (omega, k_fast, k_plain)
            assert res_fast < 1e-8 and res_plain < 1e-8
            np.testing.assert_allclose(x_fast, x_plain, rtol=1e-9, atol=1e-9)
            compared += 1
    assert compared == 20
    # the cap: too few iterations allowed -> cost = cap, residual above tol
    split = SplitCSR.from_matrix(matrices[0])
    k, res = sor_solve(split, np.ones(100), np.zeros(100), 1.0, 1e-8, 50)
    assert k == 50 and res > 1e-8


@pytest.mark.parametrize("order", ["backward_forward", "forward_backward"])
def test_pcg_iteration_counts_equal_scipy_cg(order: str) -> None:
    grid = HeatGrid(12)
    rng = np.random.default_rng(5)
    for s in (1e-4, 3e-3, 5e-2):
        A = sp.eye(grid.n) - s * grid.L
        split = SplitCSR.from_matrix(A)
        b = rng.standard_normal(grid.n)
        x0 = 0.1 * rng.standard_normal(grid.n)
        for omega in (None, 1.0, 1.5, 1.9):
            x_fast, x_ref = x0.copy(), x0.copy()
            k_fast, _ = pcg_solve(split, b, x_fast, omega, 1e-8, 10000, order)
            k_ref, _ = plain_pcg(A, b, x_ref, omega, 1e-8, 10000, order)
            assert k_fast == k_ref, (s, omega, k_fast, k_ref)
            np.testing.assert_allclose(A @ x_fast, b, atol=1e-8 * np.linalg.norm(b) * 1.01)


def test_ssor_backward_forward_is_matlab_pcg_with_the_authors_factors() -> None:
    """ssor_pcg.m calls pcg(A, b, tol, maxit, M1, M2, x) with X = D + omega L,
    M1 = X' D^{-1}, M2 = X / (omega (2 - omega)); MATLAB's preconditioner is M = M1 M2."""
    A = (sp.eye(49) - 2e-3 * HeatGrid(8).L).toarray()
    r = np.random.default_rng(0).standard_normal(49)
    omega = 1.4
    D = np.diag(np.diag(A))
    X = D + omega * np.tril(A, -1)
    M = (X.T @ np.linalg.inv(D)) @ (X / omega / (2 - omega))
    authors = np.linalg.solve(M, r)
    np.testing.assert_allclose(ssor_operator(A, omega, "backward_forward") @ r, authors)
    mirrored = ssor_operator(A, omega, "forward_backward") @ r
    Y = D + omega * np.triu(A, 1)
    np.testing.assert_allclose(
        mirrored, np.linalg.solve(Y.T @ np.linalg.inv(D) @ Y, r) * omega * (2 - omega)
    )
    assert np.abs(mirrored - authors).max() > 1e-3  # the two orders are different operators


def test_young_omega_minimises_sor_spectral_radius_and_iterations(tmp_path: Path) -> None:
    problem = ShiftedLaplacian(n_instances=1, grid_size=8)
    problem.setup(context(tmp_path, 1))
    A0 = laplacian_5pt(8).toarray()
    grid = np.arange(1.0, 1.99, 0.01)
    for shift in (-0.1, 0.1, 0.4):
        A = A0 + shift * np.eye(64)
        D, L = np.diag(np.diag(A)), np.tril(A, -1)
        beta = max(abs(np.linalg.eigvals(np.eye(64) - np.linalg.solve(D, A))))
        assert problem.jacobi_radius(shift) == pytest.approx(beta, rel=1e-10)
        star = young_omega(beta)
        radii = [
            max(abs(np.linalg.eigvals(np.eye(64) - np.linalg.solve(D / w + L, A)))) for w in grid
        ]
        assert abs(grid[int(np.argmin(radii))] - star) <= 0.01
        split = SplitCSR.from_matrix(A)  # the kernel's counts equal plain SOR's (tested above)
        counts = [sor_solve(split, np.ones(64), np.zeros(64), w, 1e-8, 10000)[0] for w in grid]
        brute = grid[int(np.argmin(counts))]
        at_star = sor_solve(split, np.ones(64), np.zeros(64), star, 1e-8, 10000)[0]
        assert abs(brute - star) <= 0.03  # the count's minimiser, within 3 grid spacings
        assert at_star <= 1.1 * min(counts)


def test_tsallis_inf_concentrates_on_the_best_arm() -> None:
    rng = np.random.default_rng(0)
    means = np.array([120.0, 100.0, 60.0, 110.0, 150.0])  # arm 2 is best by a clear gap
    learner = TsallisINFState(len(means))
    plays = []
    for _ in range(1500):
        p = learner.probabilities()
        assert p.sum() == pytest.approx(1.0, abs=1e-12) and (p > 0).all()
        arm = learner.draw(rng)
        plays.append(arm)
        learner.update(max(1.0, rng.normal(means[arm], 20.0)))
    assert learner.probabilities()[2] > 0.9
    assert np.mean(np.array(plays[-300:]) == 2) > 0.85


def test_tsallis_inf_steps_match_a_hand_computation() -> None:
    """Round 1: uniform. After arm 0 costs 11 at p = 1/2: Lhat = (20, 0), s = 11 - 1 = 10, so
    the scaled losses are (2, 0); at t = 2, eta = sqrt 2 and p_i = 2 / (L_i - x)^2 with x < 0
    the root of 2 / (2 - x)^2 + 2 / x^2 = 1 (found here by bisection)."""
    for normalizer in ("exact", "authors"):
        state = TsallisINFState(2, normalizer)
        np.testing.assert_allclose(state.probabilities(), [0.5, 0.5], atol=1e-12)
        state.arm, state.prob = 0, 0.5
        state.update(11.0)
        x = brentq(lambda x: 2 / (2 - x) ** 2 + 2 / x**2 - 1, -10.0, -1e-9)
        expected = np.array([2 / (2 - x) ** 2, 2 / x**2])
        # the authors' 20 Newton steps converge here (from the right of the root)
        np.testing.assert_allclose(state.probabilities(), expected, rtol=1e-10)
        assert state.cumulative[0] == 20.0 and state.t == 2


def test_authors_normalizer_diverges_into_explore_then_commit() -> None:
    """20 arms, cost 100 + 5 |arm - 10| + U{0..9}: after ~100 rounds the authors' 20 Newton
    steps from x = -1 overshoot the pole and the weights stop summing to 1 (by many orders of
    magnitude), and the learner then plays one arm with probability ~1; the exact normaliser
    keeps a distribution on the same sequence of rounds."""
    summary = {}
    for normalizer in ("exact", "authors"):
        rng = np.random.default_rng(0)
        state = TsallisINFState(20, normalizer)
        masses, certain = [], []
        for _ in range(1000):
            arm = state.draw(rng)
            masses.append(state.mass)
            certain.append(state.probabilities().max() > 0.999)
            state.update(100 + 5 * abs(arm - 10) + int(rng.integers(0, 10)))
        off = np.flatnonzero(np.abs(np.array(masses) - 1) > 1e-6)
        summary[normalizer] = (off, np.median(masses[300:]), np.mean(certain[300:]))
    off, mass, certain = summary["authors"]
    assert 50 < off[0] < 300 and mass > 1e6 and certain > 0.5
    off, mass, certain = summary["exact"]
    assert len(off) == 0 and certain == 0.0


class FixedChoice:
    """An rng stand-in for ChebCB: plays the given arms in order, records the probabilities."""

    def __init__(self, arms: list[int]) -> None:
        self.arms, self.seen = list(arms), []

    def choice(self, d: int, p: np.ndarray) -> int:
        self.seen.append(np.array(p))
        return self.arms.pop(0)


class Interval:
    """The part of a parameter_sequence problem ChebCB's ``start`` reads."""

    def __init__(self, n: int, low: float = 0.0, high: float = 1.0) -> None:
        self.n_instances, self.context_range = n, (low, high)


def test_chebcb_steps_match_a_hand_computation() -> None:
    """Two arms, degree 1 (m = 2 features), contexts in [0, 1], T = 3, the authors' estimates
    (the minimum of the zero-preallocated cost array is 0, so Lip = K, N = 2 + 4 (1 + log 2))."""
    learner = ChebCB(degree=1, omega_min=1.2, omega_max=1.8, n_omegas=2)
    learner.start(Interval(3), None)  # type: ignore[arg-type]
    learner.rng = FixedChoice([1, 1])
    N = 2 + 4 * (1 + math.log(2))
    c_alpha = (math.pi + 2 / math.pi * math.log(5)) / (2 * 3)  # / (2 (m + 1)), m = 2
    # round 1: context 0.75 -> z = 0.5; no fit yet: p = (1/2, 1/2)
    assert learner.choose(0, 0.75) == 1.8
    np.testing.assert_allclose(learner.rng.seen[0], [0.5, 0.5])
    learner.observe(11)
    S = 11 * N
    theta = np.array([1.0, 0.5]) * (10 / S) / 1.25  # min-norm fit of one row
    np.testing.assert_allclose(learner.theta, [[0, 0], theta], rtol=1e-12)
    alpha = c_alpha / S * 11
    eta = 2 * math.sqrt(2 / ((11 / S) ** 2 + 2 * alpha**2))
    assert learner.eta == pytest.approx(eta, rel=1e-12)
    # round 2: context 0.25 -> z = -0.5; yhat = (0, theta . (1, -0.5)); arm 0 is the best
    yhat = theta @ [1.0, -0.5]
    learner.choose(1, 0.25)
    p1 = 1 / (2 + eta * yhat)
    np.testing.assert_allclose(learner.rng.seen[1], [1 - p1, p1], rtol=1e-12)
    learner.observe(21)  # K = 21: S changes, both rows of arm 1 refitted (exactly)
    S = 21 * N
    np.testing.assert_allclose(learner.theta[1], [15 / S, -10 / S], rtol=1e-10)
    alpha = c_alpha / S * 21
    residual = (11 / S) ** 2 + (yhat - 21 / S) ** 2  # against c / S (the authors' R)
    eta = 2 * 2 * math.sqrt(2 * 2 / (residual + 2 * alpha**2 * 2))
    assert learner.eta == pytest.approx(eta, rel=1e-10)


def test_chebcb_bounded_fit_and_resnorm_match_a_hand_computation() -> None:
    """Observed estimates. Arm 0 sees (z = 0.1, c = 21) then (z = -0.1, c = 11): K = 21,
    Lip = 10, S = 21 N, N = 2 + 4 (10 / 21)(1 + log 2). The exact fit's slope 50 / S leaves the
    box |theta_1| <= 2 Lip / S = 20 / S, so the bounded fit is theta = (15 / S, 20 / S) with
    squared residual resnorm = 18 / S^2, subtracted in eta's denominator."""
    learner = ChebCB(degree=1, omega_min=1.2, omega_max=1.8, n_omegas=2, estimates="observed")
    learner.start(Interval(2), None)  # type: ignore[arg-type]
    learner.rng = FixedChoice([0, 0])
    learner.choose(0, 0.55)
    learner.observe(21)  # one cost: Lip = 0, N = 2, a constant fit 20 / 42
    np.testing.assert_allclose(learner.theta[0], [20 / 42, 0], atol=1e-9)
    learner.choose(1, 0.45)
    predicted = learner.predicted[1]
    assert predicted == pytest.approx(20 / 42, abs=1e-9)
    learner.observe(11)
    N = 2 + 4 * (10 / 21) * (1 + math.log(2))
    S = 21 * N
    np.testing.assert_allclose(learner.theta[0], [15 / S, 20 / S], rtol=1e-6)
    alpha = (math.pi + 2 / math.pi * math.log(5)) / (2 * S * 3) * 10
    residual = (0 - 20 / S) ** 2 + (predicted - 10 / S) ** 2  # against (c - 1) / S
    eta = 2 * 2 * math.sqrt(2 * 2 / (residual - 18 / S**2 + 2 * alpha**2 * 2))
    assert learner.eta == pytest.approx(eta, rel=1e-6)


class ContextualBandit(ParameterSequenceProblem):
    """A synthetic parameter_sequence problem: omega 1.2 costs less for contexts below 0.5,
    omega 1.8 above; noisy costs. For testing the contextual learners."""

    parameter_range = (0.0, 2.0)
    context_range = (0.0, 1.0)

    def setup(self, ctx: RunContext) -> None:
        self.n_instances = ctx.max_steps
        rng = ctx.problem_random.numpy
        self.contexts = rng.uniform(0, 1, ctx.max_steps)
        self.noise = rng.normal(0, 5, ctx.max_steps)
        self.played: list[float] = []

    def context(self, t: int) -> float:
        return float(self.contexts[t])

    def expected(self, t: int, omega: float) -> float:
        c = self.contexts[t]
        return 100 + 60 * abs(omega - (1.2 if c < 0.5 else 1.8))

    def solve(self, t: int, parameter: float) -> int:
        self.played.append(parameter)
        return max(1, round(self.expected(t, parameter) + self.noise[t]))

    oracle_grid = np.array([1.2, 1.8])

    def cost_table(self) -> np.ndarray:
        raise NotImplementedError

    def instance_optimal_parameters(self) -> np.ndarray:
        raise NotImplementedError

    def evaluate(self, solution: object) -> dict[str, float]:
        return {}


def test_chebcb_learns_a_context_dependent_best_arm(tmp_path: Path) -> None:
    problem = ContextualBandit()
    ctx = context(tmp_path, 1500)
    problem.setup(ctx)
    learner = ChebCB(degree=5, omega_min=1.2, omega_max=1.8, n_omegas=2)
    for _ in learner.run(problem, ctx):
        pass
    tail = range(1200, 1500)
    right = [problem.played[t] == (1.2 if problem.contexts[t] < 0.5 else 1.8) for t in tail]
    assert np.mean(right) > 0.85
    # a context-blind bandit cannot do better than about half right
    blind = ContextualBandit()
    blind.setup(context(tmp_path, 1500))
    for _ in TsallisINF(omega_min=1.2, omega_max=1.8, n_omegas=2).run(blind, ctx):
        pass
    blind_right = [blind.played[t] == (1.2 if blind.contexts[t] < 0.5 else 1.8) for t in tail]
    assert np.mean(blind_right) < 0.7


def test_heat_system_is_spd_and_crank_nicolson_matches_a_dense_solve() -> None:
    nx, dt = 9, 0.001
    grid = HeatGrid(nx)
    L = -loop_laplacian(nx - 1) * nx**2
    assert np.allclose(grid.L.toarray(), L)
    u = grid.initial()
    for k in (100, 700, 760):  # small and large diffusion coefficients
        t = k * dt
        kappa = max(0.1 * np.sin(2 * np.pi * (t + dt / 2)), -10 * np.sin(2 * np.pi * (t + dt / 2)))
        A = np.eye(grid.n) - 0.5 * kappa * dt * L
        assert np.allclose(A, A.T) and np.linalg.eigvalsh(A).min() > 0
        s, b = grid.system_parts(t, dt, u)
        assert s == pytest.approx(0.5 * kappa * dt, rel=1e-14)
        xc = 0.5 + np.cos(16 * np.pi * (t + dt / 2)) / 4
        yc = 0.5 + np.sin(16 * np.pi * (t + dt / 2)) / 4
        q = np.minimum(1, ((grid.points - [xc, yc]) ** 2).sum(axis=1) / 0.125**2)
        with np.errstate(divide="ignore"):
            f = 32 * np.exp(1 - 1 / (1 - q))
        np.testing.assert_allclose(b, (np.eye(grid.n) + 0.5 * kappa * dt * L) @ u + dt * f)
        exact = np.linalg.solve(A, b)
        np.testing.assert_allclose(grid.solve_shifted(s, b), exact, rtol=1e-11, atol=1e-13)
        u = exact


def test_hindsight_baselines_match_an_independent_recomputation(tmp_path: Path) -> None:
    kwargs = dict(n_instances=8, omega_min=1.4, omega_max=1.9, n_omegas=4)
    problem = ShiftedLaplacian(**kwargs)
    problem.setup(context(tmp_path, 8, seed=2))
    table = problem.cost_table()
    for t in range(8):
        inst = problem.instance(t)
        A = laplacian_5pt(10) + inst.shift * sp.eye(100)
        for j, omega in enumerate(problem.oracle_grid):
            assert table[t, j] == plain_sor(A, inst.b, np.zeros(100), omega, 1e-8, 10000)[0]
        assert np.linalg.norm(inst.b) <= 10.0
    assert (problem.context_range[0] <= problem.shifts).all()
    # oracles played through the problem reproduce the baselines exactly
    for oracle, key in (
        (BestFixedOracle(), "ratio_to_best_fixed"),
        (InstanceOptimalOracle(), "ratio_to_instance_optimal"),
    ):
        played = ShiftedLaplacian(**kwargs)
        ctx = context(tmp_path, 8, seed=2)
        played.setup(ctx)
        assert played._key() == problem._key()  # the same cached table
        for _ in oracle.run(played, ctx):
            pass
        metrics = played.evaluate()
        assert metrics[key] == 1.0 and played.counters["instances"] == 8
    assert metrics["cumulative_iterations"] == metrics["instance_optimal_iterations"]
    assert metrics["instance_optimal_iterations"] < metrics["best_fixed_iterations"]
    other = ShiftedLaplacian(**kwargs)
    other.setup(context(tmp_path, 8, seed=3))
    assert other._key() != problem._key()


def test_heat_equation_sequence_costs_and_golden_section(tmp_path: Path) -> None:
    problem = HeatEquation(n_instances=40, nx=10, n_omegas=5, golden_steps=6)
    ctx = context(tmp_path, 40)
    problem.setup(ctx)
    table = problem._load_table()
    assert table["costs"].shape == (40, 5)
    assert (table["optimal_cost"] <= table["costs"].min(axis=1)).all()
    for _ in BestFixedOracle().run(problem, ctx):
        pass
    metrics = problem.evaluate()
    assert metrics["ratio_to_best_fixed"] == 1.0
    assert metrics["cg_iterations"] == table["cg_cost"].sum()
    assert 0 < metrics["iterations_vs_cg"] < 1  # SSOR preconditioning pays in iterations
    # the trajectory is the exact Crank-Nicolson one, whatever omega was played
    again = HeatEquation(n_instances=40, nx=10, n_omegas=5, golden_steps=6)
    again.setup(context(tmp_path, 40))
    for t in range(40):
        again.solve(t, 1.0 + 0.02 * t)
    np.testing.assert_allclose(again._u, problem._u, rtol=1e-14)


def test_replay_reads_exactly_the_counts_a_solve_gives(tmp_path: Path) -> None:
    """The same learner and seed, solving every instance or replaying grid omegas from the
    cost table: the same omegas played and the same counts (the solvers are deterministic)."""
    cases = [
        (lambda **kw: ShiftedLaplacian(n_instances=30, n_omegas=8, **kw), TsallisINF, 30),
        (
            lambda **kw: HeatEquation(n_instances=20, nx=8, n_omegas=5, golden_steps=3, **kw),
            ChebCB,
            20,
        ),
    ]
    for make, learner, steps in cases:
        runs = []
        for replay in (False, True):
            problem = make(replay=replay)
            ctx = context(tmp_path, steps, seed=4)
            problem.setup(ctx)
            arms = {"omega_max": 1.95, "n_omegas": len(problem.oracle_grid)}
            for _ in learner(**arms).run(problem, ctx):
                pass
            runs.append((problem.costs, problem.parameters, problem.counters["replayed"]))
        assert runs[0][:2] == runs[1][:2] and runs[0][2] == 0 and runs[1][2] == steps
    # a parameter off the grid (the instance-optimal oracle's) is still solved
    problem = ShiftedLaplacian(n_instances=30, n_omegas=8, replay=True)
    ctx = context(tmp_path, 30, seed=4)
    problem.setup(ctx)
    for _ in InstanceOptimalOracle().run(problem, ctx):
        pass
    assert problem.counters["replayed"] == 0
    assert problem.costs == list(problem._load_table()["optimal_cost"])


def test_context_intervals_and_heat_contexts_are_the_authors(tmp_path: Path) -> None:
    def kappa_at(t: np.ndarray) -> np.ndarray:
        return np.maximum(0.1 * np.sin(2 * np.pi * t), -10 * np.sin(2 * np.pi * t))

    heat = HeatEquation(n_instances=300, nx=6)
    heat.setup(context(tmp_path, 300))
    t = np.arange(300) * 0.001
    np.testing.assert_array_equal([heat.context(k) for k in range(300)], kappa_at(t))
    authors = kappa_at(np.linspace(0, 0.3, 300))  # h2d.m: coefficient(linspace(0, stoptime, T))
    assert heat.context_range == (authors.min(), authors.max())
    midpoint = HeatEquation(n_instances=300, nx=6, context_time="midpoint")
    midpoint.setup(context(tmp_path, 300))
    np.testing.assert_allclose([midpoint.context(k) for k in range(300)], kappa_at(t + 0.0005))
    assert ShiftedLaplacian().context_range == (-0.15, 0.65)  # contextual.m
    assert ShiftedLaplacian(context_max=None).context_range == pytest.approx((-0.15, 0.45))
    with pytest.raises(ConfigError, match="context_max"):
        ShiftedLaplacian(context_max=0.3)


def test_same_seed_same_costs(tmp_path: Path) -> None:
    totals = []
    for _ in range(2):
        problem = ShiftedLaplacian(n_instances=60)
        ctx = context(tmp_path, 60, seed=7)
        problem.setup(ctx)
        for _ in TsallisINF().run(problem, ctx):
            pass
        totals.append((problem.costs, problem.parameters))
    assert totals[0] == totals[1]


def test_bad_values_name_their_key(tmp_path: Path) -> None:
    cases = [
        (["problem=shifted_laplacian", "problem.shift_min=-0.2"], "problem.shift_min"),
        (["problem=shifted_laplacian", "problem.variance=medium"], "problem.variance"),
        (["problem=heat_equation", "problem.nx=2"], "problem.nx"),
        (["problem=heat_equation", "problem.omega_max=2.5"], "problem.omega_min"),
        (["problem=heat_equation", "problem.ssor_order=sideways"], "problem.ssor_order"),
        (["problem=heat_equation", "problem.context_time=end"], "problem.context_time"),
        (["problem=shifted_laplacian", "problem.context_max=0.2"], "problem.context_max"),
    ]
    for overrides, key in cases:
        with pytest.raises(ConfigError, match=key):
            build(compose(overrides).problem, Problem, "problem")
    from optbench.contracts.algorithm import Algorithm

    for name, override, key in (
        ("fixed_omega", "algorithm.omega=2.0", "algorithm.omega"),
        ("tsallis_inf_cb", "algorithm.n_bins=0", "algorithm.n_bins"),
        ("tsallis_inf", "algorithm.normalizer=newton", "algorithm.normalizer"),
        ("chebcb", "algorithm.estimates=guess", "algorithm.estimates"),
    ):
        with pytest.raises(ConfigError, match=key):
            build(compose([f"algorithm={name}", override]).algorithm, Algorithm, "algorithm")


def test_experiment_presets_compose() -> None:
    for name in (
        "learning_to_relax",
        "learning_to_relax_paper",
        "learning_to_relax_heat",
        "learning_to_relax_heat_paper",
    ):
        cfg = compose([f"experiment={name}"], hydra=True)
        assert cfg.experiment_name == name
        assert "oracle_best_fixed" in cfg.hydra.sweeper.params.algorithm
    paper = compose(["experiment=learning_to_relax_paper"], hydra=True)
    assert paper.budget.max_steps == 5000 and paper.hydra.sweeper.params.seed == "range(40)"


def test_cli_run_reports_the_sequence_metrics(
    cli_env: dict[str, str], capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    done = main_in_process(
        capfd,
        monkeypatch,
        "problem=shifted_laplacian",
        "algorithm=chebcb",
        "budget.max_steps=40",
        "eval_every=20",
        "tracking=none",
        env=cli_env,
    )
    assert done.returncode == 0, done.stderr
    assert "ratio_to_instance_optimal" in done.stdout + done.stderr
    bad = main_in_process(
        capfd,
        monkeypatch,
        "problem=shifted_laplacian",
        "problem.grid_size=30",
        "tracking=none",
        env=cli_env,
    )
    assert bad.returncode == 2 and "problem.shift_min" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
