"""Learning-rate schedules as multipliers of a peak rate, for steps t = 0 .. T-1.

Every schedule returns factors in [0, 1] (the peak rate times the factor is the step size):

- ``constant``: 1.
- ``step``: gamma ** (number of ``milestones`` (fractions of T) passed).
- ``cosine``: (1 + cos(pi t / T)) / 2.
- ``linear_decay``: 1 - t / T.
- ``uba``: the unified budget-aware schedule of Tang, Dong, Zeng, Zhou, Lin, "Stepsize anything:
  a unified learning rate schedule for budgeted-iteration training" (NeurIPS 2025), with its one
  parameter phi > 0: 2 c_t / (2 phi + (2 - phi) c_t), c_t = 1 + cos(pi t / T), i.e. eta_min = 0
  (transcribed from the paper's schedule definition; phi = 2 is ``cosine``, phi -> 0 constant,
  a larger phi decays faster: the factor at T/2 is 2 / (2 + phi)).
- ``refined``: Defazio, Cutkosky, Mehta, Mishchenko, "When, Why and How Much? Adaptive Learning
  Rate Scheduling by Refinement" (2023), Algorithm 1: from a previous run's per-step gradient
  norms G_t (steps t = 0 .. T-1), median-filtered, weights w_t = G_t^-2 and
  eta_t proportional to w_t * sum_{p = t+1}^{T-1} w_p, normalised to peak 1. As the authors'
  code does it (github.com/facebookresearch/adaptive_scheduling @ 37a8a9b):
  ``padding="reflect"``: the window is the odd width 2 (int(window T) // 2) + 1, the end of the
  series is reflect-padded by twice the width and the filter's own boundary is ``nearest``
  (README.md, visual.py), so the last minibatch norms do not fill the final half window;
  ``last_step="zero"``: the last step has rate 0 (find_schedule.py,
  ``find_closed_form_schedule``); with constant G_t this is the linear decay (T-1-t)/(T-1).
  optbench's earlier choices are options: ``padding="nearest"`` (width round(window T), nearest
  at both ends) and ``last_step="positive"`` (the sum runs to p = T with w_T = w_{T-1}, the
  weight of the returned last iterate: exactly ``linear_decay`` for constant G_t).

``warmup`` (a fraction of T) multiplies any schedule by min(1, (t + 1) / (warmup * T)).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.ndimage import median_filter

from optbench.contracts.errors import ConfigError

SCHEDULES = ("constant", "step", "cosine", "linear_decay", "uba", "refined")


def constant(T: int) -> np.ndarray:
    return np.ones(T)


def step_decay(T: int, milestones: Sequence[float] = (0.5, 0.75), gamma: float = 0.1) -> np.ndarray:
    t = np.arange(T)
    passed = sum((t >= m * T).astype(int) for m in milestones)
    return np.asarray(gamma, dtype=float) ** passed


def cosine(T: int) -> np.ndarray:
    return 0.5 * (1.0 + np.cos(np.pi * np.arange(T) / T))


def linear_decay(T: int) -> np.ndarray:
    return 1.0 - np.arange(T) / T


def uba(T: int, phi: float) -> np.ndarray:
    """The UBA schedule (Tang et al. 2025) as factors of the peak rate, eta_min = 0."""
    if phi <= 0:
        raise ConfigError(f"uba_phi: must be > 0, got {phi}")
    c = 1.0 + np.cos(np.pi * np.arange(T) / T)
    return 2.0 * c / (2.0 * phi + (2.0 - phi) * c)


def smooth(G: np.ndarray, window: float, padding: str = "reflect") -> np.ndarray:
    """The median-filtered gradient norms; ``padding`` as in the module docstring."""
    T = len(G)
    if padding == "nearest":
        return median_filter(G, size=max(1, round(window * T)), mode="nearest")
    if padding != "reflect":
        raise ConfigError(f"refine_padding: 'reflect' or 'nearest', got '{padding}'")
    width = 2 * (int(window * T) // 2) + 1
    padded = np.pad(G, (0, 2 * width), mode="reflect")
    return median_filter(padded, size=width, mode="nearest")[:T]


def refined(
    grad_norms: np.ndarray,
    T: int,
    window: float = 0.1,
    padding: str = "reflect",
    last_step: str = "zero",
) -> np.ndarray:
    """Defazio et al.'s refined schedule from a gradient-norm history (resampled to T steps)."""
    G = np.asarray(grad_norms, dtype=float)
    G = G[np.isfinite(G)]
    if len(G) == 0 or np.any(G <= 0):
        raise ConfigError("refined schedule: the source run's gradient norms must be positive")
    if last_step not in ("zero", "positive"):
        raise ConfigError(f"refine_last_step: 'zero' or 'positive', got '{last_step}'")
    if len(G) != T:  # resample the source history onto this run's horizon
        G = np.interp(np.linspace(0, 1, T), np.linspace(0, 1, len(G)), G)
    w = smooth(G, window, padding) ** -2.0
    tail = np.cumsum(w[::-1])[::-1]  # tail[t] = sum_{p >= t} w_p
    after = np.append(tail[1:], 0.0)  # sum_{p > t} w_p
    if last_step == "positive":
        after = after + w[-1]
    eta = w * after
    if eta.max() <= 0:  # T = 1 with the last step at zero
        return np.ones(T)
    return eta / eta.max()


def with_warmup(factors: np.ndarray, warmup: float) -> np.ndarray:
    if warmup <= 0:
        return factors
    steps = max(1, round(warmup * len(factors)))
    return factors * np.minimum(1.0, (np.arange(len(factors)) + 1) / steps)


def make_schedule(
    name: str,
    T: int,
    *,
    warmup: float = 0.0,
    milestones: Sequence[float] = (0.5, 0.75),
    gamma: float = 0.1,
    grad_norms: np.ndarray | None = None,
    window: float = 0.1,
    padding: str = "reflect",
    last_step: str = "zero",
    phi: float = 1.0,
) -> np.ndarray:
    """The factors of schedule ``name`` over ``T`` steps (``refined`` needs ``grad_norms``,
    ``uba`` takes ``phi``)."""
    T = max(1, T)
    if name == "constant":
        factors = constant(T)
    elif name == "step":
        factors = step_decay(T, milestones, gamma)
    elif name == "cosine":
        factors = cosine(T)
    elif name == "linear_decay":
        factors = linear_decay(T)
    elif name == "uba":
        factors = uba(T, phi)
    elif name == "refined":
        if grad_norms is None:
            raise ConfigError("schedule=refined needs the gradient norms of a previous run")
        factors = refined(grad_norms, T, window, padding, last_step)
    else:
        raise ConfigError(f"schedule: unknown schedule '{name}' (known: {', '.join(SCHEDULES)})")
    return with_warmup(factors, warmup)
