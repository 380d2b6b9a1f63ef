"""Stochastic first-order methods on finite sums: SGD (with momentum), Adam, AdaGrad.

Each step draws a minibatch of ``batch_size`` sample indices uniformly with replacement from the
algorithm's random stream, asks the problem for the minibatch gradient and applies the
``torch.optim`` update with step size ``lr * schedule[t]`` (see ``optbench.algorithms.schedules``;
the horizon T is the run's ``budget.max_steps``). Progress metrics: minibatch ``loss``,
``grad_norm`` (the G_t that the refined schedule reads back) and ``lr``.

``iterate`` chooses the solution proposed at every step: ``last`` (x_t) or ``average`` (the
running uniform average (1/t) sum_{s=1..t} x_s of the iterates so far, Polyak-Ruppert), the two
outputs compared by Liu and Zhou, "Revisiting the Last-Iterate Convergence of Stochastic
Gradient Methods" (ICLR 2024). The trajectory is the same for both, so two runs differing only
in ``iterate`` are paired sample for sample.

``schedule=refined`` declares an input (``Algorithm.inputs``): the per-step ``grad_norm`` series
of the FINISHED run whose config is this one with ``algorithm.schedule`` set to
``refine_source`` (linear decay by default), as Defazio et al. (2023) refine a linear-decay run.
With ``refine_best_over=[algorithm.lr]`` and ``refine_metric=gap`` the source is, among those runs
at every peak rate, the one with the best final gap (the tuned linear-decay run), and the refined
run's own peak rate is tuned again. The runner reads the series before the clock starts, and a
sweep runs the source runs first. ``refine_padding`` and ``refine_last_step`` default to the
authors' code (see ``schedules``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import ClassVar, Literal

import torch

from optbench.algorithms import torch_optim
from optbench.algorithms.schedules import SCHEDULES, make_schedule
from optbench.contracts.algorithm import Algorithm, Progress, RunInput
from optbench.contracts.context import RunContext
from optbench.contracts.errors import ConfigError
from optbench.contracts.finite_sum import FiniteSumProblem
from optbench.contracts.problem import Problem, ProblemKind

ITERATES = ("last", "average")


class StochasticGradient(Algorithm):
    """Base of the minibatch methods: sampling, schedule, and the step loop."""

    accepts: ClassVar[frozenset[ProblemKind]] = frozenset({ProblemKind.FINITE_SUM})

    def __init__(
        self,
        lr: float = 0.1,
        batch_size: int = 32,
        schedule: str = "constant",
        warmup: float = 0.0,
        milestones: list[float] | None = None,
        gamma: float = 0.1,
        refine_source: str = "linear_decay",
        refine_window: float = 0.1,
        refine_padding: Literal["reflect", "nearest"] = "reflect",
        refine_last_step: Literal["zero", "positive"] = "zero",
        refine_best_over: list[str] | None = None,
        refine_metric: str | None = None,
        uba_phi: float = 1.0,
        iterate: str = "last",
    ) -> None:
        if lr <= 0:
            raise ConfigError(f"lr: must be > 0, got {lr}")
        if batch_size < 1:
            raise ConfigError(f"batch_size: must be >= 1, got {batch_size}")
        if schedule not in SCHEDULES:
            raise ConfigError(f"schedule: unknown '{schedule}' (known: {', '.join(SCHEDULES)})")
        if not 0 <= warmup < 1:
            raise ConfigError(f"warmup: a fraction of the horizon in [0, 1), got {warmup}")
        if iterate not in ITERATES:
            raise ConfigError(f"iterate: unknown '{iterate}' (known: {', '.join(ITERATES)})")
        if uba_phi <= 0:
            raise ConfigError(f"uba_phi: must be > 0, got {uba_phi}")
        self.uba_phi, self.iterate = uba_phi, iterate
        if refine_source == "refined":
            raise ConfigError("refine_source: cannot refine a refined schedule")
        self.lr, self.batch_size, self.schedule = lr, batch_size, schedule
        self.warmup, self.gamma = warmup, gamma
        self.milestones = list(milestones) if milestones is not None else [0.5, 0.75]
        if refine_best_over and refine_metric is None:
            raise ConfigError("refine_metric: required with refine_best_over")
        self.refine_source, self.refine_window = refine_source, refine_window
        self.refine_padding, self.refine_last_step = refine_padding, refine_last_step
        self.refine_best_over = list(refine_best_over or [])
        self.refine_metric = refine_metric

    def warm_up(self, problem: Problem) -> None:
        torch_optim.preload()  # it builds a torch.optim optimizer in run

    def make_optimizer(self, params: list[torch.Tensor]) -> torch.optim.Optimizer:
        raise NotImplementedError

    def inputs(self) -> Sequence[RunInput]:
        if self.schedule != "refined":
            return ()
        source = RunInput(
            "grad_norms",
            {"algorithm.schedule": self.refine_source},
            "grad_norm",
            best_over=tuple(self.refine_best_over),
            metric=self.refine_metric,
        )
        return (source,)

    def factors(self, ctx: RunContext) -> torch.Tensor:
        grad_norms = ctx.inputs.get("grad_norms") if self.schedule == "refined" else None
        values = make_schedule(
            self.schedule,
            ctx.max_steps,
            warmup=self.warmup,
            milestones=self.milestones,
            gamma=self.gamma,
            grad_norms=grad_norms,
            window=self.refine_window,
            padding=self.refine_padding,
            last_step=self.refine_last_step,
            phi=self.uba_phi,
        )
        return torch.as_tensor(values, dtype=torch.float64)

    def run(self, problem: FiniteSumProblem, ctx: RunContext) -> Iterator[Progress]:
        factors = self.factors(ctx).tolist()
        param = torch.nn.Parameter(problem.initial_point())
        optimizer = self.make_optimizer([param])
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda t: factors[min(t, len(factors) - 1)]
        )
        yield Progress(param.detach())
        n, rng = problem.n_samples, ctx.algorithm_random.torch
        average, t = param.detach().clone(), 0
        while True:
            lr = optimizer.param_groups[0]["lr"]
            batch = torch.randint(n, (self.batch_size,), generator=rng, device=ctx.device)
            loss, grad = problem.loss_grad(param.detach(), batch)
            param.grad = grad
            optimizer.step()
            scheduler.step()
            metrics = {"loss": loss, "grad_norm": float(torch.linalg.vector_norm(grad)), "lr": lr}
            if self.iterate == "average":
                t += 1
                average += (param.detach() - average) / t
                yield Progress(average, metrics)
            else:
                yield Progress(param.detach(), metrics)


class SGD(StochasticGradient):
    """Minibatch SGD, optionally with (Nesterov) momentum (``torch.optim.SGD``)."""

    def __init__(self, momentum: float = 0.0, nesterov: bool = False, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        if not 0 <= momentum < 1:
            raise ConfigError(f"momentum: must be in [0, 1), got {momentum}")
        self.momentum, self.nesterov = momentum, nesterov

    def make_optimizer(self, params: list[torch.Tensor]) -> torch.optim.Optimizer:
        return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, nesterov=self.nesterov)


class Adam(StochasticGradient):
    """Adam (Kingma and Ba, 2015) on minibatch gradients (``torch.optim.Adam``)."""

    def __init__(
        self, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8, **kwargs: object
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.betas, self.eps = (beta1, beta2), eps

    def make_optimizer(self, params: list[torch.Tensor]) -> torch.optim.Optimizer:
        return torch.optim.Adam(params, lr=self.lr, betas=self.betas, eps=self.eps)


class AdaGrad(StochasticGradient):
    """AdaGrad (Duchi, Hazan and Singer, 2011) on minibatch gradients (``torch.optim.Adagrad``)."""

    def __init__(self, eps: float = 1e-10, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.eps = eps

    def make_optimizer(self, params: list[torch.Tensor]) -> torch.optim.Optimizer:
        return torch.optim.Adagrad(params, lr=self.lr, eps=self.eps)
