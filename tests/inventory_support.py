"""Helpers for the inventory-family tests: building a small problem, and a plain Python
simulator written independently of the batched torch one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from optbench.contracts.context import RunContext
from optbench.platform.cache import DiskCache
from optbench.problems.inventory import InventoryNetwork

TINY = {
    "train_samples": 64,
    "train_periods": 12,
    "train_warmup": 4,
    "dev_samples": 16,
    "dev_periods": 12,
    "dev_warmup": 4,
    "test_samples": 16,
    "test_periods": 12,
    "test_warmup": 4,
    "reference": "none",
}


def make_context(cache: Path, seed: int = 0, dtype: torch.dtype = torch.float64) -> RunContext:
    return RunContext.create(seed, dtype=dtype, max_steps=10, cache=DiskCache(cache))


def make_problem(cache: Path, seed: int = 0, **config: Any) -> InventoryNetwork:
    problem = InventoryNetwork(**{**TINY, **config})
    problem.setup(make_context(cache, seed))
    return problem


def python_simulation(
    problem: InventoryNetwork,
    split: str,
    store_levels: list[float],
    upstream_levels: list[float],
    echelon: bool,
) -> list[list[float]]:
    """Per-sample, per-period costs of a (installation or echelon) base-stock policy, simulated
    with scalar Python loops over samples and periods (no tensors in the dynamics)."""
    data = problem.splits[split]
    spec = problem.spec
    n, K = spec.n_stores, spec.n_upstream
    lead = list(spec.store_lead_times)
    up_lead = list(spec.upstream_lead_times)
    h = spec.store_holding_costs.tolist()
    p = spec.store_underage_costs.tolist()
    h_up = spec.upstream_holding_costs.tolist()
    demand = torch.cat(list(data.chunks()), 1).tolist()  # [sample][period][store]
    init = data.initial
    costs = []
    for b in range(data.n_samples):
        on_hand = init.store_on_hand[b].tolist()
        pipes = [init.store_pipeline[b, i, : lead[i]].tolist() for i in range(n)]
        up_on = [init.upstream_on_hand[k][b].item() for k in range(K)]
        up_pipes = [init.upstream_pipeline[k][b].tolist() for k in range(K)]
        sample_costs = []
        for t in range(data.n_periods):
            for i in range(n):
                if lead[i] > 0:
                    on_hand[i] += pipes[i].pop(0)
            for k in range(K):
                if up_lead[k] > 0:
                    up_on[k] += up_pipes[k].pop(0)
            store_pos = [on_hand[i] + sum(pipes[i]) for i in range(n)]
            up_pos = [up_on[k] + sum(up_pipes[k]) for k in range(K)]
            requests = [max(store_levels[i] - store_pos[i], 0.0) for i in range(n)]
            for k in range(K):
                position = up_pos[k]
                if echelon:
                    position = sum(store_pos) + sum(up_pos[: k + 1])
                requests.append(max(upstream_levels[k] - position, 0.0))
            shipped = list(requests)
            for k in range(K):
                children = list(range(n)) if k == 0 else [n + k - 1]
                asked = sum(shipped[c] for c in children)
                if asked > up_on[k]:
                    for c in children:
                        shipped[c] *= up_on[k] / asked
                    up_on[k] = up_on[k] - sum(shipped[c] for c in children)
                else:
                    up_on[k] -= asked
            for i in range(n):
                if lead[i] == 0:
                    on_hand[i] += shipped[i]
                else:
                    pipes[i].append(shipped[i])
            for k in range(K):
                if up_lead[k] == 0:
                    up_on[k] += shipped[n + k]
                else:
                    up_pipes[k].append(shipped[n + k])
            cost = 0.0
            for i in range(n):
                post = on_hand[i] - demand[b][t][i]
                cost += h[i] * max(post, 0.0) + p[i] * max(-post, 0.0)
                on_hand[i] = max(post, 0.0) if spec.lost_sales else post
            cost += sum(h_up[k] * up_on[k] for k in range(K))
            sample_costs.append(cost / n)
        costs.append(sample_costs)
    return costs
