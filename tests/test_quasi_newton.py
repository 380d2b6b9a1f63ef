"""L-BFGS on logistic regression: torch's (``lbfgs``) and SciPy's L-BFGS-B (``scipy_lbfgs``)
against the reference optimum (SciPy's exact trust-region Newton, ``logreg.reference``) and
against SciPy's own L-BFGS-B loop; the line-search stall of issue 13 as a regression test."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import minimize

from optbench.algorithms.quasi_newton import LBFGS, ScipyLBFGS
from optbench.contracts.context import RunContext
from optbench.platform.cache import DiskCache
from optbench.problems.logreg import LogisticRegression
from optbench.problems.logreg.reference import logistic_objective

pytestmark = pytest.mark.usefixtures("one_thread")


def make(cache: Path, **kwargs: object) -> LogisticRegression:
    problem = LogisticRegression(test=None, **kwargs)  # type: ignore[arg-type]
    problem.setup(RunContext.create(0, max_steps=10, cache=DiskCache(cache)))
    return problem


def drive(algorithm: LBFGS | ScipyLBFGS, problem: LogisticRegression, max_steps: int) -> tuple:
    """(steps, final iterate, converged, the iterates) of at most ``max_steps`` steps."""
    ctx = RunContext.create(0, max_steps=max_steps)
    steps = algorithm.run(problem, ctx)
    iterates = [next(steps).solution.clone()]
    converged = False
    for _ in range(max_steps):
        progress = next(steps)
        iterates.append(progress.solution.clone())
        if progress.converged:
            converged = True
            break
    steps.close()
    return len(iterates) - 1, iterates[-1], converged, iterates


CASES = [
    ("heart_scale", {"l2": 0.0, "bias": False}),  # the command
    ("heart_scale", {}),
    ("australian_scale", {}),
    ("breast-cancer_scale", {}),
    ("ionosphere_scale", {}),
]


@pytest.mark.parametrize(("dataset", "options"), CASES)
@pytest.mark.parametrize("algorithm", [LBFGS, ScipyLBFGS])
def test_lbfgs_reaches_the_reference_optimum(
    shared_cache: Path, dataset: str, options: dict, algorithm: type
) -> None:
    problem = make(shared_cache, dataset=dataset, **options)
    steps, w, converged, _ = drive(algorithm(), problem, 400)
    metrics = problem.evaluate(w)
    assert converged and metrics["grad_norm"] <= 1e-8
    assert abs(metrics["gap"]) <= 1e-9 * problem.f_star
    if algorithm is LBFGS:
        assert steps < 200


def test_torch_lbfgs_iterate_moves_until_convergence(shared_cache: Path) -> None:
    """Issue 13: with ``max_iter=1`` torch's default ``max_eval`` (1) left no evaluation for the
    line search; a rejected trial step froze the iterate (australian_scale: from step 17 at
    grad_norm 6.5e-3) and the run went on to max_steps."""
    problem = make(shared_cache, dataset="australian_scale")
    _, _, converged, iterates = drive(LBFGS(), problem, 200)
    assert converged
    # the converged step yields its start point again: the last pair is excluded
    moves = [float((b - a).abs().max()) for a, b in itertools.pairwise(iterates[1:-1])]
    assert min(moves) > 0


def test_torch_lbfgs_short_memory_stalls_on_sonar_as_documented(shared_cache: Path) -> None:
    """Torch keeps a curvature pair only if y^T s > 1e-10 (absolute): with 10 pairs the memory
    goes stale near the optimum of sonar_scale; with torch's default 100 it converges."""
    problem = make(shared_cache, dataset="sonar_scale")
    _, w_short, converged_short, _ = drive(LBFGS(history_size=10), problem, 300)
    _, w_long, converged_long, _ = drive(LBFGS(history_size=100), problem, 300)
    assert not converged_short and problem.evaluate(w_short)["grad_norm"] > 1e-7
    assert converged_long and problem.evaluate(w_long)["grad_norm"] <= 1e-8


def test_torch_lbfgs_counts_each_oracle_call_once(shared_cache: Path) -> None:
    """The value torch's line search computed at the accepted point is reused at the next
    step's start: the reported evaluations add up to the problem's own count, about one per
    step."""
    problem = make(shared_cache, dataset="breast-cancer_scale")
    ctx = RunContext.create(0, max_steps=50)
    steps = LBFGS().run(problem, ctx)
    next(steps)
    reported = [next(steps).metrics["evaluations"] for _ in range(20)]
    assert sum(reported) == problem.counters["grad"]
    assert sum(reported) < 1.5 * len(reported)


def test_scipy_lbfgs_follows_scipys_own_iterates(shared_cache: Path) -> None:
    """Driven one step at a time, the wrapper's iterates are those of one call of
    ``scipy.optimize.minimize(method="L-BFGS-B")`` with the same options."""
    problem = make(shared_cache, dataset="ionosphere_scale")
    _, _, _, iterates = drive(ScipyLBFGS(tolerance_grad=0.0), problem, 25)
    X, y = problem.X.numpy(), problem.y.numpy()
    direct: list[np.ndarray] = []
    minimize(
        logistic_objective,
        np.zeros(X.shape[1]),
        args=(X, y, problem.l2),
        jac=True,
        method="L-BFGS-B",
        callback=lambda intermediate_result: direct.append(intermediate_result.x.copy()),
        options={"maxcor": 10, "maxls": 20, "ftol": 0.0, "gtol": 0.0, "maxiter": 25},
    )
    ours = np.stack([w.numpy() for w in iterates[1:]])
    np.testing.assert_allclose(ours, np.stack(direct), rtol=1e-9, atol=1e-12)
