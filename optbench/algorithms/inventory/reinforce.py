"""REINFORCE: the score-function policy gradient on a stochastic version of the same network.

Williams (1992), "Simple statistical gradient-following algorithms for connectionist
reinforcement learning", Mach. Learn. 8; as the baseline of Alvo, Russo and Kanoria (2023-25).
The policy samples each node's request from N(mu_theta(s), (sigma mu)^2) (mu_theta the network,
sigma a learned per-node scale times the node's mean demand) and orders max(a, 0); actions do
not carry gradient through the dynamics. With costs c_t and G_t = sum_{t' >= t, t' >= warmup}
c_t' / (T - warmup) (the cost to go, scaled like the objective), the gradient estimate is
(1/|B|) sum_s sum_t grad log pi(a_t | s_t) (G_t - b_t), with baseline b_t the batch mean of G_t
(``baseline=mean``), a value network fitted to G_t (``learned``) or 0 (``none``). The solution
evaluated (dev, test) is the deterministic policy mu_theta. Same epochs and minibatches as HDPO,
so both see the same number of sample paths per step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import nn

from optbench.algorithms.inventory.networks import mlp, n_state_features, state_features
from optbench.algorithms.inventory.training import EpochTraining
from optbench.contracts.context import RunContext
from optbench.contracts.errors import ConfigError
from optbench.contracts.inventory import InventoryProblem, InventorySpec, Observation


class GaussianPolicy(nn.Module):
    """Samples requests around a deterministic policy; records log-probabilities and states."""

    def __init__(
        self, mean: nn.Module, spec: InventorySpec, init_std: float, generator: torch.Generator
    ) -> None:
        super().__init__()
        self.mean, self.spec, self.generator = mean, spec, generator
        scale = torch.cat([spec.demand_mean, spec.demand_mean.sum().expand(spec.n_upstream)])
        self.register_buffer("scale", scale)
        self.log_std = nn.Parameter(torch.full_like(scale, math.log(init_std)))
        self.record_states = False
        self.log_probs: list[torch.Tensor] = []
        self.states: list[torch.Tensor] = []

    def forward(self, obs: Observation) -> torch.Tensor:
        mu = self.mean(obs)
        std = self.log_std.exp() * self.scale
        noise = torch.randn(mu.shape, generator=self.generator, dtype=mu.dtype, device=mu.device)
        action = (mu + std * noise).detach()
        log_prob = -(((action - mu) / std) ** 2) / 2 - torch.log(std)
        self.log_probs.append(log_prob.sum(-1))
        if self.record_states:
            self.states.append(state_features(obs, self.spec).detach())
        return torch.relu(action)


class Reinforce(EpochTraining):
    """Score-function policy gradient; see the module docstring."""

    def __init__(
        self,
        policy: Callable[..., Any],
        init_std: float = 0.3,
        baseline: Literal["mean", "learned", "none"] = "mean",
        value_hidden: list[int] | None = None,
        value_lr: float = 1e-3,
        normalize_advantages: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(policy, **kwargs)
        if init_std <= 0:
            raise ConfigError(f"init_std: must be > 0, got {init_std}")
        if baseline not in ("mean", "learned", "none"):
            raise ConfigError(f"baseline: unknown '{baseline}' (known: mean, learned, none)")
        if value_lr <= 0:
            raise ConfigError(f"value_lr: must be > 0, got {value_lr}")
        self.init_std, self.baseline = init_std, baseline
        self.value_hidden = list(value_hidden) if value_hidden is not None else [32, 32]
        self.value_lr, self.normalize = value_lr, normalize_advantages

    def prepare(self, policy: nn.Module, problem: InventoryProblem, ctx: RunContext) -> nn.Module:
        stochastic = GaussianPolicy(policy, problem.spec, self.init_std, ctx.algorithm_random.torch)
        stochastic.record_states = self.baseline == "learned"
        if self.baseline == "learned":
            size = n_state_features(problem.spec) + 1
            self.value = mlp([size, *self.value_hidden, 1], "elu").to(ctx.device, ctx.dtype)
            self.value_optimizer = torch.optim.Adam(self.value.parameters(), lr=self.value_lr)
        return stochastic

    def batch_loss(
        self, trained: nn.Module, problem: InventoryProblem, batch: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        assert isinstance(trained, GaussianPolicy)
        trained.log_probs, trained.states = [], []
        # actions are detached: the dynamics build no graph, only the log-probabilities do
        sim = problem.simulate(trained, "train", batch, keep_periods=True)
        assert sim.period_costs is not None
        T = sim.period_costs.shape[1]
        counted = sim.period_costs.clone()
        counted[:, : sim.warmup] = 0
        to_go = counted.flip(1).cumsum(1).flip(1) / (T - sim.warmup)  # (B, T)
        log_probs = torch.stack(trained.log_probs, 1)  # (B, T), with grad
        advantage = to_go - self._baseline(trained, to_go)
        if self.normalize:
            advantage = advantage / (advantage.std() + 1e-8)
        loss = (log_probs * advantage.detach()).sum(1).mean()
        return loss, sim.cost.mean()

    def _baseline(self, trained: GaussianPolicy, to_go: torch.Tensor) -> torch.Tensor:
        if self.baseline == "none":
            return torch.zeros_like(to_go)
        if self.baseline == "mean":
            return to_go.mean(0, keepdim=True)
        B, T = to_go.shape
        time = torch.linspace(0, 1, T, dtype=to_go.dtype, device=to_go.device)
        states = torch.stack(trained.states, 1)  # (B, T, F)
        inputs = torch.cat([states, time.expand(B, T)[..., None]], -1)
        with torch.enable_grad():
            fitted = self.value(inputs)[..., 0]
            loss = ((fitted - to_go) ** 2).mean()
            self.value_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.value_optimizer.step()
        return fitted.detach()
