"""Kind ``inventory``: a differentiable simulator of an inventory network over demand samples.

The small domain types a policy and an algorithm need: the network's ``InventorySpec``, the
``Observation`` a policy sees, a ``Simulation``'s outcome, ``InventoryPolicy`` and the
``ParametricPolicy`` that search methods move within bounds (Alvo, Russo, Kanoria, "Deep
Reinforcement Learning for Inventory Networks: Toward Reliable Policy Optimization").
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from optbench.contracts.problem import Problem, ProblemKind


@dataclass(frozen=True)
class InventorySpec:
    """What a policy may know about an inventory network (all tensors on the run's device/dtype).

    Topology: ``n_stores`` stores face demand; above them a chain of ``n_upstream`` nodes: upstream
    node 0 supplies every store, node k supplies node k - 1, and the last one orders from an
    outside supplier with unlimited stock (``n_upstream = 0``: the stores order from outside).
    An order placed by a node with lead time L arrives at the start of the period L periods later
    (L = 0: in the same period, before demand).
    """

    n_stores: int
    store_lead_times: tuple[int, ...]  # per store
    upstream_lead_times: tuple[int, ...]  # per upstream node, from the stores' supplier upward
    store_holding_costs: torch.Tensor  # (n_stores,) h per unit left after demand
    store_underage_costs: torch.Tensor  # (n_stores,) p per unit short (lost or backlogged)
    upstream_holding_costs: torch.Tensor  # (n_upstream,) per unit on hand at period end
    demand_mean: torch.Tensor  # (n_stores,) mean demand per period
    demand_std: torch.Tensor  # (n_stores,) its standard deviation
    lost_sales: bool  # unmet demand lost (True) or backlogged (False)
    integer_demand: bool  # demand takes integer values (Poisson)
    heuristic: str  # the parametric family that is the natural reference for this network

    @property
    def n_upstream(self) -> int:
        return len(self.upstream_lead_times)

    @property
    def n_nodes(self) -> int:
        """Number of ordering decisions per period: stores first, then upstream nodes."""
        return self.n_stores + self.n_upstream

    @property
    def store_pipeline_size(self) -> int:
        """Columns of ``Observation.store_pipeline``: max store lead time - 1 (at least 0)."""
        return max(max(self.store_lead_times) - 1, 0)


@dataclass
class Observation:
    """The state a policy sees at the start of a period, after this period's arrivals.

    ``store_on_hand`` (B, n_stores): inventory on hand (negative: backlog).
    ``store_pipeline`` (B, n_stores, P): outstanding store orders; column j arrives j + 1
    periods from now (zero beyond a store's own lead time - 1).
    ``upstream_on_hand`` (B, n_upstream); ``upstream_pipeline``: per upstream node k a
    (B, L_k - 1) tensor of its outstanding orders, same column convention.
    ``period``: the period index t (0-based).
    """

    store_on_hand: torch.Tensor
    store_pipeline: torch.Tensor
    upstream_on_hand: torch.Tensor
    upstream_pipeline: tuple[torch.Tensor, ...]
    period: int

    @property
    def batch_size(self) -> int:
        return self.store_on_hand.shape[0]

    def store_position(self) -> torch.Tensor:
        """Installation inventory position of each store: on hand + outstanding (B, n_stores)."""
        return self.store_on_hand + self.store_pipeline.sum(-1)

    def upstream_position(self) -> torch.Tensor:
        """Installation inventory position of each upstream node (B, n_upstream)."""
        outstanding = [p.sum(-1) for p in self.upstream_pipeline]
        if not outstanding:
            return self.upstream_on_hand
        return self.upstream_on_hand + torch.stack(outstanding, -1)


@dataclass
class Simulation:
    """The outcome of simulating a policy on the samples of a split.

    ``cost`` (B,): per sample, the cost per period per store averaged over the periods
    t >= ``warmup``; differentiable in the policy's parameters. ``period_costs`` (B, T): the
    cost of every period per store (only when asked for).
    """

    cost: torch.Tensor
    warmup: int
    period_costs: torch.Tensor | None = None


#: A policy maps an ``Observation`` to the requested order of every node (B, n_nodes): stores
#: first, then upstream nodes. Requests are >= 0 (negative values are treated as 0); a node's
#: supplier ships at most what it has on hand, scaling its children's requests proportionally.
InventoryPolicy = Callable[[Observation], torch.Tensor]


class ParametricPolicy(torch.nn.Module):
    """A policy given by a flat parameter vector ``theta`` with box ``bounds()`` (heuristics:
    base-stock levels, caps, echelon levels, quantiles). Search methods move ``theta`` within
    the bounds; gradient methods train it like any module parameter."""

    theta: torch.nn.Parameter

    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Lower and upper bounds of ``theta`` (same shape), for search methods."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """The policy's parameters in the problem's units (levels, caps), for logging."""
        return {}


class InventoryProblem(Problem):
    """An inventory network simulated over fixed demand samples in three splits.

    ``train`` (optimise on it), ``dev`` (model selection), ``test`` (``evaluate``): each a fixed
    set of demand traces and initial states, drawn from seeds derived from the run's seed, with
    its own number of samples, periods and warm-up periods (excluded from the cost).

    ``simulate(policy, split, samples)`` runs the dynamics in batch over the split's samples (or
    the ``samples`` index subset), differentiably in the policy's parameters; oracle units:
    ``simulations`` (calls) and ``sample_periods`` (samples x periods simulated).
    ``evaluate(policy)``: ``test_cost`` and ``dev_cost`` (cost per period per store), ``gap_pct``
    = 100 (test_cost - ref_cost) / ref_cost against the reference (the known optimum's expected
    cost where known, else the best heuristic's test cost) and ``gap_crn_pct`` against the
    reference policy simulated on the same test samples (common random numbers).
    """

    kind: ClassVar[ProblemKind] = ProblemKind.INVENTORY
    headline = ("gap_pct", "min")
    spec: InventorySpec

    @abstractmethod
    def split_size(self, split: str) -> int:
        """Number of samples of ``split`` (``train``, ``dev`` or ``test``)."""

    @abstractmethod
    def simulate(
        self,
        policy: InventoryPolicy,
        split: str = "train",
        samples: torch.Tensor | None = None,
        keep_periods: bool = False,
    ) -> Simulation:
        """Simulate ``policy`` on ``split`` (all samples, or the ``samples`` index tensor)."""
