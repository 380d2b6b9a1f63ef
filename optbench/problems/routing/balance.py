"""The sampling floor of MaxVio on a finite held-out set.

A router's global balance is measured on a finite set of H tokens (Wang et al. 2024's
MaxVio_global: the loads summed over a validation set). Even a router whose *expected* loads are
exactly balanced shows a positive MaxVio there: if every expert is chosen by a token with
probability K/N, each load is Binomial(H, K/N) whatever the router, so MaxVio fluctuates around
about e_N sqrt(N / (N - 1)) sqrt((N - K) / (H K)) (e_N the expected maximum of N standard
normals: 0.41 at N = 64, K = 2, H = 1024). A measured MaxVio_global is only evidence of imbalance
when it is clearly above this floor.

``balanced_floor`` estimates the floor by simulation: the mean MaxVio over ``draws`` sets of the
uniform random router (each token picks K distinct experts uniformly at random), the simplest
router whose expected loads are balanced.
"""

from __future__ import annotations

import numpy as np


def balanced_floor(n_experts: int, top_k: int, n_tokens: int, seed: int, draws: int = 16) -> float:
    """Mean MaxVio of the uniform random K-of-N router over ``draws`` sets of ``n_tokens``
    tokens (seeded by ``seed``; loads summed per set, as MaxVio_global)."""
    rng = np.random.default_rng(seed)
    values = []
    chunk = max(1, 2**20 // n_experts)  # tokens per block: bounded memory
    for _ in range(draws):
        loads = np.zeros(n_experts, dtype=np.int64)
        for start in range(0, n_tokens, chunk):
            keys = rng.random((min(chunk, n_tokens - start), n_experts))
            chosen = np.argpartition(keys, top_k - 1, axis=1)[:, :top_k]  # a uniform K-subset
            loads += np.bincount(chosen.ravel(), minlength=n_experts)
        mean = loads.mean()
        values.append((loads.max() - mean) / mean)
    return float(np.mean(values))
