"""``shifted_laplacian``: SOR on a sequence of diagonally shifted 2-D Laplacians.

Khodak, Chow, Balcan, Talwalkar, "Learning to Relax" (ICLR 2024), sec. 6 (and the authors'
scripts): ``A`` is the 5-point Laplacian on the ``grid_size x grid_size`` interior of a square
grid (n = grid_size^2; the paper's 10 x 10 gives n = 100); instance t is
``A_t = A + c_t I`` with ``c_t = shift_min + shift_scale * Beta(a, b)``, high variance
``Beta(0.5, 1.5)`` or low variance ``Beta(2, 6)``; ``b_t ~ N(0, I)`` conditioned on
``||b_t|| <= sqrt(n)`` (rejection sampling); ``x_0 = 0``. The context of instance t is c_t.
Its cost is the number of natural-order SOR iterations ``x <- x + (D/omega + L)^{-1} r`` to reach
``||r_k|| / ||r_0|| < tol``, capped at ``max_iterations``. The context interval announced to
contextual learners is ``[shift_min, context_max]``: the authors' scripts pass
``[-0.15, 0.65]`` (scripts/contextual.m), wider than the shifts' support
``[shift_min, shift_min + shift_scale] = [-0.15, 0.45]``; ``context_max: null`` gives the tight
interval.

The instance-optimal omega is Young's ``omega* = 1 + (beta / (1 + sqrt(1 - beta^2)))^2``
(Young 1950; Khodak et al. eq. 2) with beta the spectral radius of the Jacobi iteration matrix
``I - D^{-1} A_t``, exact here because A is consistently ordered; for A_t with diagonal
``4 + c`` and extreme eigenvalues ``lambda +- c``, ``beta = max |1 - (lambda + c) / (4 + c)|``.

Randomness (the problem's stream, ``ctx.problem_random``): the shifts are drawn at set-up; ``b_t``
from a generator seeded by ``(stream seed, t)``, so any instance can be rebuilt on its own. The
hindsight table is cached (see ``sequence``), keyed by the problem's parameters, the number of
instances and the stream seed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from optbench.contracts.context import RunContext
from optbench.contracts.errors import ConfigError
from optbench.problems.sor_sequence.grids import laplacian_5pt, laplacian_5pt_extremes
from optbench.problems.sor_sequence.kernels import SplitCSR, sor_solve
from optbench.problems.sor_sequence.sequence import SolverSequence

#: Beta(a, b) of the shifts: the paper's high- and low-variance sequences.
VARIANCE = {"high": (0.5, 1.5), "low": (2.0, 6.0)}


def young_omega(beta: float) -> float:
    """Young's optimal SOR parameter for Jacobi spectral radius ``beta`` in [0, 1)."""
    return 1.0 + (beta / (1.0 + np.sqrt(1.0 - beta**2))) ** 2


def truncated_normal(rng: np.random.Generator, n: int) -> np.ndarray:
    """A standard normal vector in R^n conditioned on ``||b|| <= sqrt(n)`` (rejection)."""
    while True:
        b = rng.standard_normal(n)
        if b @ b <= n:
            return b


@dataclass
class ShiftedInstance:
    t: int
    shift: float
    matrix: SplitCSR
    b: np.ndarray


class ShiftedLaplacian(SolverSequence):
    """SOR on ``A + c_t I`` (5-point Laplacian); cost = iterations; context = c_t.

    Args:
        n_instances: the length of the sequence (the paper: 5000); one runner step solves one.
        grid_size: m, the grid is m x m (n = m^2 unknowns); the paper uses 10.
        variance: ``high`` (c ~ Beta(0.5, 1.5)) or ``low`` (Beta(2, 6)), scaled and shifted.
        shift_min, shift_scale: ``c_t = shift_min + shift_scale * Beta``; every A_t must be
            positive definite (shift_min > -lambda_min(A) = -(4 - 4 cos(pi / (m + 1)))).
        omega_min, omega_max, n_omegas: the grid of the best-fixed-omega baseline.
        context_max: upper end of the context interval (authors: 0.65; null: the support's).
        tol, max_iterations: SOR's stopping rule and iteration cap (the cost of a failure).
        replay: read grid parameters' counts from the cost table (see ``sequence``).
    """

    def __init__(
        self,
        n_instances: int = 1000,
        grid_size: int = 10,
        variance: Literal["high", "low"] = "high",
        shift_min: float = -0.15,
        shift_scale: float = 0.6,
        omega_min: float = 1.0,
        omega_max: float = 1.95,
        n_omegas: int = 20,
        context_max: float | None = 0.65,
        tol: float = 1e-8,
        max_iterations: int = 10000,
        replay: bool = False,
    ) -> None:
        super().__init__(n_instances, omega_min, omega_max, n_omegas, tol, max_iterations, replay)
        if grid_size < 2:
            raise ConfigError(f"grid_size: must be >= 2, got {grid_size}")
        if shift_scale < 0:
            raise ConfigError(f"shift_scale: must be >= 0, got {shift_scale}")
        low, high = laplacian_5pt_extremes(grid_size)
        if shift_min <= -low:
            raise ConfigError(
                f"shift_min: A + c I is not positive definite for c = {shift_min} on a "
                f"{grid_size} x {grid_size} grid (need c > {-low:.6g})"
            )
        self.grid_size, self.variance = grid_size, variance
        self.shift_min, self.shift_scale = shift_min, shift_scale
        self.lambda_min, self.lambda_max = low, high
        support_max = shift_min + shift_scale
        if context_max is not None and context_max < support_max:
            raise ConfigError(
                f"context_max: must be >= shift_min + shift_scale = {support_max:g} (the "
                f"largest shift), got {context_max}"
            )
        self.context_max = context_max
        self.context_range = (shift_min, support_max if context_max is None else context_max)

    def setup(self, ctx: RunContext) -> None:
        super().setup(ctx)
        a, b = VARIANCE[self.variance]
        rng = ctx.problem_random.numpy
        self.shifts = self.shift_min + self.shift_scale * rng.beta(a, b, size=self.n_instances)
        self.stream_seed = ctx.problem_random.child("right-hand sides").integer_seed()
        self.base = SplitCSR.from_matrix(laplacian_5pt(self.grid_size))
        self.n = self.base.n

    def describe(self) -> dict[str, Any]:
        return {
            "n": self.grid_size**2,
            "grid": f"{self.grid_size}x{self.grid_size}",
            "instances": self.n_instances,
            "shift_beta": VARIANCE[self.variance],
            "lambda_min_A": self.lambda_min,
        }

    # -- instances -------------------------------------------------------------------------------
    def instance(self, t: int) -> ShiftedInstance:
        """Instance t, rebuilt from its shift and its own seed."""
        shift = float(self.shifts[t])
        rng = np.random.default_rng([self.stream_seed, t])
        return ShiftedInstance(
            t, shift, self.base.affine(1.0, shift), truncated_normal(rng, self.n)
        )

    def jacobi_radius(self, shift: float) -> float:
        """Spectral radius of ``I - D^{-1} (A + shift I)`` from A's extreme eigenvalues."""
        d = 4.0 + shift
        return max(abs(1 - (self.lambda_min + shift) / d), abs(1 - (self.lambda_max + shift) / d))

    def context(self, t: int) -> float:
        return float(self.shifts[t])

    def _solve_online(self, t: int, parameter: float) -> tuple[int, float]:
        inst = self.instance(t)
        x = np.zeros(self.n)
        tick = time.perf_counter()
        iterations, _ = sor_solve(inst.matrix, inst.b, x, parameter, self.tol, self.max_iterations)
        return iterations, time.perf_counter() - tick

    # -- hindsight -------------------------------------------------------------------------------
    def _key(self) -> dict[str, Any]:
        return {
            "grid_size": self.grid_size,
            "variance": self.variance,
            "shift_min": self.shift_min,
            "shift_scale": self.shift_scale,
            "grid": [self.omega_min, self.omega_max, self.n_omegas],
            "tol": self.tol,
            "max_iterations": self.max_iterations,
            "instances": self.n_instances,
            "stream_seed": self.stream_seed,
        }

    def _instances(self) -> Iterator[ShiftedInstance]:
        return (self.instance(t) for t in range(self.n_instances))

    def _solve_instance(self, instance: ShiftedInstance, omega: float) -> int:
        x = np.zeros(self.n)
        return sor_solve(instance.matrix, instance.b, x, omega, self.tol, self.max_iterations)[0]

    def _instance_optimal(
        self, instance: ShiftedInstance, grid_costs: np.ndarray
    ) -> tuple[float, int]:
        omega = young_omega(self.jacobi_radius(instance.shift))
        return omega, self._solve_instance(instance, omega)
