"""The period-by-period dynamics of an inventory network, batched over samples in torch.

Alvo, Russo and Kanoria, "Deep Reinforcement Learning for Inventory Networks: Toward Reliable
Policy Optimization" (2023-25), Section 2 and the settings of Section 5. One period t, for every
sample of the batch at once:

1. arrivals: every node receives the order due this period (placed L periods ago);
2. the policy observes (on hand, outstanding orders) and requests an order for every node;
3. each upstream node ships to its children from its on-hand inventory; if the children's
   requests exceed it, every request is scaled by the same factor (proportional allocation). The
   topmost node orders from an outside supplier with unlimited stock;
4. shipments enter the pipelines (lead time 0: they arrive at once, before demand);
5. demand D_t is realised at the stores: post = on_hand - D_t, store cost
   ``p * max(-post, 0) + h * max(post, 0)``; lost sales keep ``max(post, 0)``, backlogging keeps
   ``post``; upstream node k costs ``h_k * on_hand_k`` (after shipping and receiving);
6. the period's cost is the total over nodes divided by the number of stores.

The cost of a sample is the mean period cost over the periods t >= warmup. Every operation is
differentiable almost everywhere (``relu``, ``minimum``), so the cost of a sample is a pathwise
differentiable function of the policy's parameters (the "hindsight" gradient of HDPO).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from optbench.contracts.inventory import InventoryPolicy, InventorySpec, Observation, Simulation


@dataclass
class NetworkState:
    """The state between periods: on hand after demand, and every order in transit.

    ``store_pipeline`` (B, n, Lmax): column j arrives at the start of the period j + 1 from now;
    ``upstream_pipeline``: per upstream node a (B, L_k) tensor, same convention.
    """

    store_on_hand: torch.Tensor
    store_pipeline: torch.Tensor
    upstream_on_hand: list[torch.Tensor]
    upstream_pipeline: list[torch.Tensor]

    def take(self, samples: torch.Tensor | None) -> NetworkState:
        """The state of the ``samples`` subset (all samples for ``None``)."""
        if samples is None:
            return self
        return NetworkState(
            self.store_on_hand[samples],
            self.store_pipeline[samples],
            [x[samples] for x in self.upstream_on_hand],
            [x[samples] for x in self.upstream_pipeline],
        )


class Dynamics:
    """The dynamics of the network described by ``spec`` (see the module docstring)."""

    def __init__(self, spec: InventorySpec) -> None:
        self.spec = spec
        ref = spec.demand_mean
        self.n = spec.n_stores
        lead = torch.tensor(spec.store_lead_times, device=ref.device)
        self.store_lmax = int(lead.max())
        #: one-hot of the pipeline column an order of each store enters (none for lead time 0)
        self.place = F.one_hot((lead - 1).clamp(min=0), max(self.store_lmax, 1)).to(ref.dtype)
        self.place = self.place * (lead > 0).to(ref.dtype)[:, None]
        self.immediate = (lead == 0).to(ref.dtype)  # stores whose orders arrive at once
        self.any_immediate = bool((lead == 0).any())
        #: every store has the same lead time >= 1: an order is appended to the pipeline
        self.append = bool((lead == self.store_lmax).all()) and self.store_lmax > 0
        self.h = spec.store_holding_costs
        self.p = spec.store_underage_costs
        self.h_up = [float(h) for h in spec.upstream_holding_costs]
        self.up_lead = spec.upstream_lead_times

    def run(
        self,
        policy: InventoryPolicy,
        state: NetworkState,
        demands: Iterable[torch.Tensor],
        warmup: int,
        keep_periods: bool = False,
    ) -> Simulation:
        """Simulate from ``state`` over the demand chunks (each (B, T_chunk, n_stores))."""
        n, K = self.n, len(self.up_lead)
        on_hand = state.store_on_hand
        pipe = state.store_pipeline
        up_on_hand = list(state.upstream_on_hand)
        up_pipe = list(state.upstream_pipeline)
        total = torch.zeros_like(on_hand[:, 0])
        periods: list[torch.Tensor] = []
        t = 0
        for chunk in demands:
            for demand in chunk.unbind(1):
                # 1. arrivals
                if self.store_lmax > 0:
                    on_hand = on_hand + pipe[:, :, 0]
                    outstanding = pipe[:, :, 1:]
                else:
                    outstanding = pipe[:, :, :0]
                for k in range(K):
                    if self.up_lead[k] > 0:
                        up_on_hand[k] = up_on_hand[k] + up_pipe[k][:, 0]
                        up_pipe[k] = up_pipe[k][:, 1:]
                # 2. decisions
                obs = Observation(
                    on_hand,
                    outstanding,
                    torch.stack(up_on_hand, -1) if K else on_hand[:, :0],
                    tuple(up_pipe),
                    t,
                )
                requests = F.relu(policy(obs))
                # 3. shipments, proportionally rationed by each supplier's on-hand inventory
                store_ship = requests[:, :n]
                up_ship = [requests[:, n + k] for k in range(K)]
                for k in range(K):
                    asked = store_ship.sum(-1) if k == 0 else up_ship[k - 1]
                    fill = _fill_rate(up_on_hand[k], asked)
                    if k == 0:
                        store_ship = store_ship * fill[:, None]
                    else:
                        up_ship[k - 1] = up_ship[k - 1] * fill
                    up_on_hand[k] = F.relu(up_on_hand[k] - asked * fill)  # >= 0 despite rounding
                # 4. shipments enter the pipelines
                if self.append:
                    pipe = torch.cat([outstanding, store_ship[:, :, None]], -1)
                elif self.store_lmax > 0:
                    pipe = F.pad(outstanding, (0, 1)) + store_ship[:, :, None] * self.place
                if self.any_immediate:
                    on_hand = on_hand + store_ship * self.immediate
                for k in range(K):
                    if self.up_lead[k] > 0:
                        up_pipe[k] = torch.cat([up_pipe[k], up_ship[k][:, None]], -1)
                    else:
                        up_on_hand[k] = up_on_hand[k] + up_ship[k]
                # 5. demand and costs
                post = on_hand - demand
                over = F.relu(post)
                under = over - post
                cost = (self.h * over + self.p * under).sum(-1)
                for k in range(K):
                    cost = cost + self.h_up[k] * up_on_hand[k]
                if n > 1:
                    cost = cost / n
                on_hand = over if self.spec.lost_sales else post
                if t >= warmup:
                    total = total + cost
                if keep_periods:
                    periods.append(cost)
                t += 1
        if t <= warmup:
            raise ValueError(f"simulated {t} periods, not more than the warm-up of {warmup}")
        kept = torch.stack(periods, 1) if keep_periods else None
        return Simulation(total / (t - warmup), warmup, kept)


def _fill_rate(available: torch.Tensor, asked: torch.Tensor) -> torch.Tensor:
    """min(1, available / asked) for available >= 0 and asked >= 0, 1 where nothing is asked;
    differentiable in both, and never 0/0 (both branches of ``where`` are evaluated)."""
    available = F.relu(available)
    short = asked > available  # implies asked > 0
    ones = torch.ones_like(asked)
    return torch.where(short, available / torch.where(short, asked, ones), ones)
