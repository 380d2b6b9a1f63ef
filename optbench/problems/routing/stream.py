"""A synthetic stream of router scores with realistic imbalance.

Token t of a batch drawn at time tau belongs to a cluster c ~ pi (a random mixture over
``n_clusters`` clusters); its hidden state is

    x_t = mu_c(tau) + spread * eps_t / sqrt(d),
    mu_c(tau) = cos(drift tau) mu_c + sin(drift tau) nu_c,

(``mu_c``, ``nu_c`` orthonormal pairs in R^d: the clusters rotate, so which experts a cluster
prefers drifts over time). Expert i has a unit router vector w_i and a popularity offset
beta_i = -skew log(rank_i) (Zipf-like: expert of popularity rank r is favoured by -skew log r in
logit space, ranks a random permutation). Router logits z_{t,i} = a <x_t, w_i> + beta_i with
a = ``affinity``; scores s = sigmoid(z) (DeepSeek-V3 style gate) or softmax(z) over the experts.

Every batch is a pure function of (instance seed, split, time, index): the problem can redraw any
batch it served (to score it against the exact optimum later) and the held-out batches, and two
algorithms with the same seed see exactly the same stream.
"""

from __future__ import annotations

import math

import numpy as np
import torch

#: the independent sub-streams of an instance ("floor" seeds the balance floor's simulation)
SPLITS = {"train": 0, "heldout": 1, "balance": 2, "floor": 3}


def stream_seed(*parts: int) -> int:
    """A 64-bit seed from integers (numpy SeedSequence)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, np.uint64)[0])


class ScoreStream:
    """The instance (router vectors, popularity, clusters) and its batches on a device."""

    def __init__(
        self,
        seed: int,
        n_experts: int,
        batch_size: int,
        dim: int,
        n_clusters: int,
        skew: float,
        cluster_spread: float,
        drift: float,
        affinity: float,
        gate: str,
        device: torch.device,
        dtype: torch.dtype,
    ) -> None:
        self.seed, self.n_experts, self.batch_size, self.dim = seed, n_experts, batch_size, dim
        self.spread, self.drift, self.affinity, self.gate = cluster_spread, drift, affinity, gate
        self.device, self.dtype = device, dtype
        g = torch.Generator().manual_seed(stream_seed(seed, 7))
        f64 = torch.float64

        def unit_rows(rows: int) -> torch.Tensor:
            v = torch.randn(rows, dim, generator=g, dtype=f64)
            return v / v.norm(dim=1, keepdim=True)

        w = unit_rows(n_experts)
        mu = unit_rows(n_clusters)
        nu = unit_rows(n_clusters)
        nu = nu - (nu * mu).sum(1, keepdim=True) * mu  # orthogonal to mu: a rotation plane
        nu = nu / nu.norm(dim=1, keepdim=True)
        weights = -torch.log(torch.rand(n_clusters, generator=g, dtype=f64))  # Dirichlet(1)
        ranks = torch.randperm(n_experts, generator=g).to(f64) + 1
        beta = -skew * torch.log(ranks)
        self.popularity_rank = ranks.to(torch.long)  # 1 = most popular
        put = {"device": device, "dtype": dtype}
        self.w, self.mu, self.nu = w.to(**put), mu.to(**put), nu.to(**put)
        self.cluster_weights = (weights / weights.sum()).to(**put)
        self.beta = (beta - beta.mean()).to(**put)

    def batch(self, split: str, time: int, index: int = 0) -> torch.Tensor:
        """The (T, N) scores of batch ``index`` of ``split`` drawn at stream time ``time``."""
        g = torch.Generator(device=self.device).manual_seed(
            stream_seed(self.seed, SPLITS[split], time, index)
        )
        clusters = torch.multinomial(
            self.cluster_weights, self.batch_size, replacement=True, generator=g
        )
        angle = self.drift * time
        centres = math.cos(angle) * self.mu + math.sin(angle) * self.nu
        noise = torch.randn(
            self.batch_size, self.dim, generator=g, device=self.device, dtype=self.dtype
        )
        x = centres[clusters] + self.spread * noise / math.sqrt(self.dim)
        logits = self.affinity * (x @ self.w.T) + self.beta
        return torch.sigmoid(logits) if self.gate == "sigmoid" else torch.softmax(logits, dim=1)
