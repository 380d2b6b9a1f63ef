"""The training recipe for problems whose router is learnable (``moe_lm``).

The trainer belongs to the algorithm side: an algorithm proposes parameters, so a balancing
method applied to a learnable router is "train the problem's model with this balancing", and the
training hyperparameters are the algorithm's (``algorithm.trainer.*``). Every balancing algorithm
uses this same recipe, so a comparison changes the balancing only: AdamW (Loshchilov and Hutter
2019) with linear warm-up and cosine decay to ``min_lr_ratio`` of ``lr`` over the run's
``budget.max_steps``, and gradient-norm clipping.
"""

from __future__ import annotations

import math

import torch

from optbench.contracts.errors import ConfigError


class TrainerConfig:
    """AdamW hyperparameters and schedule (see the module docstring); built from the algorithm's
    ``trainer`` block (a node with this class as ``_target_``), so its messages name
    ``trainer.<key>``."""

    def __init__(
        self,
        lr: float = 3e-3,
        beta1: float = 0.9,
        beta2: float = 0.95,
        weight_decay: float = 0.01,
        warmup_steps: int = 50,
        min_lr_ratio: float = 0.1,
        grad_clip: float = 1.0,
    ) -> None:
        if lr <= 0:
            raise ConfigError(f"trainer.lr: must be > 0, got {lr}")
        if not (0 <= beta1 < 1 and 0 <= beta2 < 1):
            raise ConfigError(f"trainer.beta1, beta2: must be in [0, 1), got {beta1}, {beta2}")
        if weight_decay < 0 or warmup_steps < 0 or grad_clip < 0:
            raise ConfigError("trainer.weight_decay, warmup_steps, grad_clip: must be >= 0")
        if not 0 <= min_lr_ratio <= 1:
            raise ConfigError(f"trainer.min_lr_ratio: must be in [0, 1], got {min_lr_ratio}")
        self.lr, self.betas, self.weight_decay = lr, (beta1, beta2), weight_decay
        self.warmup_steps, self.min_lr_ratio, self.grad_clip = warmup_steps, min_lr_ratio, grad_clip

    def factor(self, step: int, horizon: int) -> float:
        """Learning-rate multiplier at ``step`` (0-based) of ``horizon`` steps."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        span = max(horizon - self.warmup_steps, 1)
        progress = min((step - self.warmup_steps) / span, 1.0)
        return self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (
            1 + math.cos(math.pi * progress)
        )

    def build(
        self, model: torch.nn.Module, horizon: int
    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
        """AdamW over the model's parameters (no decay on vectors) and its schedule."""
        decay = [p for p in model.parameters() if p.dim() >= 2]
        other = [p for p in model.parameters() if p.dim() < 2]
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": self.weight_decay}, {"params": other}],
            lr=self.lr,
            betas=self.betas,
            weight_decay=0.0,
        )
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: self.factor(step, horizon)
        )
        return optimizer, schedule

    def clip(self, model: torch.nn.Module) -> float:
        """Clip the gradient norm (when ``grad_clip`` > 0); returns the norm before clipping."""
        max_norm = self.grad_clip if self.grad_clip > 0 else math.inf
        return float(torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm))
