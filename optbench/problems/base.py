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
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from optbench.platform.context import RunContext
from optbench.platform.errors import CompatibilityError, ConfigError, DeviceError


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


# ==========================================================================================

# kind `parameter_sequence`: a stream of related linear systems, one solver parameter per instance
# =================================================================================================


class ParameterSequenceProblem(Problem):
    """A sequence of ``n_instances`` linear systems solved one after another by a solver with
    one scalar parameter (SOR's or SSOR's relaxation ``omega``); the cost of an instance is the
    solver's iteration count (Khodak, Chow, Balcan, Talwalkar, "Learning to Relax", ICLR 2024).

    The problem owns the sequence, the solver and the cost. An online algorithm, at instance
    ``t = 0, 1, ...`` in order: reads ``context(t)`` (a scalar describing instance t, such as a
    diagonal shift or a diffusion coefficient, or None when the problem offers none), proposes a
    parameter in ``parameter_range``, and calls ``solve(t, parameter)``, which solves instance
    ``t`` with it and returns the iteration count (its only feedback: bandit feedback). One
    runner step is one instance; the runner's ``budget.max_steps`` (``ctx.max_steps``) is the
    number of instances. ``solve`` counts ``instances`` and ``iterations`` in ``counters``.

    ``evaluate`` reports, over the instances solved so far (``s`` of them):
    ``cumulative_iterations``; ``best_fixed_iterations`` (the best single parameter of
    ``oracle_grid`` in hindsight over those s instances) and ``instance_optimal_iterations``
    (each instance solved with its own optimal parameter); the ratios
    ``ratio_to_best_fixed`` and ``ratio_to_instance_optimal``; and the regrets (differences)
    ``regret_best_fixed`` and ``regret_instance_optimal``. The hindsight baselines need the cost
    of every instance at every grid parameter: an expensive table computed lazily on first need
    and cached on disk (see the concrete problem for the cache key).

    Oracle interface, for oracle algorithms only (they are marked ``oracle: true`` in reports):
    ``oracle_grid``, ``cost_table()`` and ``instance_optimal_parameters()``.
    """

    kind = ProblemKind.PARAMETER_SEQUENCE
    #: the number of instances in the sequence (set by ``setup`` from ``ctx.max_steps``).
    n_instances: int
    #: the interval a proposed parameter must lie in.
    parameter_range: tuple[float, float]
    #: the interval the contexts lie in, or None when the problem offers no context.
    context_range: tuple[float, float] | None = None

    @abstractmethod
    def context(self, t: int) -> float | None:
        """The context of instance ``t`` (seen before choosing its parameter), or None."""

    @abstractmethod
    def solve(self, t: int, parameter: float) -> int:
        """Solve instance ``t`` (the next unsolved one) with ``parameter``; its iteration count."""

    # -- oracle interface (hindsight information; never for online learners) -------------------
    @property
    @abstractmethod
    def oracle_grid(self) -> Any:
        """The parameters (a 1-D array) over which the best fixed parameter is sought."""

    @abstractmethod
    def cost_table(self) -> Any:
        """Iterations of every instance at every ``oracle_grid`` parameter: ``(n_instances,
        len(grid))`` integer array. Expensive: computed once, cached. Uncounted."""

    @abstractmethod
    def instance_optimal_parameters(self) -> Any:
        """The instance-optimal parameter of every instance (1-D array). Uncounted."""


# =================================================================================================
# routing_stream: token batches routed to experts (mixture-of-experts load balancing)
# =================================================================================================
#
# A routing-stream problem serves a stream of token batches. For every routed layer of a batch it
# has router scores s (tokens x N experts, each in (0, 1) from a sigmoid or softmax gate); the
# algorithm's ``Router`` picks K experts per token; the problem gates with the *raw* scores
# (Wang et al. 2024, "Auxiliary-Loss-Free Load Balancing Strategy for Mixture-of-Experts":
# g_{i,t} = s_{i,t} if i is selected, else 0), so whatever an algorithm adds to the scores to
# choose (a bias) only selects, it never weights. The cost is the expert load:
#
#   load_i  = number of (token, slot) assignments routed to expert i in the batch,
#   MaxVio  = (max_i load_i - mean_i load_i) / mean_i load_i           (Wang et al. 2024),
#
# per batch (``maxvio_batch``) and over a held-out set (``maxvio_global``: loads summed over it).
# One runner step is one batch: the algorithm draws it (``next_batch``), routes it through the
# problem (``forward``), hands the routed batch back to be scored (``score_batch``: loads, MaxVio,
# idle experts, routing quality, recorded by the problem as the online history), and may then
# update its router from those loads, which affect the *next* batch only.
#
# Two kinds of instance share the contract:
# - fixed scores (``learnable_router = False``, e.g. ``routing_stream``): the scores are data; the
#   problem also offers the exact per-batch optimum (``optimal_routing``) for regret;
# - a learnable router (``learnable_router = True``, e.g. ``moe_lm``): the scores come from a
#   model the problem defines (``init_model``) and the algorithm trains; ``forward`` then returns
#   the task loss with its autograd graph, and the scores keep theirs (an auxiliary loss may use
#   them).


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


@dataclass
class BatchScore:
    """The problem's verdict on one routed batch: ``loads`` (n_layers, N) and the metrics
    (``maxvio_batch`` averaged over layers, ``idle_experts``, ``dropped``, and what else the
    problem measures), which the algorithm reports as its progress metrics."""

    loads: torch.Tensor
    metrics: dict[str, float]


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


class RoutingStreamProblem(Problem):
    """A stream of token batches whose router scores are routed to ``n_experts`` experts,
    ``top_k`` per token, in ``n_layers`` routed layers; the cost is the expert load.

    Oracles, counted in ``self.counters``: ``batches`` and ``tokens`` served by ``next_batch``;
    ``lp`` exact per-batch optima solved for an algorithm.
    """

    kind = ProblemKind.ROUTING_STREAM
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
        """Route ``batch`` with ``router`` (through ``model`` for a learnable router)."""

    @abstractmethod
    def score_batch(self, routed: RoutedBatch) -> BatchScore:
        """Loads and metrics of a routed training batch; recorded in the problem's history."""

    def optimal_routing(self, scores: torch.Tensor, capacity_factor: float = 1.0) -> Any:
        """The exact optimum of one batch (an object with ``selected`` and ``objective``):
        maximise the routed scores, K experts per token, at most ceil(capacity_factor T K / N)
        tokens per expert. Offered by fixed-score problems only."""
        raise CompatibilityError(
            f"problem {type(self).__name__} has no exact per-batch optimum (learnable router)"
        )


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


# ================================================================================================
# kind `nlp`: equality-constrained nonlinear programs (CUTEst, constrained logistic regression,
# PDE-constrained control).
# ================================================================================================


@dataclass
class NLPIterate:
    """A primal-dual point of an ``NLPProblem``: ``x`` in R^n and multipliers ``lam`` in R^m.

    ``lam=None`` (methods that keep no multipliers, e.g. SLSQP's callback) means the problem
    scores ``x`` with its least-squares multipliers ``argmin_lam ||grad f(x) + J(x)^T lam||``.
    """

    x: np.ndarray
    lam: np.ndarray | None = None


class NLPProblem(Problem):
    """``min f(x)  s.t.  c(x) = 0`` with ``x`` in R^n and ``c: R^n -> R^m``.

    Conventions (the spec every ``nlp`` problem and algorithm follows):

    - Lagrangian ``L(x, lam) = f(x) + lam^T c(x)``; ``J(x)`` is the m x n Jacobian of ``c``.
    - Vectors are 1-D NumPy float64 arrays; matrices are dense ``np.ndarray`` or SciPy sparse
      (algorithms accept both). The family computes with NumPy/SciPy on the CPU: S2MPJ's CUTEst
      oracles and SciPy's sparse solvers and GMRES are CPU NumPy code. ``check_context`` refuses
      another device or dtype with a one-line error.
    - Public oracles are counted in ``self.counters`` (keys ``f``, ``grad``, ``c``, ``jac``,
      ``hess``, ``hvp``; ``evaluations`` is their total, the cost unit of the suite reports).
      Combined oracles count each part (``f_grad`` counts ``f`` and ``grad``).
    - Subclasses implement the uncounted ``_f``, ``_grad``, ``_c``, ``_jac``, ``_hess_lag`` and
      may override ``_f_grad``, ``_c_jac``, ``_hess_obj``, ``_hess_lag_vec`` when a combined
      evaluation is cheaper. ``evaluate`` uses only the uncounted ones.
    - ``evaluate(NLPIterate | x)`` returns ``f``, ``c_norm`` (||c||_2), ``grad_lag_norm``
      (||grad_x L||_2), ``kkt`` (||(grad_x L, c)||_2) and, when the optimal value ``f_star`` is
      known, ``gap`` = |f - f_star|.
    """

    kind = ProblemKind.NLP
    #: number of variables and of equality constraints (set in ``setup``).
    n: int
    m: int
    #: known optimal objective value, or None.
    f_star: float | None = None

    ORACLES: ClassVar[tuple[str, ...]] = ("f", "grad", "c", "jac", "hess", "hvp")

    @staticmethod
    def check_context(ctx: RunContext) -> None:
        """Refuse a device or dtype the NumPy/SciPy family cannot honour."""
        if ctx.device.type != "cpu":
            raise DeviceError(
                f"device.type: nlp problems compute with NumPy/SciPy on the CPU, got {ctx.device}"
            )
        if ctx.dtype != torch.float64:
            raise ConfigError(f"device.dtype: nlp problems compute in float64, got {ctx.dtype}")

    # -- starting point --------------------------------------------------------------------------
    @abstractmethod
    def initial_point(self) -> np.ndarray:
        """x0 (a fresh array the algorithm may modify)."""

    @abstractmethod
    def initial_multiplier(self) -> np.ndarray:
        """lambda0 (a fresh array)."""

    # -- uncounted implementations ---------------------------------------------------------------
    @abstractmethod
    def _f(self, x: np.ndarray) -> float: ...

    @abstractmethod
    def _grad(self, x: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _c(self, x: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _jac(self, x: np.ndarray) -> Any: ...

    @abstractmethod
    def _hess_lag(self, x: np.ndarray, lam: np.ndarray) -> Any: ...

    def _f_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        return self._f(x), self._grad(x)

    def _c_jac(self, x: np.ndarray) -> tuple[np.ndarray, Any]:
        return self._c(x), self._jac(x)

    def _hess_obj(self, x: np.ndarray) -> Any:
        return self._hess_lag(x, np.zeros(self.m))

    def _hess_lag_vec(self, x: np.ndarray, lam: np.ndarray, v: np.ndarray) -> np.ndarray:
        return np.asarray(self._hess_lag(x, lam) @ v).ravel()

    # -- counted oracles -------------------------------------------------------------------------
    def _count(self, *oracles: str) -> None:
        for oracle in oracles:
            self.counters[oracle] += 1
        self.counters["evaluations"] += len(oracles)

    def f(self, x: np.ndarray) -> float:
        """``f(x)``."""
        self._count("f")
        return self._f(x)

    def grad(self, x: np.ndarray) -> np.ndarray:
        """``grad f(x)`` (n,)."""
        self._count("grad")
        return self._grad(x)

    def f_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """``(f(x), grad f(x))``; counts ``f`` and ``grad``."""
        self._count("f", "grad")
        return self._f_grad(x)

    def c(self, x: np.ndarray) -> np.ndarray:
        """``c(x)`` (m,)."""
        self._count("c")
        return self._c(x)

    def jac(self, x: np.ndarray) -> Any:
        """``J(x)`` (m x n, dense or sparse)."""
        self._count("jac")
        return self._jac(x)

    def c_jac(self, x: np.ndarray) -> tuple[np.ndarray, Any]:
        """``(c(x), J(x))``; counts ``c`` and ``jac``."""
        self._count("c", "jac")
        return self._c_jac(x)

    def hess_lag(self, x: np.ndarray, lam: np.ndarray) -> Any:
        """``grad^2_xx L(x, lam)`` (n x n, symmetric, dense or sparse); counts ``hess``."""
        self._count("hess")
        return self._hess_lag(x, lam)

    def hess_obj(self, x: np.ndarray) -> Any:
        """``grad^2 f(x)`` (the Lagrangian Hessian at lam = 0); counts ``hess``."""
        self._count("hess")
        return self._hess_obj(x)

    def hess_lag_vec(self, x: np.ndarray, lam: np.ndarray, v: np.ndarray) -> np.ndarray:
        """``grad^2_xx L(x, lam) v`` (n,); counts ``hvp``."""
        self._count("hvp")
        return self._hess_lag_vec(x, lam, v)

    # -- scoring ---------------------------------------------------------------------------------
    def least_squares_multiplier(
        self, x: np.ndarray, grad: np.ndarray | None = None, jac: Any = None
    ) -> np.ndarray:
        """``argmin_lam ||grad f(x) + J(x)^T lam||_2`` (uncounted; ``grad`` and ``jac`` at x
        when the caller has them)."""
        jac = self._jac(x) if jac is None else jac
        grad = self._grad(x) if grad is None else grad
        dense = jac.toarray() if hasattr(jac, "toarray") else np.asarray(jac)
        return np.linalg.lstsq(dense.T, -grad, rcond=None)[0]

    def evaluate(self, solution: NLPIterate | np.ndarray) -> dict[str, float]:
        if isinstance(solution, NLPIterate):
            x, lam = solution.x, solution.lam
        else:
            x, lam = np.asarray(solution), None
        f, grad = self._f_grad(x)
        c, jac = self._c_jac(x)
        if lam is None:
            lam = self.least_squares_multiplier(x, grad, jac)
        grad_lag = grad + np.asarray(jac.T @ lam).ravel()
        c_norm = float(np.linalg.norm(c))
        grad_lag_norm = float(np.linalg.norm(grad_lag))
        metrics = {
            "f": float(f),
            "c_norm": c_norm,
            "grad_lag_norm": grad_lag_norm,
            "kkt": float(np.hypot(c_norm, grad_lag_norm)),
        }
        if self.f_star is not None:
            metrics["gap"] = abs(float(f) - self.f_star)
        return metrics
