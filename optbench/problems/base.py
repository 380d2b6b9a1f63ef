"""The problem contracts.

A problem owns its data, its oracles and its scoring: it *scores*, the algorithm only *proposes*.
Every algorithm paired with a problem is measured by the same ``evaluate`` and charged in the same
oracle units, which is what makes a comparison fair.

Life cycle, driven by the runner:

1. ``__init__(**config)``: store the hyperparameters from the YAML (cheap, no data loaded). Raise
   ``ConfigError`` for a value out of range, with a message starting with the parameter's name.
2. ``setup(ctx)``: load data, build tensors on ``ctx.device`` with ``ctx.dtype``, draw any random
   instance from ``ctx.generator`` / ``ctx.rng``. Raise ``DataError`` naming the file for bad data.
3. oracles, called by the algorithm; each call is counted in ``self.counters``.
4. ``evaluate(solution)``: the metrics of a proposed solution, called by the runner outside the
   algorithm's clock. Deterministic; must not touch the counters.
5. ``describe()``: sizes and facts worth logging (logged once per run as ``problem.*`` tags).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

import torch

from optbench.platform.context import RunContext


class ProblemKind(StrEnum):
    """The oracle interface a problem offers; an algorithm declares the kinds it accepts."""

    #: empirical risk (1/N) sum_i f_i(x): full and minibatch loss, gradient, Hessian-vector product.
    FINITE_SUM = "finite_sum"
    #: equality-constrained program min f(x) s.t. c(x) = 0: f, grad f, c, J, Hessian of the
    #: Lagrangian, x0, lambda0.
    NLP = "nlp"
    #: a differentiable simulator of an inventory network over demand samples.
    INVENTORY = "inventory"
    #: a stream of related linear systems; the cost of an instance is the solver's iteration count.
    PARAMETER_SEQUENCE = "parameter_sequence"
    #: a stream of token batches with router scores; the cost is the expert load.
    ROUTING_STREAM = "routing_stream"


class Problem(ABC):
    """Base of every problem. Subclasses set ``kind`` and implement the life cycle above."""

    kind: ClassVar[ProblemKind]

    def __init__(self) -> None:
        #: oracle calls by name (e.g. ``grad``, ``hvp``, ``samples``); reported at every evaluation.
        self.counters: Counter[str] = Counter()

    @abstractmethod
    def setup(self, ctx: RunContext) -> None:
        """Load data and build the instance on ``ctx.device`` / ``ctx.dtype``."""

    @abstractmethod
    def evaluate(self, solution: Any) -> dict[str, float]:
        """Metrics of ``solution`` (losses, residuals, gaps). Deterministic, uncounted."""

    def describe(self) -> dict[str, Any]:
        """Sizes and facts worth logging: dimensions, sample counts, known optimum, source file."""
        return {}


class FiniteSumProblem(Problem):
    """``f(x) = (1/N) sum_i f_i(x) + r(x)`` over ``N = n_samples`` samples, ``x`` in R^dim.

    ``batch`` arguments are index tensors (on ``ctx.device``) selecting the samples of a
    minibatch; ``None`` means the full sum. Oracles count calls under ``loss``, ``grad``, ``hvp``
    and ``hessian``, and the samples they touch under ``samples`` (so ``samples / N`` is the
    number of data passes an algorithm used).
    """

    kind = ProblemKind.FINITE_SUM
    n_samples: int
    dim: int

    @abstractmethod
    def initial_point(self) -> torch.Tensor:
        """The starting point x0 (a fresh tensor the algorithm may modify)."""

    @abstractmethod
    def loss(self, x: torch.Tensor, batch: torch.Tensor | None = None) -> float:
        """``f(x)`` on the batch (mean over its samples plus the regulariser)."""

    @abstractmethod
    def loss_grad(
        self, x: torch.Tensor, batch: torch.Tensor | None = None
    ) -> tuple[float, torch.Tensor]:
        """``(f(x), grad f(x))`` on the batch."""

    @abstractmethod
    def hvp(
        self, x: torch.Tensor, v: torch.Tensor, batch: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The Hessian-vector product ``H(x) v`` on the batch."""

    def hessian(self, x: torch.Tensor) -> torch.Tensor:
        """The full Hessian (dim x dim). Default: ``dim`` Hessian-vector products."""
        eye = torch.eye(self.dim, dtype=x.dtype, device=x.device)
        return torch.stack([self.hvp(x, eye[i]) for i in range(self.dim)], dim=1)

    def _count(self, oracle: str, batch: torch.Tensor | None) -> None:
        self.counters[oracle] += 1
        self.counters["samples"] += self.n_samples if batch is None else len(batch)


# =================================================================================================
# kind `inventory`: a differentiable simulator of an inventory network over demand samples
# =================================================================================================


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

    kind = ProblemKind.INVENTORY
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
