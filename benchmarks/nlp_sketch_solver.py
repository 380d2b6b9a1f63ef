"""The randomized sketching solver vs a direct sparse solve of the same KKT system, as m + n grows.

Systems K z = b with K = [[B, J^T], [J, 0]]:
- ``random``: a well-conditioned family, B = I + 0.1 (diagonal noise) and J a random sparse
  m x n matrix (m = n / 4, 5 nonzeros per row, plus an identity block so J J^T is well
  conditioned): cond(K) stays around 10 as n grows, the sketches' favourable case;
- ``pde``: the PDE-control KKT system at grid size N (n = 2 N^2, m = N^2), whose condition
  number grows like N^2, the unfavourable case.
Each is solved to ||K z - b|| <= 1e-6 ||b|| by the Gaussian-vector sketch and the
randomized-Kaczmarz sketch with uniform rows (AdaSketch's default, the authors' code) and with
norm-proportional rows (capped at ``--max-iterations`` steps, by default the authors' largest
per-solve cap 1e6, or ``--max-seconds``), and by SciPy's SuperLU (``spsolve``). Reported: steps,
seconds, reached relative residual and the time ratio against the direct solve measured in the
same process.

    python -m benchmarks.nlp_sketch_solver [--max-iterations 1000000] [--max-seconds 60]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from benchmarks.common import write_result


def random_kkt(n: int, rng: np.random.Generator) -> tuple[Any, np.ndarray]:
    m = max(1, n // 4)
    B = sp.diags(1.0 + 0.1 * rng.random(n))
    cols = rng.integers(0, n, size=(m, 5))
    rows = np.repeat(np.arange(m), 5)
    J = sp.csr_matrix((rng.standard_normal(5 * m) * 0.3, (rows, cols.ravel())), shape=(m, n))
    J = J + sp.eye(m, n)
    K = sp.bmat([[B, J.T], [J, None]], format="csr")
    return K, rng.standard_normal(n + m)


def pde_kkt(N: int) -> tuple[Any, np.ndarray]:
    from optbench.contracts.context import RunContext
    from optbench.problems.nlp import PDEControl

    problem = PDEControl(N=N)
    problem.setup(RunContext.create(0, max_steps=1))
    K = sp.bmat([[problem.H, problem.J.T], [problem.J, None]], format="csr")
    x = problem.initial_point()
    b = -np.concatenate([problem._grad(x) + problem.J.T @ np.ones(problem.m), problem._c(x)])
    return K, b


def run_sketch(
    K: Any, b: np.ndarray, sketch: str, sampling: str, cap: int, seconds: float
) -> dict[str, float]:
    from optbench.algorithms.constrained.sketching import SketchSolver

    solver = SketchSolver(np.random.default_rng(0), sketch, sampling)
    target = 1e-6 * np.linalg.norm(b)
    z = np.zeros(len(b))
    done = 0
    started = time.perf_counter()
    chunk = 1000
    while done < cap and time.perf_counter() - started < seconds:
        result = solver.solve(K, b, z, target, min(chunk, cap - done))
        z, done = result.z, done + result.iterations
        if np.linalg.norm(result.residual) <= target:
            break
        chunk = min(chunk * 2, 100_000)
    elapsed = time.perf_counter() - started
    residual = float(np.linalg.norm(K @ z - b) / np.linalg.norm(b))
    return {"steps": done, "seconds": elapsed, "relative_residual": residual}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-iterations", type=int, default=1_000_000)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    systems = [(f"random d={int(n * 1.25)}", *random_kkt(n, rng)) for n in (80, 400, 2000, 8000)]
    systems += [(f"pde N={N} d={3 * N * N}", *pde_kkt(N)) for N in (2, 4, 8, 16)]
    results: dict[str, Any] = {}
    for label, K, b in systems:
        started = time.perf_counter()
        direct = spla.spsolve(sp.csc_matrix(K), b)
        direct_s = time.perf_counter() - started
        row: dict[str, Any] = {
            "d": K.shape[0],
            "cond_estimate": _cond(K),
            "direct_s": direct_s,
            "direct_relative_residual": float(np.linalg.norm(K @ direct - b) / np.linalg.norm(b)),
        }
        for label, sketch, sampling in (
            ("gaussian", "gaussian", "uniform"),
            ("kaczmarz_uniform", "kaczmarz", "uniform"),
            ("kaczmarz_norm", "kaczmarz", "norm"),
        ):
            out = run_sketch(K, b, sketch, sampling, args.max_iterations, args.max_seconds)
            out["time_over_direct"] = out["seconds"] / max(direct_s, 1e-9)
            row[label] = out
        results[label] = row
        print(label, row, flush=True)
    write_result("nlp_sketch_solver", {"systems": results})


def _cond(K: Any) -> float:
    """2-norm condition number (dense SVD up to 3000 rows, else NaN)."""
    if K.shape[0] > 3000:
        return float("nan")
    singular = np.linalg.svd(K.toarray(), compute_uv=False)
    return float(singular[0] / singular[-1])


if __name__ == "__main__":
    main()
