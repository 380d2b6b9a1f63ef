"""Where an nlp iteration's time goes: oracle evaluations vs the method's own linear algebra.

Each problem's counted oracles (f, grad, c, J, Hessians) are timed in the same process; per
iteration, ``oracle_s`` is the time spent inside them and ``overhead_s`` the rest of the step
(KKT assembly, Hessian modification, sketching / GMRES / LU, line-search bookkeeping). Problems:
a small CUTEst problem (BT2, n = 3, S2MPJ's pure-Python oracles), the 1000-variable CUTEst
problem LUKVLE8 (N = 1000, m = 998; S2MPJ builds its Hessians element by element), and the PDE
control problem at N = 22 (n = 968, m = 484, analytic sparse oracles). The baseline is the same
process's oracle time, so ``overhead_over_oracle`` says whether a method is evaluation-bound
(<< 1) or solver-bound (>> 1) on that problem.

    python -m benchmarks.nlp_iteration_cost [--steps 3] [--large-steps 1]
"""

from __future__ import annotations

import argparse
import functools
import time
from typing import Any

from benchmarks.common import write_result

ORACLES = ("f", "grad", "f_grad", "c", "jac", "c_jac", "hess_lag", "hess_obj", "hess_lag_vec")


def timed(problem: Any) -> list[float]:
    """Wrap the problem's counted oracles so the time spent in them accumulates in a cell."""
    spent = [0.0]
    for name in ORACLES:
        inner = getattr(type(problem), name).__get__(problem)  # the unwrapped method

        @functools.wraps(inner)
        def wrapper(*args: Any, _inner: Any = inner) -> Any:
            started = time.perf_counter()
            try:
                return _inner(*args)
            finally:
                spent[0] += time.perf_counter() - started

        setattr(problem, name, wrapper)
    return spent


def measure(problem: Any, ctx: Any, make_algorithm: Any, steps: int) -> dict[str, float]:
    """Per-step time, oracle time and overhead of ``steps`` steps on a set-up problem."""
    spent = timed(problem)
    generator = make_algorithm().run(problem, ctx)
    next(generator)
    spent[0] = 0.0
    problem.counters.clear()
    started = time.perf_counter()
    done = 0
    for _ in range(steps):
        try:
            next(generator)
        except StopIteration:
            break
        done += 1
    total = time.perf_counter() - started
    generator.close()
    done = max(done, 1)
    return {
        "n": problem.n,
        "m": problem.m,
        "steps": done,
        "step_s": total / done,
        "oracle_s": spent[0] / done,
        "overhead_s": (total - spent[0]) / done,
        "overhead_over_oracle": (total - spent[0]) / max(spent[0], 1e-12),
        "oracle_calls_per_step": problem.counters["evaluations"] / done,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--large-steps", type=int, default=1)
    args = parser.parse_args()

    from optbench.algorithms.constrained import AdaSketchNewton, SqpL1Gmres, SqpNewton
    from optbench.problems.nlp import CutestProblem, PDEControl

    methods = {
        "sqp_newton": lambda: SqpNewton(),
        "adasketch_gv": lambda: AdaSketchNewton(),
        "sqp_l1_gmres": lambda: SqpL1Gmres(),
    }
    # on the 1000-variable problems the vector sketches are capped (a 2000-row KKT system needs
    # far more than 10^4 sketch steps at AdaSketch's accuracy): the per-step cost is the cap's
    capped = {**methods, "adasketch_gv": lambda: AdaSketchNewton(max_sketch_iterations=10_000)}
    problems = {
        "BT2 (n=3)": (lambda: CutestProblem("BT2"), methods, args.steps),
        "PDE N=22 (n=968)": (lambda: PDEControl(N=22), capped, args.large_steps),
        "LUKVLE8 N=1000 (n=1000)": (
            lambda: CutestProblem("LUKVLE8", params={"N": 1000}),
            {k: capped[k] for k in ("sqp_newton", "adasketch_gv")},
            args.large_steps,
        ),
    }
    from optbench.contracts.context import RunContext

    results: dict[str, Any] = {}
    for label, (make_problem, algorithms, steps) in problems.items():
        ctx = RunContext.create(0, max_steps=steps)
        problem = make_problem()
        started = time.perf_counter()
        problem.setup(ctx)
        results[f"{label} / setup_s"] = time.perf_counter() - started
        for name, make_algorithm in algorithms.items():
            key = f"{label} / {name}"
            results[key] = measure(problem, ctx, make_algorithm, steps)
            print(key, {k: round(v, 4) for k, v in results[key].items()}, flush=True)
    write_result("nlp_iteration_cost", {"per_step": results})


if __name__ == "__main__":
    main()
