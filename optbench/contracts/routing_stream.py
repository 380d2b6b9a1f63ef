"""Kind ``routing_stream``: token batches routed to experts (mixture-of-experts load balancing).

A routing-stream problem serves a stream of token batches. For every routed layer of a batch it
has router scores s (tokens x N experts, each in (0, 1) from a sigmoid or softmax gate); the
algorithm's ``Router`` picks K experts per token; the problem gates with the *raw* scores
(Wang et al. 2024, "Auxiliary-Loss-Free Load Balancing Strategy for Mixture-of-Experts":
g_{i,t} = s_{i,t} if i is selected, else 0), so whatever an algorithm adds to the scores to
choose (a bias) only selects, it never weights. The cost is the expert load:

  load_i  = number of (token, slot) assignments routed to expert i in the batch,
  MaxVio  = (max_i load_i - mean_i load_i) / mean_i load_i           (Wang et al. 2024),

per batch (``maxvio_batch``) and over a held-out set (``maxvio_global``: loads summed over it).
One runner step is one batch: the algorithm draws it (``next_batch``) and routes it through the
problem (``forward``). ``forward`` is the counted oracle that also *scores* the routed training
batch (loads, MaxVio, idle experts, routing quality) into the problem's online history, which
``evaluate`` reports; the algorithm never relays the problem's verdict. An algorithm may then
update its router from the loads of its own selection (``expert_loads``), which affect the *next*
batch only.

Two kinds of instance share the contract:
- fixed scores (``learnable_router = False``, e.g. ``routing_stream``): the scores are data; the
  problem also offers the exact per-batch optimum (``optimal_routing``) for regret;
- a learnable router (``learnable_router = True``, e.g. ``moe_lm``): the scores come from a
  model the problem defines (``init_model``) and the algorithm trains; ``forward`` then returns
  the task loss with its autograd graph, and the scores keep theirs (an auxiliary loss may use
  them).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch

from optbench.contracts.errors import CompatibilityError
from optbench.contracts.problem import Problem, ProblemKind

#: how a routed expert's score gates its output
Gate = Literal["sigmoid", "softmax"]


class Router(ABC):
    """The routing policy an algorithm proposes: which K experts each token of a batch goes to."""

    @abstractmethod
    def select(self, scores: torch.Tensor, layer: int = 0) -> torch.Tensor:
        """Expert indices, a (T, K) long tensor on ``scores``' device, for the (T, N) router
        ``scores`` of routed layer ``layer``; ``-1`` marks an assignment dropped (over capacity).
        Called without gradient; must not modify ``scores`` nor depend on anything but the
        router's own state (evaluation calls it on held-out batches)."""


@dataclass
class RoutedBatch:
    """One batch after routing: per routed layer the (T, N) scores and (T, K) selections, and
    the task loss (a differentiable scalar for a learnable router, else ``None``)."""

    scores: list[torch.Tensor]
    selected: list[torch.Tensor]
    loss: torch.Tensor | None = None

    def loads(self, n_experts: int) -> torch.Tensor:
        """Assignments per expert of every routed layer, (n_layers, N) float64."""
        return torch.stack([expert_loads(s, n_experts) for s in self.selected])


@dataclass
class RoutingSolution:
    """What a routing algorithm proposes: its router and, for a learnable router, the model."""

    router: Router
    model: torch.nn.Module | None = None


def expert_loads(selected: torch.Tensor, n_experts: int) -> torch.Tensor:
    """Assignments per expert (float, length ``n_experts``) of a (T, K) selection; -1 ignored."""
    flat = selected.reshape(-1)
    flat = flat[flat >= 0]
    return torch.bincount(flat, minlength=n_experts).to(torch.float64)


def max_violation(loads: torch.Tensor) -> torch.Tensor:
    """MaxVio = (max_i load_i - mean load) / mean load along the last axis (0 if nothing routed)."""
    mean = loads.mean(dim=-1)
    return torch.where(mean > 0, (loads.amax(dim=-1) - mean) / mean.clamp_min(1e-300), 0.0)


def capacity(n_tokens: int, n_experts: int, top_k: int, capacity_factor: float) -> int:
    """Per-expert capacity ceil(capacity_factor T K / N) (Switch Transformer's and GShard's
    expert capacity; Fedus et al. 2022, eq. 4)."""
    return math.ceil(capacity_factor * n_tokens * top_k / n_experts - 1e-9)


class RoutingStreamProblem(Problem):
    """A stream of token batches whose router scores are routed to ``n_experts`` experts,
    ``top_k`` per token, in ``n_layers`` routed layers; the cost is the expert load.

    Oracles, counted in ``self.counters``: ``batches`` and ``tokens`` served by ``next_batch``;
    ``lp`` exact per-batch optima solved for an algorithm.
    """

    kind: ClassVar[ProblemKind] = ProblemKind.ROUTING_STREAM
    stream = True
    headline = ("maxvio_global", "min")
    #: True when the scores come from a model the algorithm trains (an auxiliary loss has a
    #: gradient to act on); False when the scores are data.
    learnable_router: ClassVar[bool]
    n_experts: int
    top_k: int
    n_layers: int

    def init_model(self) -> torch.nn.Module | None:
        """A freshly initialised model on the run's device (learnable router), else ``None``."""
        return None

    @abstractmethod
    def next_batch(self) -> Any:
        """The next training batch of the stream (fixed scores: the (T, N) scores)."""

    @abstractmethod
    def forward(
        self, batch: Any, router: Router, model: torch.nn.Module | None = None
    ) -> RoutedBatch:
        """Route the training ``batch`` with ``router`` (through ``model`` for a learnable
        router) and score the routing into the problem's online history."""

    def optimal_routing(self, scores: torch.Tensor, capacity_factor: float = 1.0) -> Any:
        """The exact optimum of one batch (an object with ``selected`` and ``objective``):
        maximise the routed scores, K experts per token, at most ceil(capacity_factor T K / N)
        tokens per expert. Offered by fixed-score problems only."""
        raise CompatibilityError(
            f"problem {type(self).__name__} has no exact per-batch optimum (learnable router)"
        )
