"""Hindsight Differentiable Policy Optimization (HDPO).

Alvo, Russo and Kanoria, "Deep Reinforcement Learning for Inventory Networks: Toward Reliable
Policy Optimization" (2023-25), Section 3 (Algorithm 1): the cost of a policy on a demand sample
path is a differentiable function of the policy's parameters, so the gradient of the mean train
cost over a minibatch of pre-sampled paths, grad (1/|B|) sum_{s in B} C_s(theta), is computed by
backpropagation through the simulated dynamics and followed with Adam. Model selection on the dev
samples and early stopping as in ``training``; one runner step is one epoch.
"""

from __future__ import annotations

import torch
from torch import nn

from optbench.algorithms.inventory.training import EpochTraining
from optbench.contracts.inventory import InventoryProblem


class HDPO(EpochTraining):
    """Pathwise (hindsight) policy gradient through the simulator; see the module docstring."""

    def batch_loss(
        self, trained: nn.Module, problem: InventoryProblem, batch: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        cost = problem.simulate(trained, "train", batch).cost.mean()
        return cost, cost
