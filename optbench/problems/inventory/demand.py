"""Demand laws and the demand samples of a split (train / dev / test).

``normal``: D_i = max(mu_i + sigma_i Z_i, 0) with equicorrelated standard normals,
Z_i = sqrt(rho) Z_0 + sqrt(1 - rho) E_i (pairwise correlation ``rho`` before clipping), as in the
one-warehouse setting of Alvo, Russo and Kanoria (Section 5.3). ``poisson``: D_i ~ Poisson(mu_i),
independent across stores (sigma_i = sqrt(mu_i)).

A split is a fixed set of samples: demand traces (samples x periods x stores) and initial states,
drawn from a torch generator seeded with the split's own seed (from the problem's random stream
``ctx.problem_random.child(<split>)``), so every call to ``Split.chunks`` yields the same
numbers. Long splits (the test split) are generated chunk by chunk on every pass instead of
being stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from optbench.contracts.inventory import InventorySpec
from optbench.problems.inventory.dynamics import NetworkState

LAWS = ("normal", "poisson")
SPLITS = ("train", "dev", "test")
#: demand tensors above this many elements are regenerated chunk by chunk on every pass
STORE_LIMIT = 1 << 24
CHUNK_PERIODS = 256


@dataclass(frozen=True)
class DemandLaw:
    law: str
    mean: torch.Tensor  # (n,)
    std: torch.Tensor  # (n,) (normal only)
    correlation: float = 0.0

    def sample(self, n_samples: int, n_periods: int, generator: torch.Generator) -> torch.Tensor:
        """A (n_samples, n_periods, n_stores) tensor of demands."""
        mean = self.mean
        shape = (n_samples, n_periods, mean.shape[0])
        if self.law == "poisson":
            rates = mean.expand(shape).contiguous()
            return torch.poisson(rates, generator=generator)
        z = torch.randn(shape, generator=generator, dtype=mean.dtype, device=mean.device)
        if self.correlation > 0:
            common = torch.randn(
                (*shape[:2], 1), generator=generator, dtype=mean.dtype, device=mean.device
            )
            z = np.sqrt(self.correlation) * common + np.sqrt(1 - self.correlation) * z
        return (mean + self.std * z).clamp(min=0)


UPSTREAM_INITIAL = ("zero", "uniform")


def initial_state(
    spec: InventorySpec, n_samples: int, generator: torch.Generator, upstream: str = "zero"
) -> NetworkState:
    """Random initial states. Stores: on hand and every pipeline slot ~ U[0, 1] x the store's
    mean demand (rounded down for integer demand), as the authors' ``generate_initial_inventories``.
    Upstream nodes: ``zero`` (empty, no order in transit: the authors'
    ``generate_initial_warehouse_inventory`` / ``..._echelon_inventory``) or ``uniform`` (on hand
    and every pipeline slot ~ U[0, 1] x the total mean demand)."""
    mean, n = spec.demand_mean, spec.n_stores
    dtype, device = mean.dtype, mean.device

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=generator, dtype=dtype, device=device)

    lead = torch.tensor(spec.store_lead_times, device=device)
    lmax = int(lead.max())
    store_on_hand = uniform(n_samples, n) * mean
    columns = torch.arange(lmax, device=device)
    live = (columns[None, :] < lead[:, None]).to(dtype)  # slots within each store's lead time
    store_pipeline = uniform(n_samples, n, lmax) * mean[:, None] * live
    total = mean.sum()
    if upstream == "uniform":
        up_on_hand = [uniform(n_samples) * total for _ in spec.upstream_lead_times]
        up_pipeline = [uniform(n_samples, lead_k) * total for lead_k in spec.upstream_lead_times]
    else:
        up_on_hand = [
            torch.zeros(n_samples, dtype=dtype, device=device) for _ in spec.upstream_lead_times
        ]
        up_pipeline = [
            torch.zeros(n_samples, lead_k, dtype=dtype, device=device)
            for lead_k in spec.upstream_lead_times
        ]
    state = NetworkState(store_on_hand, store_pipeline, up_on_hand, up_pipeline)
    if spec.integer_demand:
        state = NetworkState(
            store_on_hand.floor(),
            store_pipeline.floor(),
            [x.floor() for x in up_on_hand],
            [x.floor() for x in up_pipeline],
        )
    return state


class Split:
    """The fixed samples of one split: initial states and demand traces, drawn from ``seed``."""

    def __init__(
        self,
        name: str,
        spec: InventorySpec,
        law: DemandLaw,
        n_samples: int,
        n_periods: int,
        warmup: int,
        seed: int,
        upstream_initial: str = "zero",
    ) -> None:
        self.name, self.spec, self.law = name, spec, law
        self.upstream_initial = upstream_initial
        self.n_samples, self.n_periods, self.warmup = n_samples, n_periods, warmup
        self.seed = seed
        generator = self._generator()
        self.initial = initial_state(spec, n_samples, generator, upstream_initial)
        self.stored = n_samples * n_periods * spec.n_stores <= STORE_LIMIT
        self.demand = law.sample(n_samples, n_periods, generator) if self.stored else None

    def _generator(self) -> torch.Generator:
        generator = torch.Generator(device=self.spec.demand_mean.device)
        generator.manual_seed(self.seed)
        return generator

    def chunks(self, samples: torch.Tensor | None = None) -> Iterator[torch.Tensor]:
        """The demand traces of the split (or of ``samples``), in chunks of periods."""
        if self.demand is not None:
            yield self.demand if samples is None else self.demand[samples]
            return
        if samples is not None:
            raise ValueError(f"split '{self.name}' is streamed: simulate all its samples at once")
        generator = self._generator()
        initial_state(self.spec, self.n_samples, generator, self.upstream_initial)  # as __init__
        for start in range(0, self.n_periods, CHUNK_PERIODS):
            periods = min(CHUNK_PERIODS, self.n_periods - start)
            yield self.law.sample(self.n_samples, periods, generator)
