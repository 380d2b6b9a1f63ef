"""Per-iteration time of the two L-BFGS methods on vendored LIBSVM logistic regressions.

``lbfgs`` (``torch.optim.LBFGS``, one iteration per step; with its default memory of 100 pairs
and with SciPy's 10) against ``scipy_lbfgs`` (SciPy's L-BFGS-B driven in lockstep, one iteration
per step), each from w = 0 until the gradient norm is below 1e-8 or ``--steps`` steps, and
SciPy's L-BFGS-B called directly (one ``minimize`` call, no lockstep, the same stopping test on
the last evaluated gradient) as the baseline of the wrapper's overhead, all in this process with
one torch and one BLAS thread. Reported per set: seconds and oracle calls per iteration of each,
and the ratios torch / scipy_lbfgs and scipy_lbfgs / direct SciPy (best of ``--repeats``).

    python -m benchmarks.lbfgs_iteration_cost [--sets australian_scale,ionosphere_scale,a1a]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

from benchmarks.common import write_result


def problem_for(name: str) -> Any:
    from optbench.contracts.context import RunContext
    from optbench.platform.cache import DiskCache
    from optbench.platform.paths import cache_dir
    from optbench.problems.logreg import LogisticRegression

    problem = LogisticRegression(dataset=name, test=None)
    problem.setup(RunContext.create(0, max_steps=1, cache=DiskCache(cache_dir())))
    return problem


def through_optbench(algorithm: Any, problem: Any, steps: int) -> tuple[float, int, int]:
    """(seconds, iterations, oracle calls) of the algorithm's generator."""
    from optbench.contracts.context import RunContext

    ctx = RunContext.create(0, max_steps=steps)
    before = problem.counters["grad"]
    run = algorithm.run(problem, ctx)
    next(run)
    started = time.perf_counter()
    done = 0
    while done < steps:
        done += 1
        if next(run).converged:
            break
    elapsed = time.perf_counter() - started
    run.close()
    return elapsed, done, problem.counters["grad"] - before


def direct_scipy(problem: Any, steps: int) -> tuple[float, int, int]:
    """(seconds, iterations, oracle calls) of one ``minimize(method="L-BFGS-B")`` call on the
    problem's oracle, stopping at the same gradient norm."""
    counter = [0]
    last: dict[str, Any] = {}

    def loss_grad(w: np.ndarray) -> tuple[float, np.ndarray]:
        counter[0] += 1
        loss, grad = problem.loss_grad(torch.from_numpy(w))
        last.update(w=w.copy(), grad_norm=float(torch.linalg.vector_norm(grad)))
        return loss, grad.numpy()

    def stop_at_tolerance(intermediate_result: Any) -> None:
        if not np.array_equal(last["w"], intermediate_result.x):
            loss_grad(intermediate_result.x)
        if last["grad_norm"] <= 1e-8:
            raise StopIteration

    started = time.perf_counter()
    result = minimize(
        loss_grad,
        np.zeros(problem.dim),
        jac=True,
        method="L-BFGS-B",
        callback=stop_at_tolerance,
        options={"maxcor": 10, "maxls": 20, "ftol": 0.0, "gtol": 0.0, "maxiter": steps},
    )
    return time.perf_counter() - started, int(result.nit), counter[0]


def measure(label: str, problem: Any, steps: int) -> tuple[float, int, int]:
    from optbench.algorithms.quasi_newton import LBFGS, ScipyLBFGS

    if label == "scipy_direct":
        return direct_scipy(problem, steps)
    if label == "scipy_lbfgs":
        return through_optbench(ScipyLBFGS(), problem, steps)
    memory = 10 if label == "torch_lbfgs_m10" else 100
    return through_optbench(LBFGS(history_size=memory), problem, steps)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sets", default="australian_scale,ionosphere_scale,a1a")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    results: dict[str, Any] = {}
    with threadpool_limits(1, "blas"):
        for name in args.sets.split(","):
            problem = problem_for(name)
            row: dict[str, Any] = {"n_samples": problem.n_samples, "dim": problem.dim}
            for label in ("torch_lbfgs", "torch_lbfgs_m10", "scipy_lbfgs", "scipy_direct"):
                runs = [measure(label, problem, args.steps) for _ in range(args.repeats)]
                seconds, iterations, calls = min(runs)
                row[label] = {
                    "iterations": iterations,
                    "seconds_per_iteration": seconds / iterations,
                    "oracle_calls_per_iteration": calls / iterations,
                }
            per = {k: row[k]["seconds_per_iteration"] for k in row if isinstance(row[k], dict)}
            row["torch_over_scipy_lbfgs"] = per["torch_lbfgs"] / per["scipy_lbfgs"]
            row["torch_m10_over_scipy_lbfgs"] = per["torch_lbfgs_m10"] / per["scipy_lbfgs"]
            row["scipy_lbfgs_over_direct"] = per["scipy_lbfgs"] / per["scipy_direct"]
            results[name] = row
            print(name, row, flush=True)
    write_result("lbfgs_iteration_cost", {"sets": results})


if __name__ == "__main__":
    main()
