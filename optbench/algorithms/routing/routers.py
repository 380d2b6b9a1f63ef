"""Routing policies: which K experts each token goes to, and how that choice adapts.

Every router only *selects*: it returns expert indices, and the problem gates each selected
expert with the raw score s_{i,t} (Wang et al. 2024), so a bias never weights an output
and has no gradient.
"""

from __future__ import annotations

import math

import torch

from optbench.contracts.routing_stream import Router, RoutingStreamProblem, capacity


class GreedyRouter(Router):
    """Unconstrained top-K of the scores: no balancing."""

    def __init__(self, top_k: int) -> None:
        self.top_k = top_k

    def select(self, scores: torch.Tensor, layer: int = 0) -> torch.Tensor:
        return torch.topk(scores, self.top_k, dim=1).indices

    def update(self, loads: torch.Tensor) -> dict[str, float]:
        """Adapt to the loads (n_layers, N) of the batch just routed; returns metrics."""
        return {}


class BiasedRouter(GreedyRouter):
    """Auxiliary-loss-free load balancing (ALF-LB; Wang et al. 2024, Algorithm 1).

    Selection: the top-K of s_{i,t} + b_i (one bias vector per routed layer). After each batch,
    with c_i the assignments routed to expert i and c_bar their mean,

        sign update:       b_i <- b_i + u_t sign(c_bar - c_i)                 (Wang et al. 2024)
        magnitude update:  b_i <- b_i + u_t (c_bar - c_i) / c_bar              (their "e_i" variant,
                                                                               made unit-free)

    with u_t = u (constant), u / sqrt(t) or u / t at the t-th update: the decaying steps of Han and
    Zhong (2025), whose online analysis gives logarithmic expected regret for u_t ~ 1/t. The loads
    are those of the batch just routed, so the bias only affects the next batch. In Han and Zhong's
    reading b = -lambda, the capacity multipliers of the assignment LP, and the update is a
    sign-subgradient step on its dual function.
    """

    def __init__(
        self,
        top_k: int,
        bias: torch.Tensor,
        u: float,
        update: str = "sign",
        schedule: str = "constant",
    ) -> None:
        super().__init__(top_k)
        self.bias, self.u, self.update_rule, self.schedule = bias, u, update, schedule
        self.updates = 0
        self._shifted: torch.Tensor | None = None  # reused buffer for s + b

    def select(self, scores: torch.Tensor, layer: int = 0) -> torch.Tensor:
        buffer = self._shifted
        if buffer is None or buffer.shape != scores.shape or buffer.dtype != scores.dtype:
            buffer = self._shifted = torch.empty_like(scores)
        torch.add(scores, self.bias[layer].to(scores.dtype), out=buffer)
        return torch.topk(buffer, self.top_k, dim=1).indices

    def step_size(self) -> float:
        t = self.updates + 1
        if self.schedule == "inv_sqrt":
            return self.u / math.sqrt(t)
        if self.schedule == "inv":
            return self.u / t
        return self.u

    def update(self, loads: torch.Tensor) -> dict[str, float]:
        u = self.step_size()
        loads = loads.to(self.bias.dtype)
        mean = loads.mean(dim=-1, keepdim=True)
        error = mean - loads
        if self.update_rule == "sign":
            self.bias += u * torch.sign(error)
        else:
            self.bias += u * error / mean.clamp_min(1e-12)
        self.updates += 1
        spread = self.bias.amax(dim=-1) - self.bias.amin(dim=-1)
        return {"u": u, "bias_range": float(spread.max())}


class CapacityRouter(GreedyRouter):
    """Top-K with an expert capacity C = ceil(capacity_factor T K / N) per batch; assignments
    beyond it are dropped (-1), as in Switch Transformer (Fedus et al. 2022) and GShard (Lepikhin
    et al. 2021). Priority: all first choices before second choices (GShard), then token order."""

    def __init__(self, top_k: int, n_experts: int, capacity_factor: float) -> None:
        super().__init__(top_k)
        self.n_experts, self.capacity_factor = n_experts, capacity_factor

    def capacity(self, n_tokens: int) -> int:
        return capacity(n_tokens, self.n_experts, self.top_k, self.capacity_factor)

    def select(self, scores: torch.Tensor, layer: int = 0) -> torch.Tensor:
        choices = torch.topk(scores, self.top_k, dim=1).indices  # column k: k-th choice
        flat = choices.T.reshape(-1)  # rank-major, then token order: the queue order
        experts, order = torch.sort(flat, stable=True)
        counts = torch.bincount(flat, minlength=self.n_experts)
        starts = torch.cumsum(counts, 0) - counts
        position = torch.empty_like(flat)
        position[order] = torch.arange(flat.numel(), device=flat.device) - starts[experts]
        kept = torch.where(position < self.capacity(scores.shape[0]), flat, -1)
        return kept.reshape(self.top_k, -1).T


class OptimalRouter(GreedyRouter):
    """The exact balanced assignment of every batch (the problem's LP oracle): an offline
    reference, not an online method."""

    def __init__(self, problem: RoutingStreamProblem, capacity_factor: float) -> None:
        super().__init__(problem.top_k)
        self.problem, self.capacity_factor = problem, capacity_factor

    def select(self, scores: torch.Tensor, layer: int = 0) -> torch.Tensor:
        return self.problem.optimal_routing(scores, self.capacity_factor).selected
