"""Per-step cost of M-FAC (Frantar et al. 2021) against Adam as the dimension d and the window
m grow, measured in the same process.

One M-FAC step inserts a gradient into the sliding window (O(d m) for the Gram row, O(m^3) for
the Cholesky refactorisation of the m x m matrix) and applies the inverse Fisher (O(d m + m^2));
one Adam step is O(d). For each (d, m) the best of several timed blocks of steps is taken for
both optimisers on the same flat parameter with fresh random gradients; reported: seconds per
step, the ratio M-FAC / Adam, and log-log slopes of the M-FAC step time against d (m fixed) and
against m (d fixed), split into the update (window + factorisation) and the product.
The paper's claim is a cost linear in d and in m for the product (O(d m)); the slope of the
whole step in m also shows the O(m^3) factorisation once m^2 is comparable to d.

    python -m benchmarks.mfac_step_cost [--steps 20] [--quick]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import torch

from benchmarks.common import write_result
from optbench.algorithms.mfac import MFACOptimizer, SlidingWindowFisher


def seconds_per_step(make: Any, d: int, steps: int, repeats: int = 3) -> float:
    """Best over ``repeats`` of the mean time of ``steps`` optimiser steps (after a warm-up
    that fills the window)."""
    param = torch.nn.Parameter(torch.zeros(d, dtype=torch.float64))
    optimizer = make([param])
    grads = torch.randn(steps, d, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for g in grads:  # warm-up (fills the window, allocations)
        param.grad = g
        optimizer.step()
    best = np.inf
    for _ in range(repeats):
        tick = time.perf_counter()
        for g in grads:
            param.grad = g
            optimizer.step()
        best = min(best, (time.perf_counter() - tick) / steps)
    return best


def split_cost(d: int, m: int, steps: int) -> tuple[float, float]:
    """Seconds per window update (row + Gram + Cholesky) and per inverse-Fisher product."""
    fisher = SlidingWindowFisher(m, d, 1e-5, torch.float64, torch.device("cpu"))
    grads = torch.randn(
        max(steps, m), d, dtype=torch.float64, generator=torch.Generator().manual_seed(1)
    )
    for g in grads[:m]:
        fisher.update(g)
    tick = time.perf_counter()
    for g in grads[:steps]:
        fisher.update(g)
    update = (time.perf_counter() - tick) / steps
    tick = time.perf_counter()
    for g in grads[:steps]:
        fisher.solve(g)
    return update, (time.perf_counter() - tick) / steps


def slope(x: list[float], y: list[float]) -> float:
    """Least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="fewer and smaller sizes")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    dims = [2_000, 8_000, 32_000] if args.quick else [2_000, 8_000, 32_000, 128_000]
    windows = [16, 32, 64, 128] if args.quick else [16, 32, 64, 128, 256, 512]
    fixed_m, fixed_d = 32, 32_000

    def adam(params: list[torch.Tensor]) -> torch.optim.Optimizer:
        return torch.optim.Adam(params, lr=1e-3)

    def mfac(m: int) -> Any:
        return lambda params: MFACOptimizer(params, lr=1e-3, ngrads=m, damp=1e-5)

    rows: list[dict[str, float]] = []
    for d in dims:
        a = seconds_per_step(adam, d, args.steps)
        f = seconds_per_step(mfac(fixed_m), d, args.steps)
        update, product = split_cost(d, fixed_m, args.steps)
        rows.append(
            {
                "d": d,
                "m": fixed_m,
                "adam_s": a,
                "mfac_s": f,
                "ratio": f / a,
                "update_s": update,
                "product_s": product,
            }
        )
    for m in windows:
        a = seconds_per_step(adam, fixed_d, args.steps)
        f = seconds_per_step(mfac(m), fixed_d, args.steps)
        update, product = split_cost(fixed_d, m, args.steps)
        rows.append(
            {
                "d": fixed_d,
                "m": m,
                "adam_s": a,
                "mfac_s": f,
                "ratio": f / a,
                "update_s": update,
                "product_s": product,
            }
        )
    over_d = [r for r in rows if r["m"] == fixed_m and r["d"] in dims][: len(dims)]
    over_m = [r for r in rows if r["d"] == fixed_d and r["m"] in windows][-len(windows) :]
    result = {
        "rows": rows,
        "slope_step_vs_d": slope([r["d"] for r in over_d], [r["mfac_s"] for r in over_d]),
        "slope_product_vs_d": slope([r["d"] for r in over_d], [r["product_s"] for r in over_d]),
        "slope_step_vs_m": slope([r["m"] for r in over_m], [r["mfac_s"] for r in over_m]),
        "slope_product_vs_m": slope([r["m"] for r in over_m], [r["product_s"] for r in over_m]),
        "slope_update_vs_m": slope([r["m"] for r in over_m], [r["update_s"] for r in over_m]),
        "threads": 1,
    }
    write_result("mfac_step_cost", result)
    return result


if __name__ == "__main__":
    main()
