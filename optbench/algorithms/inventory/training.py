"""What HDPO and REINFORCE share: building the policy, epochs over the train samples, dev-based
model selection and early stopping.

One runner step is one epoch: a pass over the train samples in shuffled minibatches of
``batch_size`` (one gradient step each), so ``budget.max_steps`` is the number of epochs and both
methods simulate the same number of sample paths per step (equal sample budget). Every
``dev_every`` epochs the current policy's mean dev cost is computed; the policy with the best dev
cost so far is the solution the runner evaluates. With ``patience``, the run ends (converged)
after that many dev evaluations without improvement.

This is the protocol of the authors' trainer (Alvo, Russo and Kanoria, ``trainer.py`` of
MatiasAlvo/Neural_inventory_control): dev every 10 epochs, the best dev model kept, early stop
after 500 epochs without improvement (``dev_every=10``, ``patience=50``), at most 20,000 epochs.

Progress goes to the ``logging`` module: a start-up line with the sample sizes, then one line per
epoch, at most one every ``log_interval_s`` seconds (0: every epoch).
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import torch
from torch import nn

from optbench.algorithms import torch_optim
from optbench.contracts.algorithm import Algorithm, Progress
from optbench.contracts.context import RunContext
from optbench.contracts.errors import ConfigError
from optbench.contracts.inventory import InventoryProblem, ParametricPolicy
from optbench.contracts.problem import Problem, ProblemKind

PolicyFactory = Callable[..., Any]
log = logging.getLogger(__name__)


def build_policy(factory: PolicyFactory, problem: InventoryProblem, ctx: RunContext) -> nn.Module:
    """``factory(spec=...)`` with its initial weights drawn from the algorithm's random stream."""
    seed = ctx.algorithm_random.child("policy").integer_seed()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            policy = factory(spec=problem.spec)
    except ConfigError as exc:
        raise ConfigError(f"algorithm.policy.{exc}") from None
    if not isinstance(policy, nn.Module):
        raise ConfigError(f"algorithm.policy: expected a torch module, got {type(policy).__name__}")
    return policy.to(device=ctx.device, dtype=ctx.dtype)


def project(policy: nn.Module) -> None:
    """Keep a parametric policy's parameters within its bounds."""
    if isinstance(policy, ParametricPolicy):
        low, high = policy.bounds()
        with torch.no_grad():
            policy.theta.copy_(torch.maximum(torch.minimum(policy.theta, high), low))


class EpochTraining(Algorithm):
    """Base of the epoch-based policy optimisers (see the module docstring)."""

    accepts: ClassVar[frozenset[ProblemKind]] = frozenset({ProblemKind.INVENTORY})

    def __init__(
        self,
        policy: PolicyFactory,
        lr: float = 3e-3,
        batch_size: int = 1024,
        dev_every: int = 1,
        patience: int | None = None,
        grad_clip: float | None = None,
        log_interval_s: float = 10.0,
    ) -> None:
        if not callable(policy):
            raise ConfigError("policy: expected a policy config (configs/policy) with _partial_")
        if lr <= 0:
            raise ConfigError(f"lr: must be > 0, got {lr}")
        if batch_size < 1:
            raise ConfigError(f"batch_size: must be >= 1, got {batch_size}")
        if dev_every < 1:
            raise ConfigError(f"dev_every: must be >= 1, got {dev_every}")
        if patience is not None and patience < 1:
            raise ConfigError(f"patience: must be >= 1, got {patience}")
        if grad_clip is not None and grad_clip <= 0:
            raise ConfigError(f"grad_clip: must be > 0, got {grad_clip}")
        if log_interval_s < 0:
            raise ConfigError(f"log_interval_s: must be >= 0, got {log_interval_s}")
        self.policy_factory = policy
        self.lr, self.batch_size, self.dev_every = lr, batch_size, dev_every
        self.patience, self.grad_clip = patience, grad_clip
        self.log_interval_s = log_interval_s

    def warm_up(self, problem: Problem) -> None:
        torch_optim.preload()  # it builds a torch.optim optimizer in run

    # -- hooks -----------------------------------------------------------------------------------
    def prepare(self, policy: nn.Module, problem: InventoryProblem, ctx: RunContext) -> nn.Module:
        """The module whose parameters are optimised (default: the policy itself)."""
        return policy

    def batch_loss(
        self, trained: nn.Module, problem: InventoryProblem, batch: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss to differentiate, the batch's mean cost) on the train samples ``batch``."""
        raise NotImplementedError

    # -- loop ------------------------------------------------------------------------------------
    @torch.no_grad()
    def dev_cost(self, policy: nn.Module, problem: InventoryProblem) -> float:
        return float(problem.simulate(policy, "dev").cost.mean())

    def run(self, problem: InventoryProblem, ctx: RunContext) -> Iterator[Progress]:
        name = type(self).__name__
        policy = build_policy(self.policy_factory, problem, ctx)
        trained = self.prepare(policy, problem, ctx)
        optimizer = torch.optim.Adam(trained.parameters(), lr=self.lr)
        n = problem.split_size("train")
        batches = -(-n // self.batch_size)
        patience = "none" if self.patience is None else f"{self.patience} dev evaluations"
        log.info(
            "%s: %d train samples in %d minibatch(es) of <= %d per epoch, %d dev samples every "
            "%d epoch(s), patience %s",
            name,
            n,
            batches,
            self.batch_size,
            problem.split_size("dev"),
            self.dev_every,
            patience,
        )
        best_dev = self.dev_cost(policy, problem)
        best = copy.deepcopy(policy)
        best_epoch, waited = 0, 0
        yield Progress(best, {"dev_cost": best_dev, "best_dev_cost": best_dev})
        epoch, logged, start = 0, -float("inf"), time.monotonic()
        while True:
            epoch += 1
            order = torch.randperm(n, generator=ctx.algorithm_random.torch, device=ctx.device)
            costs, norms = [], []
            for batch in order.split(self.batch_size):
                loss, cost = self.batch_loss(trained, problem, batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                params = [p for p in trained.parameters() if p.grad is not None]
                norm = torch.nn.utils.clip_grad_norm_(params, self.grad_clip or float("inf"))
                optimizer.step()
                project(policy)
                costs.append(cost.detach())
                norms.append(norm.detach())
            metrics = {
                "train_cost": float(torch.stack(costs).mean()),
                "grad_norm": float(torch.stack(norms).mean()),
            }
            if epoch % self.dev_every == 0:
                dev = self.dev_cost(policy, problem)
                metrics["dev_cost"] = dev
                if dev < best_dev:
                    best, best_dev, best_epoch, waited = copy.deepcopy(policy), dev, epoch, 0
                else:
                    waited += 1
            metrics["best_dev_cost"] = best_dev
            stop = self.patience is not None and waited >= self.patience
            now = time.monotonic()
            if stop or now - logged >= self.log_interval_s:
                logged = now
                dev_text = f"dev {metrics['dev_cost']:.4f}, " if "dev_cost" in metrics else ""
                log.info(
                    "%s epoch %d: train cost %.4f, %sbest dev %.4f (epoch %d), %.2f s/epoch%s",
                    name,
                    epoch,
                    metrics["train_cost"],
                    dev_text,
                    best_dev,
                    best_epoch,
                    (now - start) / epoch,
                    ": patience exhausted, stopping" if stop else "",
                )
            yield Progress(best, metrics, converged=stop)
