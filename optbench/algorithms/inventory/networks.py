"""Neural policy architectures for inventory networks (the ``configs/policy/`` group).

Alvo, Russo and Kanoria (2023-25), Section 4 and Appendix: a policy network maps the raw state
(on hand and outstanding orders of every node) to orders.

- ``VanillaMLP``: one multilayer perceptron on the whole state. Outputs per node
  ``mean_demand * softplus(z)`` (``allocation=request``, the paper's one-store network), or, with
  one warehouse above several stores (``allocation=softmax``), the store shipments as a softmax
  over the stores and a "keep" option times the warehouse's on-hand inventory, so they are always
  feasible (the paper's "vanilla" one-warehouse network), or, for a chain
  (``allocation=fraction``), each node's order as sigmoid(z) times its supplier's on-hand
  inventory, the topmost node's times ``top_bound`` x mean demand (the authors' ``VanillaSerial``
  of neural_networks.py, bound ``warehouse_upper_bound_mult`` = 4).
- ``SymmetricNetwork``: the paper's symmetry-aware architecture with weight sharing between
  sibling stores: one store network, shared by every store, maps a store's own state and
  primitives (mean, cv, costs, lead time) plus a context vector to its order; the context summarises
  the whole network permutation-invariantly (a shared embedding of each store, averaged, plus
  the upstream state). Permuting the stores permutes the orders.

Inputs are scaled by each node's mean demand; outputs are initialised near one period of mean
demand (output bias softplus^-1(1)), as the paper's networks add 1 before the softplus.
"""

from __future__ import annotations

import itertools
import math
from typing import Literal

import torch
from torch import nn

from optbench.contracts.errors import ConfigError
from optbench.contracts.inventory import InventorySpec, Observation

Activation = Literal["elu", "relu", "tanh", "silu"]
ACTIVATIONS = {"elu": nn.ELU, "relu": nn.ReLU, "tanh": nn.Tanh, "silu": nn.SiLU}
ALLOCATIONS = ("auto", "softmax", "request", "fraction")
SOFTPLUS_ONE = math.log(math.e - 1)  # softplus(SOFTPLUS_ONE) = 1


def mlp(sizes: list[int], activation: str, out_bias: float | None = None) -> nn.Sequential:
    """Linear layers of ``sizes`` with ``activation`` between them (none after the last)."""
    if activation not in ACTIVATIONS:
        raise ConfigError(f"activation: unknown '{activation}' (known: {', '.join(ACTIVATIONS)})")
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    if out_bias is not None:
        last = layers[-1]
        assert isinstance(last, nn.Linear)
        with torch.no_grad():
            last.weight.mul_(0.1)
            last.bias.fill_(out_bias)
    return nn.Sequential(*layers)


def _check_hidden(hidden: list[int], key: str) -> list[int]:
    if any(h < 1 for h in hidden):
        raise ConfigError(f"{key}: layer widths must be >= 1, got {hidden}")
    return list(hidden)


def upstream_features(obs: Observation, spec: InventorySpec) -> torch.Tensor:
    """On hand and outstanding orders of the upstream nodes / total mean demand: (B, F_up)."""
    return torch.cat([obs.upstream_on_hand, *obs.upstream_pipeline], -1) / spec.demand_mean.sum()


def feature_scale(spec: InventorySpec) -> torch.Tensor:
    """The mean demand each entry of ``state_features`` is divided by."""
    mean = spec.demand_mean
    P = spec.store_pipeline_size
    n_up = n_state_features(spec) - spec.n_stores * (1 + P)
    return torch.cat([mean, mean.repeat_interleave(P), mean.sum().expand(n_up)])


def state_features(
    obs: Observation, spec: InventorySpec, inverse_scale: torch.Tensor | None = None
) -> torch.Tensor:
    """The raw state, flattened (stores' on hand, their pipelines, upstream nodes) and scaled
    by mean demand: (B, n_features). ``inverse_scale``: 1 / ``feature_scale(spec)``, cached."""
    if inverse_scale is None:
        inverse_scale = 1 / feature_scale(spec)
    parts = [obs.store_on_hand, obs.store_pipeline.flatten(1), obs.upstream_on_hand]
    return torch.cat([*parts, *obs.upstream_pipeline], -1) * inverse_scale


def n_state_features(spec: InventorySpec) -> int:
    n = spec.n_stores
    upstream = spec.n_upstream + sum(max(lead - 1, 0) for lead in spec.upstream_lead_times)
    return n + n * spec.store_pipeline_size + upstream


class VanillaMLP(nn.Module):
    """One MLP on the whole scaled state (see the module docstring)."""

    def __init__(
        self,
        spec: InventorySpec,
        hidden: list[int] | None = None,
        activation: Activation = "elu",
        allocation: Literal["auto", "softmax", "request", "fraction"] = "auto",
        top_bound: float = 4.0,
    ) -> None:
        super().__init__()
        hidden = _check_hidden(hidden if hidden is not None else [32, 32, 32], "hidden")
        if allocation not in ALLOCATIONS:
            known = ", ".join(ALLOCATIONS)
            raise ConfigError(f"allocation: unknown '{allocation}' (known: {known})")
        if allocation == "auto":  # the authors' network for each topology
            if spec.n_upstream == 0:
                allocation = "request"
            else:
                allocation = "softmax" if spec.n_stores > 1 else "fraction"
        if allocation == "softmax" and spec.n_upstream == 0:
            raise ConfigError("allocation: softmax needs an upstream node to allocate from")
        if allocation == "fraction" and (spec.n_stores != 1 or spec.n_upstream == 0):
            raise ConfigError("allocation: fraction needs a chain (one store, upstream nodes)")
        if top_bound <= 0:
            raise ConfigError(f"top_bound: must be > 0, got {top_bound}")
        self.spec, self.allocation = spec, allocation
        n, K = spec.n_stores, spec.n_upstream
        outputs = n + K + (1 if allocation == "softmax" else 0)
        self.net = mlp([n_state_features(spec), *hidden, outputs], activation, SOFTPLUS_ONE)
        if allocation == "softmax":
            with torch.no_grad():  # start by shipping about one period of demand to each store
                self.net[-1].bias[:n] = 0.0
                self.net[-1].bias[n] = math.log(max(n, 1))
        if allocation == "fraction":
            with torch.no_grad():  # start by shipping half of each supplier's stock
                self.net[-1].bias.zero_()
        self.top_bound = top_bound
        self.register_buffer(
            "scale", torch.cat([spec.demand_mean, spec.demand_mean.sum().expand(K)])
        )
        self.register_buffer("inverse_scale", 1 / feature_scale(spec))

    def forward(self, obs: Observation) -> torch.Tensor:
        n = self.spec.n_stores
        z = self.net(state_features(obs, self.spec, self.inverse_scale))
        if self.allocation == "request":
            return self.scale * nn.functional.softplus(z)
        if self.allocation == "fraction":
            top = self.top_bound * self.spec.demand_mean.sum().expand(z.shape[0], 1)
            return torch.sigmoid(z) * torch.cat([obs.upstream_on_hand, top], -1)
        shares = torch.softmax(z[:, : n + 1], -1)[:, :n]
        stores = shares * obs.upstream_on_hand[:, :1]
        upstream = self.scale[n:] * nn.functional.softplus(z[:, n + 1 :])
        return torch.cat([stores, upstream], -1)


class SymmetricNetwork(nn.Module):
    """Weight-shared store network with a permutation-invariant context (module docstring)."""

    def __init__(
        self,
        spec: InventorySpec,
        store_hidden: list[int] | None = None,
        embedding_hidden: list[int] | None = None,
        context_size: int = 32,
        upstream_hidden: list[int] | None = None,
        activation: Activation = "elu",
    ) -> None:
        super().__init__()
        store_hidden = _check_hidden(store_hidden or [32, 32], "store_hidden")
        embedding_hidden = _check_hidden(embedding_hidden or [32], "embedding_hidden")
        upstream_hidden = _check_hidden(upstream_hidden or [16, 16], "upstream_hidden")
        if context_size < 1:
            raise ConfigError(f"context_size: must be >= 1, got {context_size}")
        self.spec = spec
        mean = spec.demand_mean
        lead = torch.as_tensor(spec.store_lead_times, dtype=mean.dtype, device=mean.device)
        p, h = spec.store_underage_costs, spec.store_holding_costs
        primitives = torch.stack(
            [mean / mean.mean(), spec.demand_std / mean, h / h.mean(), p / h / 10, lead / 4], -1
        )
        self.register_buffer("primitives", primitives)  # (n, 5)
        own = 1 + spec.store_pipeline_size + primitives.shape[1]
        up = n_state_features(spec) - spec.n_stores * (1 + spec.store_pipeline_size)
        self.embed = mlp([own, *embedding_hidden, context_size], activation)
        self.context = mlp([context_size + up, context_size, context_size], activation)
        self.store = mlp([own + context_size, *store_hidden, 1], activation, SOFTPLUS_ONE)
        self.upstream = (
            mlp([context_size, *upstream_hidden, spec.n_upstream], activation, SOFTPLUS_ONE)
            if spec.n_upstream
            else None
        )

    def forward(self, obs: Observation) -> torch.Tensor:
        spec = self.spec
        mean = spec.demand_mean
        B, n = obs.store_on_hand.shape
        own = torch.cat(
            [
                (obs.store_on_hand / mean)[:, :, None],
                obs.store_pipeline / mean[:, None],
                self.primitives.expand(B, n, -1),
            ],
            -1,
        )  # (B, n, own)
        upstream = upstream_features(obs, spec)
        pooled = self.embed(own).mean(1)
        context = self.context(torch.cat([pooled, upstream], -1))
        store_in = torch.cat([own, context[:, None, :].expand(B, n, -1)], -1)
        stores = mean * nn.functional.softplus(self.store(store_in)[..., 0])
        if self.upstream is None:
            return stores
        orders = mean.sum() * nn.functional.softplus(self.upstream(context))
        return torch.cat([stores, orders], -1)
