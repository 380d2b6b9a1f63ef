"""Routing-step throughput: ALF-LB's overhead over greedy top-K, and the LP oracle's cost.

1. One routing step on a batch of T tokens (default N = 256 experts, K = 8, T = 65,536, float32):
   greedy top-K (``GreedyRouter.select`` + the problem's ``expert_loads``) against ALF-LB
   (``BiasedRouter.select``, which adds the bias before the top-K, + ``expert_loads`` + the sign
   update of the bias), both through the family's own code, plus a bare ``torch.topk`` as the
   floor any top-K router pays. Median of ``--repeats`` timed rounds after warm-up (the three
   steps interleaved in each round); reported as tokens/s and ALF-LB's overhead relative to
   greedy (the issue's target: <= 10%).
2. The exact per-batch LP (``optimal_assignment``, scipy HiGHS) for growing batch sizes at
   ``--lp-experts`` experts and ``--lp-top-k``: seconds per batch and tokens/s, and the fitted
   exponent of time ~ T^a.

    python -m benchmarks.routing_throughput [--tokens 65536] [--experts 256] [--top-k 8]
        [--threads 1] [--device cpu] [--lp-sizes 64,128,256,512,1024]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from benchmarks.common import write_result


def _median_seconds(
    steps: dict[str, Callable[[], object]], repeats: int, device: torch.device
) -> dict[str, float]:
    """Median seconds per call of each step, the steps interleaved in every round so that a
    shared machine's load drifts affect them alike."""
    for step in steps.values():
        for _ in range(3):
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            tick = time.perf_counter()
            step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times[name].append(time.perf_counter() - tick)
    return {name: statistics.median(values) for name, values in times.items()}


def routing_step(
    tokens: int, experts: int, top_k: int, repeats: int, device: torch.device
) -> dict[str, float]:
    from optbench.algorithms.routing.routers import BiasedRouter, GreedyRouter
    from optbench.contracts.routing_stream import expert_loads

    g = torch.Generator(device=device).manual_seed(0)
    logits = torch.randn(tokens, experts, generator=g, device=device)
    logits += torch.linspace(0, 2, experts, device=device)  # some skew, as in a real router
    scores = torch.sigmoid(logits)
    greedy = GreedyRouter(top_k)
    bias = torch.zeros(1, experts, device=device)
    alf = BiasedRouter(top_k, bias, u=1e-3)

    def bare() -> object:
        return torch.topk(scores, top_k, dim=1).indices

    def greedy_step() -> object:
        return expert_loads(greedy.select(scores), experts)

    def alf_step() -> object:
        loads = expert_loads(alf.select(scores), experts)
        alf.update(loads[None])
        return loads

    seconds = _median_seconds(
        {"topk": bare, "greedy": greedy_step, "alf_lb": alf_step}, repeats, device
    )
    return {
        **{f"{k}_tokens_per_s": tokens / v for k, v in seconds.items()},
        **{f"{k}_ms": 1e3 * v for k, v in seconds.items()},
        "alf_lb_overhead_vs_greedy": seconds["alf_lb"] / seconds["greedy"] - 1,
    }


def lp_scaling(sizes: list[int], experts: int, top_k: int) -> dict[str, object]:
    from optbench.problems.routing.assignment import capacity, optimal_assignment

    rng = np.random.default_rng(0)
    warm = torch.as_tensor(rng.random((16, experts)))
    optimal_assignment(warm, top_k, capacity(16, experts, top_k, 1.0))  # HiGHS start-up
    rows = []
    for tokens in sizes:
        scores = torch.as_tensor(rng.random((tokens, experts)) + np.linspace(0, 0.5, experts))
        cap = capacity(tokens, experts, top_k, 1.0)
        tick = time.perf_counter()
        optimal_assignment(scores, top_k, cap)
        seconds = time.perf_counter() - tick
        rows.append({"tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds})
    slope = np.polyfit(np.log(sizes), np.log([r["seconds"] for r in rows]), 1)[0]
    return {"lp_experts": experts, "lp_top_k": top_k, "lp": rows, "lp_time_exponent": slope}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=65536)
    parser.add_argument("--experts", type=int, default=256)
    parser.add_argument("--top-k", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--lp-sizes", default="64,128,256,512,1024")
    parser.add_argument("--lp-experts", type=int, default=64)
    parser.add_argument("--lp-top-k", type=int, default=8)
    args, _ = parser.parse_known_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    result: dict[str, object] = {
        "tokens": args.tokens,
        "experts": args.experts,
        "top_k": args.top_k,
        "threads": args.threads,
        "device": str(device),
        "dtype": "float32",
    }
    result.update(routing_step(args.tokens, args.experts, args.top_k, args.repeats, device))
    sizes = [int(s) for s in args.lp_sizes.split(",") if s]
    if sizes:
        result.update(lp_scaling(sizes, args.lp_experts, args.lp_top_k))
    write_result("routing_throughput", result)


if __name__ == "__main__":
    main()
