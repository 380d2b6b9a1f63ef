"""Online choice of a solver parameter across a sequence of linear systems (parameter_sequence).

Khodak, Chow, Balcan, Talwalkar, "Learning to Relax: Setting Solver Parameters Across a
Sequence of Linear System Instances" (ICLR 2024). At each instance the algorithm proposes
omega (after reading the instance's context, for the contextual ones), the problem solves the
instance and returns its iteration count: the only feedback. One step = one instance.
Progress metrics: ``omega`` played and the ``iterations`` it cost.

- ``FixedOmega``: the same omega every time (omega = 1 is Gauss-Seidel).
- ``TsallisINF``: the 1/2-Tsallis-INF bandit (Zimmert and Seldin, JMLR 2021, alg. 1) over a
  grid of omegas; Khodak et al. sec. 3, thm. 3.1.
- ``TsallisINFCB``: the context interval split into equal bins, one Tsallis-INF per bin
  (Khodak et al. sec. 4, the discretised contextual baseline).
- ``ChebCB``: per-arm Chebyshev regression of the cost on the context with inverse-gap-weighted
  action probabilities (SquareCB, Foster and Rakhlin 2020); Khodak et al. sec. 5, alg. 2.
Normalisations and learning-rate schedules follow the authors' reference implementation
(github.com/mkhodak/learning-to-relax); each is stated where it is used.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import ClassVar, Literal

import numpy as np
from scipy.optimize import lsq_linear

from optbench.contracts.algorithm import Algorithm, Progress
from optbench.contracts.context import RunContext
from optbench.contracts.errors import ConfigError
from optbench.contracts.parameter_sequence import ParameterSequenceProblem
from optbench.contracts.problem import ProblemKind


def _arm_grid(omega_min: float, omega_max: float, n_omegas: int) -> np.ndarray:
    if not 0 < omega_min <= omega_max < 2:
        raise ConfigError(
            f"omega_min: need 0 < omega_min <= omega_max < 2, got {omega_min}, {omega_max}"
        )
    if n_omegas < 1:
        raise ConfigError(f"n_omegas: must be >= 1, got {n_omegas}")
    return np.linspace(omega_min, omega_max, n_omegas)


class ParameterLearner(Algorithm):
    """The instance loop shared by every parameter_sequence algorithm: ``choose`` an omega for
    instance t, let the problem solve it, ``observe`` the cost."""

    accepts: ClassVar[frozenset[ProblemKind]] = frozenset({ProblemKind.PARAMETER_SEQUENCE})

    def start(self, problem: ParameterSequenceProblem, ctx: RunContext) -> None:
        """Called once before the first instance."""

    def choose(self, t: int, context: float | None) -> float:
        raise NotImplementedError

    def observe(self, cost: int) -> None:
        """The cost of the omega just chosen."""

    def step_metrics(self) -> dict[str, float]:
        """Further progress metrics of the instance just solved (default none)."""
        return {}

    def run(self, problem: ParameterSequenceProblem, ctx: RunContext) -> Iterator[Progress]:
        self.rng = ctx.algorithm_random.numpy
        self.start(problem, ctx)
        yield Progress(None)
        for t in range(problem.n_instances):
            omega = float(self.choose(t, problem.context(t)))
            cost = problem.solve(t, omega)
            self.observe(cost)
            metrics = {"omega": omega, "iterations": float(cost), **self.step_metrics()}
            yield Progress(omega, metrics)


class FixedOmega(ParameterLearner):
    """Always ``omega`` (1.0 is Gauss-Seidel / symmetric Gauss-Seidel)."""

    def __init__(self, omega: float = 1.0) -> None:
        if not 0 < omega < 2:
            raise ConfigError(f"omega: must be in (0, 2), got {omega}")
        self.omega = omega

    def choose(self, t: int, context: float | None) -> float:
        return self.omega


#: how Tsallis-INF finds its normaliser x (see ``TsallisINFState``)
Normalizer = Literal["exact", "authors"]


class TsallisINFState:
    """One 1/2-Tsallis-INF learner over ``d`` arms (Zimmert and Seldin 2021, alg. 1).

    At round t (1-based) with learning rate ``eta_t = 2 / sqrt(t)``, the play distribution is
    ``p_i = 4 (eta_t (Lhat_i / s - x))^{-2}`` with x < min Lhat / s the normaliser that makes
    the p_i sum to 1. ``Lhat_i`` accumulates importance-weighted shifted costs ``(c - 1) / p_i``
    of arm i when played (costs are >= 1 iterations); ``s``, the mean observed cost minus 1,
    puts them on a unit scale (the authors' normalisation, learners/TsallisINF.m).

    ``normalizer``:
    - ``exact`` (default): Newton's method from ``min Lhat / s - 2 / eta``, where the sum is
      >= 1, so the iterates decrease monotonically to the root; run to ``|sum p - 1| < 1e-13``.
    - ``authors``: the authors' code, 20 Newton steps from ``x = -1``. Once the cumulative losses
      grow (after ~100-150 rounds on the shifted-Laplacian sequences) a step from the left of
      the root overshoots the pole at ``min Lhat / s`` and the "probabilities" no longer sum to 1
      (to ~1e13); the arm is sampled from the weights normalised (MATLAB ``randsample``), but
      the importance weight is the unnormalised ``p_i``, so the leading arm stops accumulating
      loss and is played with probability ~1: an explore-then-commit learner. Offered to
      reproduce the published curves, not as a correct Tsallis-INF.
    ``mass`` is the sum of the weights of the last draw (1 for ``exact``).
    """

    def __init__(self, d: int, normalizer: Normalizer = "exact") -> None:
        if normalizer not in ("exact", "authors"):
            raise ConfigError(f"normalizer: must be 'exact' or 'authors', got {normalizer!r}")
        self.d = d
        self.normalizer = normalizer
        self.t = 1
        self.cumulative = np.zeros(d)
        self.total_cost = 0.0
        self.arm = -1
        self.prob = 1.0
        self.mass = 1.0

    def scaled_losses(self) -> np.ndarray:
        observed = self.t - 1
        scale = self.total_cost / observed - 1.0 if observed else 1.0
        return self.cumulative / (scale if scale > 0 else 1.0)

    def weights(self) -> np.ndarray:
        """The arm weights of this round: the probabilities (``exact``), or the authors'
        20-step Newton iterate's weights, which need not sum to 1 (``authors``)."""
        eta = 2.0 / math.sqrt(self.t)
        losses = self.scaled_losses()
        if self.normalizer == "authors":
            x = -1.0
            for _ in range(20):
                p = 4.0 / (eta * (losses - x)) ** 2
                x -= (p.sum() - 1.0) / (eta * (p**1.5).sum())
            return p
        x = losses.min() - 2.0 / eta
        for _ in range(100):
            gap = eta * (losses - x)
            p = 4.0 / gap**2
            excess = p.sum() - 1.0
            if abs(excess) < 1e-13:
                break
            x -= excess / (eta * (p**1.5).sum())
        return p / p.sum()

    def probabilities(self) -> np.ndarray:
        """The distribution the arm is drawn from (the weights, normalised for ``authors``)."""
        w = self.weights()
        return w if self.normalizer == "exact" else w / w.sum()

    def draw(self, rng: np.random.Generator) -> int:
        w = self.weights()
        self.mass = float(w.sum())
        if self.normalizer == "exact":
            self.arm = int(rng.choice(self.d, p=w))
        elif np.isfinite(self.mass) and self.mass > 0 and np.all(w >= 0):
            self.arm = int(rng.choice(self.d, p=w / self.mass))
        else:  # the authors' code samples uniformly when randsample refuses the weights
            self.arm = int(rng.integers(self.d))
        self.prob = float(w[self.arm])
        return self.arm

    def update(self, cost: float) -> None:
        self.cumulative[self.arm] += (cost - 1.0) / self.prob
        self.total_cost += cost
        self.t += 1


class TsallisINF(ParameterLearner):
    """Tsallis-INF over ``linspace(omega_min, omega_max, n_omegas)`` (the paper: 1 to 1.95,
    20 arms); bandit feedback only, context ignored. ``normalizer``: see ``TsallisINFState``
    (``authors`` also reports ``weight_sum``, the sum of the weights drawn from, per instance).
    """

    def __init__(
        self,
        omega_min: float = 1.0,
        omega_max: float = 1.95,
        n_omegas: int = 20,
        normalizer: Normalizer = "exact",
    ) -> None:
        self.arms = _arm_grid(omega_min, omega_max, n_omegas)
        TsallisINFState(1, normalizer)  # checks the value
        self.normalizer = normalizer

    def start(self, problem: ParameterSequenceProblem, ctx: RunContext) -> None:
        self.learner = TsallisINFState(len(self.arms), self.normalizer)

    def choose(self, t: int, context: float | None) -> float:
        self.current = self.learner
        return float(self.arms[self.learner.draw(self.rng)])

    def observe(self, cost: int) -> None:
        self.current.update(cost)

    def step_metrics(self) -> dict[str, float]:
        return {"weight_sum": self.current.mass} if self.normalizer == "authors" else {}


def _context_interval(
    problem: ParameterSequenceProblem, low: float | None, high: float | None
) -> tuple[float, float]:
    if problem.context_range is None and (low is None or high is None):
        raise ConfigError(
            "context_min: the problem offers no context; a contextual algorithm needs one"
        )
    a = low if low is not None else problem.context_range[0]  # type: ignore[index]
    b = high if high is not None else problem.context_range[1]  # type: ignore[index]
    if not b > a:
        b = a + 1.0  # a degenerate interval (constant context): one bin, constant features
    return float(a), float(b)


class TsallisINFCB(TsallisINF):
    """Contextual Tsallis-INF: ``n_bins`` equal bins of the context interval
    ``[context_min, context_max]`` (default: the problem's ``context_range``; contexts outside
    go to the nearest bin, as the authors' nearest-bin-centre rule does), an independent
    Tsallis-INF in each. The authors use 5 bins for the shifted Laplacians, 6 for the heat
    equation (scripts/contextual.m, h2d.m)."""

    def __init__(
        self,
        n_bins: int = 5,
        context_min: float | None = None,
        context_max: float | None = None,
        omega_min: float = 1.0,
        omega_max: float = 1.95,
        n_omegas: int = 20,
        normalizer: Normalizer = "exact",
    ) -> None:
        super().__init__(omega_min, omega_max, n_omegas, normalizer)
        if n_bins < 1:
            raise ConfigError(f"n_bins: must be >= 1, got {n_bins}")
        self.n_bins, self.context_min, self.context_max = n_bins, context_min, context_max

    def start(self, problem: ParameterSequenceProblem, ctx: RunContext) -> None:
        self.low, self.high = _context_interval(problem, self.context_min, self.context_max)
        self.learners = [
            TsallisINFState(len(self.arms), self.normalizer) for _ in range(self.n_bins)
        ]

    def bin(self, context: float) -> int:
        position = (context - self.low) / (self.high - self.low) * self.n_bins
        return min(max(math.floor(position), 0), self.n_bins - 1)

    def choose(self, t: int, context: float | None) -> float:
        self.current = self.learners[self.bin(float(context))]  # type: ignore[arg-type]
        return float(self.arms[self.current.draw(self.rng)])


class ChebCB(ParameterLearner):
    """ChebCB (Khodak et al. 2024, alg. 2; learners/ChebCB.m): per arm, a least-squares fit of
    the normalised cost on the Chebyshev features ``T_0(z) .. T_{m-1}(z)`` (m = degree + 1) of
    the context rescaled to ``z in [-1, 1]``; arms drawn by inverse gap weighting
    ``p_i = 1 / (d + eta (yhat_i - yhat_min))`` (the best arm gets the rest).

    Normalisation and schedule (as in the authors' implementation): with K the largest cost seen
    and Lip = (K - c_min) / (context width), targets are ``(c - 1) / S`` with ``S = K N``,
    ``N = 2 + 4 width Lip / K (1 + log m)``; coefficients are kept in the box
    ``|theta_0| <= 1/N``, ``|theta_j| <= 2 width Lip / (S j)`` (the decay of a Lipschitz
    function's Chebyshev coefficients), solving a bounded least-squares problem when the plain
    one leaves it (exactly, by BVLS; ``resnorm``: the squared residual of the last bounded fit, 0
    if none); ``eta_t = 2 t sqrt(d t / (R_t - resnorm + 2 alpha^2 t))`` with R_t the squared
    error of the predictions made so far and
    ``alpha = (pi + (2/pi) log(2m + 1)) width Lip / (2 S (m + 1))`` the truncation error.

    ``estimates`` says what c_min and R_t's targets are:
    - ``authors`` (their code): c_min is the minimum of a cost array preallocated with zeros for
      the whole sequence, so 0 until the last instance (Lip = K / width, N = 2 + 4 (1 + log m)
      constant); R_t measures the predictions against ``c / S``.
    - ``observed``: c_min is the smallest cost observed; R_t against the fitted ``(c - 1) / S``.
    A non-positive denominator (never seen) leaves eta unchanged.
    """

    def __init__(
        self,
        degree: int = 5,
        context_min: float | None = None,
        context_max: float | None = None,
        omega_min: float = 1.0,
        omega_max: float = 1.95,
        n_omegas: int = 20,
        estimates: Literal["authors", "observed"] = "authors",
    ) -> None:
        if degree < 0:
            raise ConfigError(f"degree: must be >= 0, got {degree}")
        if estimates not in ("authors", "observed"):
            raise ConfigError(f"estimates: must be 'authors' or 'observed', got {estimates!r}")
        self.m = degree + 1
        self.context_min, self.context_max = context_min, context_max
        self.arms = _arm_grid(omega_min, omega_max, n_omegas)
        self.estimates = estimates

    def start(self, problem: ParameterSequenceProblem, ctx: RunContext) -> None:
        self.low, self.high = _context_interval(problem, self.context_min, self.context_max)
        self.width = self.high - self.low
        T, d = problem.n_instances, len(self.arms)
        self.features = np.zeros((T, self.m))
        self.costs = np.zeros(T)
        self.actions = np.zeros(T, dtype=int)
        self.predicted = np.zeros(T)
        self.theta = np.zeros((d, self.m))
        self.eta = 0.0
        self.scale = 0.0
        self.t = 0

    def feature(self, context: float) -> np.ndarray:
        z = 2.0 * (context - self.low) / self.width - 1.0
        return np.polynomial.chebyshev.chebvander(np.array([z]), self.m - 1)[0]

    def probabilities(self, phi: np.ndarray) -> np.ndarray:
        """Inverse-gap-weighted arm probabilities at features ``phi``."""
        yhat = self.theta @ phi
        best = int(np.argmin(yhat))
        p = 1.0 / (len(self.arms) + self.eta * (yhat - yhat[best]))
        p[best] = 0.0
        p[best] = 1.0 - p.sum()
        return p

    def choose(self, t: int, context: float | None) -> float:
        phi = self.feature(float(context))  # type: ignore[arg-type]
        arm = int(self.rng.choice(len(self.arms), p=self.probabilities(phi)))
        self.features[self.t], self.actions[self.t] = phi, arm
        self.predicted[self.t] = self.theta[arm] @ phi
        return float(self.arms[arm])

    def observe(self, cost: int) -> None:
        t = self.t
        self.costs[t] = cost
        seen = self.costs[: t + 1]
        K = seen.max()
        smallest = self.costs.min() if self.estimates == "authors" else seen.min()
        lip = (K - smallest) / self.width
        N = 2.0 + 4.0 * self.width * lip / K * (1.0 + math.log(self.m))
        rescale = self.scale != K * N
        self.scale = K * N
        upper = np.concatenate(
            [[1.0 / N], 2.0 * self.width * lip / self.scale / np.arange(1, self.m)]
        )
        upper = np.maximum(upper, 1e-12)  # lip = 0 (one distinct cost so far): a constant fit
        resnorm = 0.0
        for arm in range(len(self.arms)) if rescale else [self.actions[t]]:
            rows = np.flatnonzero(self.actions[: t + 1] == arm)
            if len(rows) == 0:
                continue
            X, y = self.features[rows], (self.costs[rows] - 1.0) / self.scale
            theta = np.linalg.lstsq(X, y, rcond=None)[0]
            if np.any(np.abs(theta) > upper):
                theta = lsq_linear(X, y, bounds=(-upper, upper), method="bvls").x
                resnorm = float(((X @ theta - y) ** 2).sum())
            self.theta[arm] = theta
        alpha = (math.pi + 2.0 / math.pi * math.log(2 * self.m + 1)) / (
            2.0 * self.scale * (self.m + 1)
        )
        alpha *= self.width * lip
        n = t + 1
        shift = 0.0 if self.estimates == "authors" else 1.0
        targets = (self.costs[:n] - shift) / self.scale
        residual = float(((self.predicted[:n] - targets) ** 2).sum())
        denominator = residual - resnorm + 2.0 * alpha**2 * n
        if denominator > 0:
            self.eta = 2.0 * n * math.sqrt(len(self.arms) * n / denominator)
        self.t += 1
