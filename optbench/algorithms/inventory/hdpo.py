"""Hindsight Differentiable Policy Optimization (HDPO).

Alvo, Russo and Kanoria, "Deep Reinforcement Learning for Inventory Networks: Toward Reliable
Policy Optimization" (2023-25), Section 3 (Algorithm 1): the cost of a policy on a demand sample
path is a differentiable function of the policy's parameters, so the gradient of the mean train
cost over a minibatch of pre-sampled paths, grad (1/|B|) sum_{s in B} C_s(theta), is computed by
backpropagation through the simulated dynamics and followed with Adam. Model selection on the dev
samples and early stopping as in ``training``; one runner step is one epoch.

``loss_periods``: the periods whose cost is differentiated. ``all`` is the authors' trainer
(``trainer.py``: the loss is the cost summed over every simulated period divided by their
number; the warm-up periods are excluded only from the costs it reports); ``after_warmup``
differentiates the reported cost itself (the periods t >= warm-up).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import nn

from optbench.algorithms.inventory.training import EpochTraining
from optbench.contracts.errors import ConfigError
from optbench.contracts.inventory import InventoryProblem

LOSS_PERIODS = ("all", "after_warmup")


class HDPO(EpochTraining):
    """Pathwise (hindsight) policy gradient through the simulator; see the module docstring."""

    def __init__(
        self,
        policy: Callable[..., Any],
        loss_periods: Literal["all", "after_warmup"] = "all",
        **kwargs: Any,
    ) -> None:
        super().__init__(policy, **kwargs)
        if loss_periods not in LOSS_PERIODS:
            known = ", ".join(LOSS_PERIODS)
            raise ConfigError(f"loss_periods: unknown '{loss_periods}' (known: {known})")
        self.loss_periods = loss_periods

    def batch_loss(
        self, trained: nn.Module, problem: InventoryProblem, batch: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        every = self.loss_periods == "all"
        sim = problem.simulate(trained, "train", batch, keep_periods=every)
        cost = sim.cost.mean()
        if every:
            assert sim.period_costs is not None
            return sim.period_costs.mean(), cost
        return cost, cost
