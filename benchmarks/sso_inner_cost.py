"""SSO's inner loop against its outer step (Lavington et al. 2023), in the same process.

An SSO outer step makes one expensive oracle call (the targets and the per-sample loss
gradients with respect to them on the minibatch) and then m inner steps on the surrogate, each
a forward pass, a vector-Jacobian product and the Armijo trials' forward passes. The baseline
is one SGD step's oracle (``loss_grad`` on the same minibatch), timed in the same process:
``inner_over_sgd`` says how many SGD steps one inner step costs, ``outer_over_sgd`` the same
for the whole outer step with m inner steps. On problems whose loss gradient is cheap (a linear
model) the inner steps are not cheaper than the oracle they save; the method pays off when the
target-gradient oracle dominates (simulators, imitation learning), which these problems are not.

    python -m benchmarks.sso_inner_cost [--m 10] [--steps 50]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import write_result
from optbench.algorithms.target_surrogate import SSO
from optbench.contracts.context import RunContext
from optbench.problems.logreg import LogisticRegression
from optbench.problems.mlp import MLPClassifier


def timed_steps(fn: Any, steps: int) -> float:
    tick = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - tick) / steps


def measure(problem: Any, ctx: RunContext, m: int, steps: int, batch_size: int) -> dict[str, float]:
    generator = torch.Generator().manual_seed(0)
    x = problem.initial_point()
    batch = torch.randint(problem.n_samples, (batch_size,), generator=generator)

    def sgd_oracle() -> None:
        problem.loss_grad(x, batch)

    def expensive_oracle() -> None:
        z, _ = problem.target_pullback(x, batch)
        problem.target_grads(z, batch)

    z, _ = problem.target_pullback(x, batch)
    _, g = problem.target_grads(z, batch)
    h = SSO().surrogate(problem, batch, z, g, lr=1.0)

    def inner_step() -> None:  # one surrogate gradient and one Armijo trial, as a minimum
        _, grad = h(x, True)
        h(x - 1e-3 * grad, False)

    algorithm = SSO(m=m, batch_size=batch_size)
    run = algorithm.run(problem, ctx)
    next(run)
    sgd = timed_steps(sgd_oracle, steps)
    oracle = timed_steps(expensive_oracle, steps)
    inner = timed_steps(inner_step, steps)
    outer = timed_steps(lambda: next(run), steps)
    return {
        "sgd_oracle_s": sgd,
        "expensive_oracle_s": oracle,
        "inner_step_s": inner,
        "outer_step_s": outer,
        "inner_over_sgd": inner / sgd,
        "outer_over_sgd": outer / sgd,
        "outer_over_expensive_oracle": outer / oracle,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--m", type=int, default=10)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=25)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from optbench.platform.cache import DiskCache
    from optbench.platform.paths import cache_dir

    ctx = RunContext.create(0, max_steps=10, cache=DiskCache(Path(cache_dir())))
    problems = {
        "logreg_mushrooms": LogisticRegression(dataset="mushrooms"),
        "mlp_digits": MLPClassifier(dataset="digits", hidden=[32]),
    }
    result: dict[str, Any] = {"m": args.m, "batch_size": args.batch_size, "threads": 1}
    for name, problem in problems.items():
        problem.setup(ctx)
        result[name] = measure(problem, ctx, args.m, args.steps, args.batch_size)
    write_result("sso_inner_cost", result)
    return result


if __name__ == "__main__":
    main()
