"""Load-balancing algorithms for ``routing_stream`` problems.

Each algorithm is a routing policy plus, for a learnable router, the training loop
(``trainer.TrainerConfig``): one step draws a batch, routes it through the problem (which scores
the routing itself), (learnable router: takes an AdamW step on the task loss, plus the auxiliary
loss for ``aux_loss``), and updates the router from the loads of its own selection, so the update
affects the next batch only. Progress metrics are the algorithm's own (step size, bias range,
training loss); the routing's quality is the problem's to report. The solution is
``RoutingSolution(router, model)``; the problem evaluates it (held-out MaxVio, quality,
perplexity).

- ``alf_lb``: auxiliary-loss-free load balancing (Wang et al. 2024), with the variants studied by
  Han and Zhong (2025): magnitude update, decaying step sizes;
- ``aux_loss``: top-K routing with the auxiliary balance loss (learnable routers only);
- ``greedy_topk``: top-K routing, no balancing;
- ``capacity_drop``: top-K with an expert capacity, overflow dropped (Switch/GShard);
- ``optimal_assignment``: the exact balanced assignment of every batch (fixed scores only).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, Literal

import torch

from optbench.algorithms import torch_optim
from optbench.algorithms.routing.losses import auxiliary_loss
from optbench.algorithms.routing.routers import (
    BiasedRouter,
    CapacityRouter,
    GreedyRouter,
    OptimalRouter,
)
from optbench.algorithms.routing.trainer import TrainerConfig
from optbench.contracts.algorithm import Algorithm, Progress
from optbench.contracts.context import RunContext
from optbench.contracts.errors import CompatibilityError, ConfigError
from optbench.contracts.problem import Problem, ProblemKind
from optbench.contracts.routing_stream import RoutedBatch, RoutingSolution, RoutingStreamProblem


class RoutingAlgorithm(Algorithm):
    """The shared step loop; subclasses give the router (and an extra loss)."""

    accepts: ClassVar[frozenset[ProblemKind]] = frozenset({ProblemKind.ROUTING_STREAM})

    def __init__(self, trainer: TrainerConfig | None = None) -> None:
        #: the training recipe, used when the problem's router is learnable (moe_lm).
        self.trainer = trainer if trainer is not None else TrainerConfig()

    def warm_up(self, problem: Problem) -> None:
        if getattr(problem, "learnable_router", False):  # run builds a torch.optim optimizer
            torch_optim.preload()

    def check(self, problem: RoutingStreamProblem) -> None:
        """Refuse a problem instance this method cannot act on (beyond its kind)."""

    def make_router(self, problem: RoutingStreamProblem, ctx: RunContext) -> GreedyRouter:
        return GreedyRouter(problem.top_k)

    def extra_loss(self, routed: RoutedBatch, top_k: int) -> torch.Tensor | None:
        """A loss added to the task loss (learnable router), or None."""
        return None

    def run(self, problem: RoutingStreamProblem, ctx: RunContext) -> Iterator[Progress]:
        self.check(problem)
        router = self.make_router(problem, ctx)
        model = problem.init_model() if problem.learnable_router else None
        if model is not None:
            optimizer, schedule = self.trainer.build(model, max(ctx.max_steps, 1))
        solution = RoutingSolution(router, model)
        yield Progress(solution)
        while True:
            metrics: dict[str, float] = {}
            batch = problem.next_batch()
            if model is None:
                routed = problem.forward(batch, router)
            else:
                model.train()
                routed = problem.forward(batch, router, model)
                assert routed.loss is not None
                total = routed.loss
                extra = self.extra_loss(routed, problem.top_k)
                if extra is not None:
                    total = total + extra
                    metrics["aux_loss"] = float(extra.detach())
                optimizer.zero_grad(set_to_none=True)
                total.backward()
                metrics["grad_norm"] = self.trainer.clip(model)
                metrics["lr"] = optimizer.param_groups[0]["lr"]
                optimizer.step()
                schedule.step()
                metrics["loss"] = float(routed.loss.detach())
            metrics.update(router.update(routed.loads(problem.n_experts)))
            yield Progress(solution, metrics)


class GreedyTopK(RoutingAlgorithm):
    """Top-K routing with no balancing (the baseline)."""


class AlfLb(RoutingAlgorithm):
    """Auxiliary-loss-free load balancing (see ``routers.BiasedRouter``).

    Args:
        u: step size (Wang et al. 2024: 0.001). update: ``sign`` or ``magnitude``.
        schedule: ``constant``, ``inv_sqrt`` (u / sqrt(t)) or ``inv`` (u / t).
        trainer: the training recipe for a learnable router.
    """

    def __init__(
        self,
        u: float = 0.001,
        update: Literal["sign", "magnitude"] = "sign",
        schedule: Literal["constant", "inv_sqrt", "inv"] = "constant",
        trainer: TrainerConfig | None = None,
    ) -> None:
        super().__init__(trainer)
        if u <= 0:
            raise ConfigError(f"u: must be > 0, got {u}")
        self.u, self.update, self.schedule = u, update, schedule

    def make_router(self, problem: RoutingStreamProblem, ctx: RunContext) -> BiasedRouter:
        bias = torch.zeros(problem.n_layers, problem.n_experts, device=ctx.device, dtype=ctx.dtype)
        return BiasedRouter(problem.top_k, bias, self.u, self.update, self.schedule)


class AuxLoss(RoutingAlgorithm):
    """Top-K routing trained with the auxiliary balance loss alpha sum_i f_i P_i
    (``losses.auxiliary_loss``, summed over routed layers). Needs a learnable router.

    Args:
        alpha: loss weight (Wang et al. 2024: 0.001). normalize: P from per-token normalised
            scores (DeepSeek-V3) instead of the raw scores (the classic form, Wang et al.'s
            baseline). trainer: the training recipe.
    """

    def __init__(
        self,
        alpha: float = 0.001,
        normalize: bool = False,
        trainer: TrainerConfig | None = None,
    ) -> None:
        super().__init__(trainer)
        if alpha < 0:
            raise ConfigError(f"alpha: must be >= 0, got {alpha}")
        self.alpha, self.normalize = alpha, normalize

    def check(self, problem: RoutingStreamProblem) -> None:
        if not problem.learnable_router:
            raise CompatibilityError(
                "algorithm 'aux_loss' balances by a loss gradient into a learnable router; "
                f"problem {type(problem).__name__} has fixed scores, so the loss cannot change "
                "any routing (use problem=moe_lm, or alf_lb / capacity_drop on fixed scores)"
            )

    def extra_loss(self, routed: RoutedBatch, top_k: int) -> torch.Tensor:
        terms = [
            auxiliary_loss(s, sel, top_k, self.normalize)
            for s, sel in zip(routed.scores, routed.selected, strict=True)
        ]
        return self.alpha * torch.stack(terms).sum()


class CapacityDrop(RoutingAlgorithm):
    """Top-K routing with expert capacity ceil(capacity_factor T K / N); overflow dropped.

    Args:
        capacity_factor: > 0 (Switch Transformer: 1.0-1.25). trainer: the training recipe.
    """

    def __init__(self, capacity_factor: float = 1.25, trainer: TrainerConfig | None = None) -> None:
        super().__init__(trainer)
        if capacity_factor <= 0:
            raise ConfigError(f"capacity_factor: must be > 0, got {capacity_factor}")
        self.capacity_factor = capacity_factor

    def make_router(self, problem: RoutingStreamProblem, ctx: RunContext) -> CapacityRouter:
        return CapacityRouter(problem.top_k, problem.n_experts, self.capacity_factor)


class OptimalAssignment(RoutingAlgorithm):
    """Each batch routed by its exact balanced assignment (the problem's LP oracle, capacity
    ceil(capacity_factor T K / N)): the offline optimum the online methods are compared with.

    Args:
        capacity_factor: >= 1.
    """

    def __init__(self, capacity_factor: float = 1.0) -> None:
        super().__init__(None)
        if capacity_factor < 1:
            raise ConfigError(f"capacity_factor: must be >= 1, got {capacity_factor}")
        self.capacity_factor = capacity_factor

    def check(self, problem: RoutingStreamProblem) -> None:
        if problem.learnable_router:
            raise CompatibilityError(
                "algorithm 'optimal_assignment' is the per-batch LP oracle of fixed-score "
                f"streams; problem {type(problem).__name__} has a learnable router"
            )

    def make_router(self, problem: RoutingStreamProblem, ctx: RunContext) -> OptimalRouter:
        return OptimalRouter(problem, self.capacity_factor)
