"""``routing_stream``: route a synthetic stream of router scores to experts (fixed scores).

The stream (``stream.ScoreStream``) has Zipf-like expert popularity, token clusters and drift.
One runner step is one batch of ``batch_size`` tokens. The problem scores every routed training
batch in ``forward`` (loads, MaxVio, quality = routed score sum / unconstrained top-K score sum)
and keeps that online history; ``evaluate`` adds the held-out view of the current router, drawn
at the current stream time:

- ``maxvio_global``: MaxVio of the loads summed over a balance set of ``balance_tokens`` fresh
  tokens (Wang et al. 2024's MaxVio_global), and ``maxvio_global_floor``, the same for a router
  whose expected loads are exactly balanced (``balance.balanced_floor``): the sampling floor of
  the measurement, below which no router can be told apart from perfect balance. The default
  65,536 tokens put the floor at 0.05 for N = 64, K = 2 (it is 0.4 on 1,024 tokens);
- on ``heldout_batches`` fresh batches, the per-batch view (``maxvio_heldout``, idle experts,
  dropped, overflow) and the comparison with the exact balanced optimum of each batch
  (``assignment``, HiGHS), whose capacity is ceil(capacity_factor T K / N):

- ``quality_vs_opt``: held-out routed score sum / optimal balanced score sum;
- ``price_of_balance``: 1 - optimal / unconstrained top-K (what perfect balance costs);
- ``regret``: online regret sum_t (OPT_t - routed_t) / topK_t over the training batches served,
  estimated from every ``reference_every``-th batch (``regret_per_batch`` is its mean); a routing
  that exceeds capacity can score above OPT, so read it with ``violation`` (the cumulative fraction
  of assignments over capacity) and ``overflow`` (the same on the held-out set).

Optimal values are kept in the run context's cache (namespace ``routing_lp``) by instance, so
every algorithm run on the same stream and seed shares them. ``repeat_batch=true`` serves the
same batch at every step: the deterministic setting of Han and Zhong (2025); the held-out and
balance sets are then that batch.
"""

from __future__ import annotations

from typing import Any

import torch

from optbench.contracts.context import RunContext
from optbench.contracts.errors import ConfigError
from optbench.contracts.routing_stream import (
    Gate,
    RoutedBatch,
    Router,
    RoutingSolution,
    RoutingStreamProblem,
    capacity,
    expert_loads,
    max_violation,
)
from optbench.problems.routing.assignment import Assignment, optimal_assignment
from optbench.problems.routing.balance import balanced_floor
from optbench.problems.routing.stream import SPLITS, ScoreStream, stream_seed


class RoutingStream(RoutingStreamProblem):
    """A stream of (T, N) router scores; the router picks K experts per token.

    Args:
        n_experts: N (>= 2). top_k: K (1 <= K < N). batch_size: tokens per batch T.
        skew: Zipf exponent of expert popularity (0 = none). n_clusters, cluster_spread: token
            clusters and their radius. drift: rotation of the clusters per batch (radians).
        dim: hidden size of the synthetic tokens. affinity: logit scale of token-expert affinity.
        gate: ``sigmoid`` or ``softmax``. repeat_batch: serve one batch forever.
        heldout_batches: batches of the held-out set (per-batch metrics, exact optima).
        balance_tokens: tokens of the balance set (``maxvio_global`` and its floor), rounded up
            to whole batches. reference_every: solve the exact optimum of every this-many-th
            training batch for the regret (0: none).
        capacity_factor: capacity of the exact reference, ceil(capacity_factor T K / N) (>= 1).
    """

    learnable_router = False
    n_layers = 1

    def __init__(
        self,
        n_experts: int = 16,
        top_k: int = 2,
        batch_size: int = 256,
        skew: float = 1.0,
        n_clusters: int = 8,
        cluster_spread: float = 0.5,
        drift: float = 0.0,
        dim: int = 16,
        affinity: float = 4.0,
        gate: Gate = "sigmoid",
        repeat_batch: bool = False,
        heldout_batches: int = 4,
        balance_tokens: int = 65536,
        reference_every: int = 10,
        capacity_factor: float = 1.0,
    ) -> None:
        super().__init__()
        if n_experts < 2:
            raise ConfigError(f"n_experts: must be >= 2, got {n_experts}")
        if not 1 <= top_k < n_experts:
            raise ConfigError(f"top_k: must be in [1, n_experts={n_experts}), got {top_k}")
        for name, value, low in (
            ("batch_size", batch_size, 1),
            ("n_clusters", n_clusters, 1),
            ("dim", dim, 2),
            ("heldout_batches", heldout_batches, 1),
            ("balance_tokens", balance_tokens, 1),
            ("reference_every", reference_every, 0),
        ):
            if value < low:
                raise ConfigError(f"{name}: must be >= {low}, got {value}")
        for name, value in (("skew", skew), ("cluster_spread", cluster_spread), ("drift", drift)):
            if value < 0:
                raise ConfigError(f"{name}: must be >= 0, got {value}")
        if capacity_factor < 1:
            raise ConfigError(f"capacity_factor: must be >= 1, got {capacity_factor}")
        self.n_experts, self.top_k, self.batch_size = n_experts, top_k, batch_size
        self.skew, self.n_clusters, self.cluster_spread = skew, n_clusters, cluster_spread
        self.drift, self.dim, self.affinity, self.gate = drift, dim, affinity, gate
        self.repeat_batch, self.heldout_batches = repeat_batch, heldout_batches
        self.balance_batches = -(-balance_tokens // batch_size)
        self.reference_every, self.capacity_factor = reference_every, capacity_factor
        self.capacity = capacity(batch_size, n_experts, top_k, capacity_factor)

    # -- set-up ----------------------------------------------------------------------------------
    def setup(self, ctx: RunContext) -> None:
        stream = (
            ctx.problem_random.integer_seed(),
            self.n_experts,
            self.batch_size,
            self.dim,
            self.n_clusters,
            self.skew,
            self.cluster_spread,
            self.drift,
            self.affinity,
            self.gate,
        )
        self.stream = ScoreStream(*stream, ctx.device, ctx.dtype)
        self._cache = ctx.cache
        # the instance the cached optima belong to
        self._instance = ["v2", *stream, self.top_k, self.capacity, str(ctx.dtype), ctx.device.type]
        self._optima: dict[str, float] = {}  # in front of the cache, for this run
        tokens = self.batch_size * (1 if self.repeat_batch else self.balance_batches)
        self.floor = self._cache.get_or_compute(
            "routing_lp",
            [*self._instance, f"floor:{tokens}"],
            lambda: balanced_floor(
                self.n_experts, self.top_k, tokens, stream_seed(stream[0], SPLITS["floor"])
            ),
        )
        self.served = 0  # training batches served
        self._history: dict[str, list[float]] = {
            k: [] for k in ("index", "maxvio", "quality", "achieved", "topk", "overflow")
        }
        self._since_eval = 0
        self._evaluating = False

    def describe(self) -> dict[str, Any]:
        return {
            "n_experts": self.n_experts,
            "top_k": self.top_k,
            "batch_size": self.batch_size,
            "reference_capacity": self.capacity,
            "balance_tokens": self.batch_size * (1 if self.repeat_batch else self.balance_batches),
            "gate": self.gate,
        }

    # -- the stream ------------------------------------------------------------------------------
    def _train_time(self, index: int) -> int:
        return 0 if self.repeat_batch else index

    def next_batch(self) -> torch.Tensor:
        scores = self.stream.batch("train", self._train_time(self.served))
        self._current = self.served
        self.served += 1
        self.counters["batches"] += 1
        self.counters["tokens"] += self.batch_size
        return scores

    @torch.no_grad()
    def forward(
        self, batch: torch.Tensor, router: Router, model: torch.nn.Module | None = None
    ) -> RoutedBatch:
        """Route the last batch served and record its scoring in the online history."""
        selected = router.select(batch, 0)
        m = self._measure(batch, selected)
        for key, value in (
            ("index", self._current),
            ("maxvio", m["maxvio"]),
            ("quality", m["achieved"] / m["topk"]),
            ("achieved", m["achieved"]),
            ("topk", m["topk"]),
            ("overflow", m["overflow"]),
        ):
            self._history[key].append(float(value))
        return RoutedBatch(scores=[batch], selected=[selected])

    def _measure(self, scores: torch.Tensor, selected: torch.Tensor) -> dict[str, Any]:
        loads = expert_loads(selected, self.n_experts)
        kept = selected >= 0
        routed = scores.gather(1, selected.clamp_min(0)).masked_fill(~kept, 0.0)
        assignments = selected.numel()
        return {
            "loads": loads,
            "maxvio": float(max_violation(loads)),
            "idle": float((loads == 0).sum()),
            "achieved": float(routed.sum()),
            "topk": float(torch.topk(scores, self.top_k, dim=1).values.sum()),
            "dropped": float((~kept).sum()) / assignments,
            "overflow": float((loads - self.capacity).clamp_min(0).sum()) / assignments,
        }

    # -- the exact reference ---------------------------------------------------------------------
    def optimal_routing(self, scores: torch.Tensor, capacity_factor: float = 1.0) -> Assignment:
        if not self._evaluating:  # evaluation is uncounted
            self.counters["lp"] += 1
        cap = capacity(self.batch_size, self.n_experts, self.top_k, capacity_factor)
        return optimal_assignment(scores, self.top_k, cap)

    def _optimum(self, split: str, time: int, index: int, scores: torch.Tensor | None) -> float:
        key = f"{split}:{time}:{index}"
        if key not in self._optima:

            def solve() -> float:
                batch = self.stream.batch(split, time, index) if scores is None else scores
                return optimal_assignment(batch, self.top_k, self.capacity).objective

            self._optima[key] = self._cache.get_or_compute(
                "routing_lp", [*self._instance, key], solve
            )
        return self._optima[key]

    # -- scoring ---------------------------------------------------------------------------------
    def _heldout(self, split: str = "heldout") -> list[tuple[str, int, int]]:
        if self.repeat_batch:
            return [("train", 0, 0)]
        time = max(self.served - 1, 0) if self.drift > 0 else 0
        count = self.heldout_batches if split == "heldout" else self.balance_batches
        return [(split, time, j) for j in range(count)]

    @torch.no_grad()
    def evaluate(self, solution: RoutingSolution) -> dict[str, float]:
        self._evaluating = True
        try:
            return self._evaluate(solution.router)
        finally:
            self._evaluating = False

    def _evaluate(self, router: Router) -> dict[str, float]:
        total_loads = torch.zeros(self.n_experts, dtype=torch.float64, device=self.stream.device)
        for split, time, index in self._heldout("balance"):
            scores = self.stream.batch(split, time, index)
            total_loads += expert_loads(router.select(scores, 0), self.n_experts)
        sums = dict.fromkeys(("maxvio", "idle", "achieved", "topk", "opt", "dropped", "over"), 0.0)
        batches = self._heldout()
        for split, time, index in batches:
            scores = self.stream.batch(split, time, index)
            m = self._measure(scores, router.select(scores, 0))
            for key, name in (
                ("maxvio", "maxvio"),
                ("idle", "idle"),
                ("achieved", "achieved"),
                ("topk", "topk"),
                ("dropped", "dropped"),
                ("over", "overflow"),
            ):
                sums[key] += m[name]
            sums["opt"] += self._optimum(split, time, index, scores)
        n = len(batches)
        metrics = {
            "maxvio_global": float(max_violation(total_loads)),
            "maxvio_global_floor": self.floor,
            "maxvio_heldout": sums["maxvio"] / n,
            "idle_experts": sums["idle"] / n,
            "quality": sums["achieved"] / sums["topk"],
            "quality_vs_opt": sums["achieved"] / sums["opt"],
            "price_of_balance": 1.0 - sums["opt"] / sums["topk"],
            "dropped": sums["dropped"] / n,
            "overflow": sums["over"] / n,
        }
        metrics.update(self._online())
        return metrics

    def _online(self) -> dict[str, float]:
        """Online metrics of the training batches: since the last evaluation and cumulative."""
        h = self._history
        served = len(h["index"])
        if served == 0:
            return {}
        recent = slice(self._since_eval, served) if self._since_eval < served else slice(0, served)
        self._since_eval = served
        window = h["maxvio"][recent]
        metrics = {
            "maxvio_batch": sum(window) / len(window),
            "online_quality": sum(h["quality"][recent]) / len(window),
            "violation": sum(h["overflow"]),
        }
        if self.reference_every > 0:
            regrets = []
            for i, index in enumerate(h["index"]):
                if int(index) % self.reference_every == 0:
                    time = self._train_time(int(index))
                    opt = self._optimum("train", time, 0, None)
                    regrets.append((opt - h["achieved"][i]) / h["topk"][i])
            mean = sum(regrets) / len(regrets)
            metrics["regret_per_batch"] = mean
            metrics["regret"] = mean * served
        return metrics
