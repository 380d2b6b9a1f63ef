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
  norms G_t, median-filtered over a window of ``window * T`` steps, weights w_t = G_t^-2 and
  eta_t proportional to w_t * sum_{p > t} w_p, normalised to peak 1. We index steps 0..T-1 and
  sum over p = t+1 .. T with w_T = w_{T-1} (the weight of the returned last iterate), so that the
  last step keeps a positive rate; with constant G_t this is exactly ``linear_decay``.

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


def refined(grad_norms: np.ndarray, T: int, window: float = 0.1) -> np.ndarray:
    """Defazio et al.'s refined schedule from a gradient-norm history (resampled to T steps)."""
    G = np.asarray(grad_norms, dtype=float)
    G = G[np.isfinite(G)]
    if len(G) == 0 or np.any(G <= 0):
        raise ConfigError("refined schedule: the source run's gradient norms must be positive")
    if len(G) != T:  # resample the source history onto this run's horizon
        G = np.interp(np.linspace(0, 1, T), np.linspace(0, 1, len(G)), G)
    size = max(1, round(window * T))
    G = median_filter(G, size=size, mode="nearest")
    w = G**-2.0
    tail = np.cumsum(np.append(w, w[-1])[::-1])[::-1]  # tail[t] = sum_{p >= t} w_p, p <= T
    eta = w * tail[1:]
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
        factors = refined(grad_norms, T, window)
    else:
        raise ConfigError(f"schedule: unknown schedule '{name}' (known: {', '.join(SCHEDULES)})")
    return with_warmup(factors, warmup)
