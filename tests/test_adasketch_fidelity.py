"""AdaSketch-Newton against the authors' committed results (github.com/IlgeeHong/AdaSketch-Newton
@ d7e0c22): Newton iteration counts to ||(grad_x L, c)|| <= 1e-4 stored in
``CUTEst/Solution/AdaSketchNewtonGV1.mat``, ``CUTEst/Solution/AdaSketchNewtonRK1.mat`` and
``PDE/Solution/AdaSketchNewtonRK1.mat`` (one run per problem, iterations = len(KKTStep) - 1), and
the per-test-set settings of their code."""

from __future__ import annotations

import pytest

from optbench.algorithms.constrained import AdaSketchNewton
from optbench.algorithms.constrained.adasketch import AUTHORS_SETTINGS
from optbench.contracts.context import RunContext
from optbench.contracts.nlp import NLPProblem
from optbench.problems.nlp import ConstrainedLogReg, CutestProblem, PDEControl

#: The authors' Gaussian-vector counts on the problems whose count does not depend on the
#: sketches' random draws (their 10-run file CUTEst/Solution/AdaSketNewtonGV1.mat gives the same
#: count in all 10 runs) and that run in well under a second here. Equal to ours on 39 of the 41
#: problems S2MPJ translates (all but MANCINONE, which S2MPJ loads at n = 10 where the authors
#: ran n = 100: 4 iterations there too, with ``sizes: {MANCINONE: {N: 100}}``; and the randomly
#: varying BT9, HS47, BT2). GOTTFR and PRICE4NE end singular, as in the authors' file (NaN).
AUTHORS_GV = {
    "HS6": 9,
    "BT5": 5,
    "HS28": 1,
    "BT10": 7,
    "HIMMELBA": 1,
    "HS40": 3,
    "BT3": 1,
    "HS7": 10,
    "GENHS28": 1,
    "HS51": 1,
    "BOOTH": 1,
    "WAYSEA1NE": 7,
    "HS48": 1,
    "RSNBRNE": 11,
    "CUBENE": 4,
    "ZANGWIL3": 1,
    "HS78": 4,
    "HS56": 5,
    "HELIXNE": 8,
    "HS42": 4,
    "HS79": 4,
    "WAYSEA2NE": 10,
    "DENSCHNFNE": 4,
    "HIMMELBC": 5,
    "INTEQNE": 2,
}

#: Randomized Kaczmarz, on problems where uniform rows (the authors') and norm-proportional rows
#: give different counts (norm: HS52 5, CUBENE 5, HS7 9, BT6 9).
AUTHORS_RK = {"HS52": 1, "CUBENE": 4, "HS7": 10, "BT6": 8}


def newton_iterations(algorithm: AdaSketchNewton, problem: NLPProblem, seed: int = 0) -> str:
    """Iterations to convergence as a string, or the reason the run stopped."""
    ctx = RunContext.create(seed, max_steps=100)
    problem.setup(ctx)
    steps = algorithm.run(problem, ctx)
    next(steps)
    for iteration in range(1, 101):
        try:
            progress = next(steps)
        except StopIteration as stop:
            return str(stop.value)
        if progress.converged:
            return str(iteration)
    return "not converged in 100 iterations"


@pytest.mark.parametrize(("name", "count"), AUTHORS_GV.items())
def test_gaussian_sketch_iterations_equal_the_authors(name: str, count: int) -> None:
    assert newton_iterations(AdaSketchNewton(sketch="gaussian"), CutestProblem(name)) == str(count)


@pytest.mark.parametrize("name", ["GOTTFR", "PRICE4NE"])
def test_problems_the_authors_report_as_failed_end_singular(name: str) -> None:
    reason = newton_iterations(AdaSketchNewton(sketch="gaussian"), CutestProblem(name))
    assert reason.startswith("singular Jacobian")


@pytest.mark.parametrize(("name", "count"), AUTHORS_RK.items())
def test_kaczmarz_iterations_with_uniform_rows_equal_the_authors(name: str, count: int) -> None:
    algorithm = AdaSketchNewton(sketch="kaczmarz")
    assert algorithm.sampling == "uniform"
    assert newton_iterations(algorithm, CutestProblem(name)) == str(count)


def test_kaczmarz_on_the_pde_problem_takes_the_authors_three_iterations() -> None:
    """PDE/Solution/AdaSketchNewtonRK1.mat: N = 3, 3 iterations (norm-proportional rows: 41)."""
    assert newton_iterations(AdaSketchNewton(sketch="kaczmarz"), PDEControl(N=3)) == "3"


@pytest.mark.parametrize(
    ("problem", "sketch", "cap", "hessian_tol"),
    [
        (CutestProblem("HS7"), "gaussian", 100_000, 1e-6),
        (CutestProblem("HS7"), "kaczmarz", 100_000, 1e-6),
        (ConstrainedLogReg(), "gaussian", 1_000_000, 1e-2),
        (ConstrainedLogReg(), "kaczmarz", 1_000_000, 1e-2),
        (PDEControl(), "gaussian", 1_000_000, 1e-6),
        (PDEControl(), "kaczmarz", 100_000, 1e-6),
    ],
)
def test_settings_are_the_authors_per_test_set_unless_given(
    problem: NLPProblem, sketch: str, cap: int, hessian_tol: float
) -> None:
    assert type(problem).__name__ in AUTHORS_SETTINGS
    assert AdaSketchNewton(sketch=sketch).settings(problem) == (cap, hessian_tol)
    given = AdaSketchNewton(sketch=sketch, max_sketch_iterations=7, hessian_tol=0.5)
    assert given.settings(problem) == (7, 0.5)
