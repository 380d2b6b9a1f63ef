"""Inventory simulator throughput and memory, and HDPO epoch time.

- Throughput in sample-periods per second of the batched torch simulator (one store,
  backlogging, L = 4, 50 periods), forward only (``no_grad``) and forward + backward, at 8k, 32k
  and 128k samples, with the base-stock policy and the paper's [32, 32, 32] MLP policy.
- Baseline measured in the same process: a straightforward NumPy implementation of the same
  dynamics and base-stock policy, vectorised over samples, loop over periods
  (``ratio_torch_over_numpy``), and the machine's memory bandwidth (a large array copy) as the
  bytes the simulator's elementwise work would need at that rate (``bandwidth_bound_...``).
- Memory: bytes autograd keeps for the backward pass, per sample-period (saved-tensor hooks),
  and the process's peak resident set size.
- HDPO epoch time: one epoch (4 gradient steps of 8,192 samples) on 32,768 train samples.

    python -m benchmarks.inventory_simulator [--sizes 8192,32768,131072] [--threads 1]
"""

from __future__ import annotations

import argparse
import functools
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import best_time, copy_bandwidth, write_result

PERIODS, WARMUP, LEAD = 50, 30, 4


def numpy_simulation(demand: np.ndarray, on_hand: np.ndarray, pipe: np.ndarray, level: float):
    """The same dynamics and base-stock policy, written plainly in NumPy."""
    on_hand, pipe = on_hand.copy(), pipe.copy()
    total = np.zeros(len(on_hand))
    for t in range(demand.shape[1]):
        on_hand = on_hand + pipe[:, 0]
        pipe = pipe[:, 1:]
        order = np.maximum(level - on_hand - pipe.sum(1), 0)
        pipe = np.concatenate([pipe, order[:, None]], 1)
        post = on_hand - demand[:, t]
        cost = np.maximum(post, 0) + 9 * np.maximum(-post, 0)
        on_hand = post
        if t >= WARMUP:
            total += cost
    return total / (demand.shape[1] - WARMUP)


def _forward(problem: Any, policy: Any) -> None:
    import torch

    with torch.no_grad():
        problem.simulate(policy, "train")


def _backward(problem: Any, policy: Any) -> None:
    problem.simulate(policy, "train").cost.mean().backward()


def saved_bytes(fn: Any) -> int:
    """Bytes of the distinct tensors autograd saves for backward while ``fn`` runs."""
    import torch

    seen: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="8192,32768,131072")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    import torch

    from optbench.algorithms.inventory import HDPO
    from optbench.algorithms.inventory.networks import VanillaMLP
    from optbench.contracts.context import RunContext
    from optbench.platform.cache import DiskCache
    from optbench.problems.inventory import InventoryNetwork
    from optbench.problems.inventory.heuristics import BaseStock

    torch.set_num_threads(args.threads)
    dtype = torch.float32
    cache = Path(tempfile.mkdtemp(prefix="optbench-bench-"))
    results: dict[str, Any] = {"periods": PERIODS, "lead_time": LEAD, "threads": args.threads}

    bandwidth = copy_bandwidth()  # bytes read + written per second
    results["memory_bandwidth_GBps"] = bandwidth / 1e9

    for size in sizes:
        problem = InventoryNetwork(
            store_lead_time=LEAD,
            train_samples=size,
            train_periods=PERIODS,
            train_warmup=WARMUP,
            dev_samples=8,
            test_samples=8,
            test_periods=40,
            test_warmup=10,
            reference="none",
        )
        problem.setup(RunContext.create(0, dtype=dtype, max_steps=1, cache=DiskCache(cache)))
        base_stock = BaseStock(problem.spec)
        with torch.no_grad():
            base_stock.theta.fill_(LEAD + 1.5)
        torch.manual_seed(0)
        mlp = VanillaMLP(problem.spec).to(dtype)
        sample_periods = size * PERIODS
        row: dict[str, Any] = {}
        for name, policy in (("base_stock", base_stock), ("mlp", mlp)):
            forward = functools.partial(_forward, problem, policy)
            backward = functools.partial(_backward, problem, policy)
            row[f"{name}_forward_sample_periods_per_s"] = sample_periods / best_time(
                forward, args.repeats, warmup=True
            )
            if name == "mlp" and size > 32768:
                continue  # the MLP's saved activations at 128k samples exceed a small machine
            row[f"{name}_forward_backward_sample_periods_per_s"] = sample_periods / best_time(
                backward, args.repeats, warmup=True
            )
            kept = saved_bytes(functools.partial(problem.simulate, policy, "train"))
            row[f"{name}_autograd_bytes_per_sample_period"] = kept / sample_periods

        # baseline: plain NumPy on the same samples
        split = problem.splits["train"]
        demand = split.demand[:, :, 0].numpy()
        on_hand = split.initial.store_on_hand[:, 0].numpy()
        pipe = split.initial.store_pipeline[:, 0, :].numpy()
        level = float(base_stock.levels()[0].detach())
        baseline = functools.partial(numpy_simulation, demand, on_hand, pipe, level)
        numpy_seconds = best_time(baseline, args.repeats, warmup=True)
        with torch.no_grad():
            torch_cost = problem.simulate(base_stock, "train").cost.numpy()
        numpy_cost = numpy_simulation(demand, on_hand, pipe, level)
        row["max_abs_difference_vs_numpy"] = float(np.abs(torch_cost - numpy_cost).max())
        row["numpy_sample_periods_per_s"] = sample_periods / numpy_seconds
        row["ratio_torch_over_numpy_forward"] = (
            row["base_stock_forward_sample_periods_per_s"] / row["numpy_sample_periods_per_s"]
        )
        # ~14 elementwise passes over (samples,) float32 arrays per period, read + write
        bytes_per_sample_period = 14 * 2 * 4
        row["bandwidth_bound_sample_periods_per_s"] = bandwidth / bytes_per_sample_period
        results[f"samples_{size}"] = row

    # HDPO epoch time on 32,768 train samples (4 minibatches of 8,192)
    problem = InventoryNetwork(
        store_lead_time=LEAD,
        train_samples=32768,
        dev_samples=1024,
        test_samples=8,
        test_periods=40,
        test_warmup=10,
        reference="none",
    )
    ctx = RunContext.create(0, dtype=dtype, max_steps=10, cache=DiskCache(cache))
    problem.setup(ctx)
    hdpo = HDPO(lambda spec: VanillaMLP(spec), lr=0.003, batch_size=8192)
    steps = hdpo.run(problem, ctx)
    next(steps)
    epochs = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        next(steps)
        epochs.append(time.perf_counter() - started)
    results["hdpo_epoch_s_32768_samples_batch_8192"] = min(epochs)
    results["peak_rss_MB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    write_result("inventory_simulator", results)


if __name__ == "__main__":
    main()
