"""``heat_equation``: SSOR-preconditioned CG along a Crank-Nicolson heat-equation simulation.

Khodak, Chow, Balcan, Talwalkar, "Learning to Relax" (ICLR 2024), sec. 6 "heat equation" (and
the authors' scripts): ``u_t = kappa(t) Laplace(u) + f(t, x)`` on the unit square, zero
Dirichlet boundary, ``nx`` cells per side, Crank-Nicolson with step ``dt``. Instance k (time
``t_k = k dt``) is ``A_k = I - (1/2) kappa(t_k + dt/2) dt L_h``,
``b_k = (I + (1/2) kappa dt L_h) u_k + dt f(t_k + dt/2)``, with
``kappa(t) = max(0.1 sin 2 pi t, -10 sin 2 pi t)``, ``f`` a radius-0.125 bump of height 32
circling the centre, ``u_0`` a radius-0.25 bump at the centre (see ``grids``). It is solved by
CG preconditioned with SSOR(omega), warm-started at ``u_k``, to ``||r|| <= tol ||b||``; the cost
is the CG iteration count. SSOR's sweeps run backward then forward (``ssor_order``, as MATLAB's
``pcg`` applies the authors' factors; ``forward_backward`` is the mirrored preconditioner
``(D + omega L) D^{-1} (D + omega U)``, a different matrix with nearly the same counts).

The context is ``kappa(t_k)``, the coefficient at the step's start, as the authors' scripts read
it (``pde.coefficient(pde.t)`` in scripts/h2d.m), although the system uses
``kappa(t_k + dt/2)`` (``context_time: midpoint`` gives that one). The context interval is the
authors' ``[min, max]`` of ``kappa`` over ``linspace(0, T dt, T)``, T the number of steps.

The sequence is the exact Crank-Nicolson trajectory: ``u_{k+1} = A_k^{-1} b_k`` by a direct
(discrete-sine-transform) solve, whatever omega was played, so every algorithm faces the same
instances and the hindsight table is well defined (the authors advance with the solver's own
1e-8-accurate solution; the difference is far below the tolerance).

No formula gives SSOR-PCG's best omega, so the instance-optimal omega is searched per instance
(as the authors do): from the best ``oracle_grid`` point, a golden-section search of
``golden_steps`` further evaluations inside its neighbouring grid interval; the optimum is the
best of all evaluations. The table also stores unpreconditioned CG's iterations and wall time per
instance, for ``iterations_vs_cg`` and ``time_vs_cg``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from optbench.contracts.context import RunContext
from optbench.contracts.errors import ConfigError
from optbench.problems.sor_sequence.grids import HeatGrid, kappa
from optbench.problems.sor_sequence.kernels import SWEEP_ORDERS, SplitCSR, SweepOrder, pcg_solve
from optbench.problems.sor_sequence.sequence import SolverSequence

GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0


def golden_section(
    cost: Any, grid: np.ndarray, grid_costs: np.ndarray, steps: int
) -> tuple[float, int]:
    """Minimise integer-valued ``cost(omega)`` given its values on ``grid``: golden-section
    search with ``steps`` evaluations in the bracket of grid neighbours around the best grid
    point. Returns the best (omega, cost) over every evaluation (grid points included)."""
    i = int(np.argmin(grid_costs))
    best_omega, best_cost = float(grid[i]), int(grid_costs[i])
    lo = float(grid[max(i - 1, 0)])
    hi = float(grid[min(i + 1, len(grid) - 1)])
    if steps <= 0 or hi <= lo:
        return best_omega, best_cost
    x1, x2 = hi - GOLDEN * (hi - lo), lo + GOLDEN * (hi - lo)
    f1, f2 = cost(x1), cost(x2)
    evaluations = [(x1, f1), (x2, f2)]
    for _ in range(steps - 2):
        if f1 <= f2:
            hi, x2, f2 = x2, x1, f1
            x1 = hi - GOLDEN * (hi - lo)
            f1 = cost(x1)
            evaluations.append((x1, f1))
        else:
            lo, x1, f1 = x1, x2, f2
            x2 = lo + GOLDEN * (hi - lo)
            f2 = cost(x2)
            evaluations.append((x2, f2))
    for omega, value in evaluations:
        if value < best_cost:
            best_omega, best_cost = float(omega), int(value)
    return best_omega, best_cost


@dataclass
class HeatInstance:
    k: int
    kappa: float
    matrix: SplitCSR
    b: np.ndarray
    u: np.ndarray  # the warm start u_k
    shift: float  # s = kappa dt / 2


class HeatEquation(SolverSequence):
    """SSOR-PCG along a Crank-Nicolson heat simulation; cost = CG iterations; context = kappa.

    Args:
        n_instances: the number of time steps (the paper: 5000); one runner step solves one.
        nx: cells per side ((nx - 1)^2 unknowns); the paper uses 25, 50, 100, 200, 400.
        dt: the time step (the paper: 0.001).
        omega_min, omega_max, n_omegas: the grid of the best-fixed-omega baseline.
        golden_steps: evaluations of the per-instance golden-section search.
        tol, max_iterations: CG's stopping rule ``||r|| <= tol ||b||`` and iteration cap.
        ssor_order: ``backward_forward`` (the authors') or ``forward_backward``.
        context_time: ``start`` (kappa(t_k), the authors') or ``midpoint`` (kappa(t_k + dt/2)).
        replay: read grid parameters' counts (and times) from the cost table (``sequence``).
    """

    def __init__(
        self,
        n_instances: int = 1000,
        nx: int = 50,
        dt: float = 0.001,
        omega_min: float = 1.0,
        omega_max: float = 1.95,
        n_omegas: int = 20,
        golden_steps: int = 8,
        tol: float = 1e-8,
        max_iterations: int = 10000,
        ssor_order: SweepOrder = "backward_forward",
        context_time: Literal["start", "midpoint"] = "start",
        replay: bool = False,
    ) -> None:
        super().__init__(n_instances, omega_min, omega_max, n_omegas, tol, max_iterations, replay)
        if ssor_order not in SWEEP_ORDERS:
            raise ConfigError(f"ssor_order: must be one of {SWEEP_ORDERS}, got {ssor_order!r}")
        if context_time not in ("start", "midpoint"):
            raise ConfigError(f"context_time: must be 'start' or 'midpoint', got {context_time!r}")
        self.ssor_order, self.context_time = ssor_order, context_time
        if nx < 3:
            raise ConfigError(f"nx: must be >= 3, got {nx}")
        if dt <= 0:
            raise ConfigError(f"dt: must be > 0, got {dt}")
        if golden_steps < 0:
            raise ConfigError(f"golden_steps: must be >= 0, got {golden_steps}")
        self.nx, self.dt, self.golden_steps = nx, dt, golden_steps

    def setup(self, ctx: RunContext) -> None:
        super().setup(ctx)
        self.grid = HeatGrid(self.nx)
        self.base = SplitCSR.from_matrix(self.grid.L)
        T = self.n_instances
        self.kappas = np.asarray(kappa((np.arange(T) + 0.5) * self.dt), dtype=float)
        offset = 0.0 if self.context_time == "start" else 0.5
        self.contexts = np.asarray(kappa((np.arange(T) + offset) * self.dt), dtype=float)
        authors = np.asarray(kappa(np.linspace(0.0, T * self.dt, T)), dtype=float)
        self.context_range = (float(authors.min()), float(authors.max()))
        self._u = self.grid.initial()

    def describe(self) -> dict[str, Any]:
        return {
            "n": self.grid.n,
            "nx": self.nx,
            "dt": self.dt,
            "instances": self.n_instances,
        }

    # -- instances -------------------------------------------------------------------------------
    def _instance(self, k: int, u: np.ndarray) -> HeatInstance:
        s, b = self.grid.system_parts(k * self.dt, self.dt, u)
        return HeatInstance(k, float(self.kappas[k]), self.base.affine(-s, 1.0), b, u, s)

    def _instances(self) -> Iterator[HeatInstance]:
        u = self.grid.initial()
        for k in range(self.n_instances):
            inst = self._instance(k, u)
            yield inst
            u = self.grid.solve_shifted(inst.shift, inst.b)

    def context(self, t: int) -> float:
        return float(self.contexts[t])

    def _solve_online(self, t: int, parameter: float) -> tuple[int, float]:
        inst = self._instance(t, self._u)
        x = inst.u.copy()
        tick = time.perf_counter()
        iterations, _ = pcg_solve(
            inst.matrix, inst.b, x, parameter, self.tol, self.max_iterations, self.ssor_order
        )
        seconds = time.perf_counter() - tick
        self._u = self.grid.solve_shifted(inst.shift, inst.b)
        return iterations, seconds

    def _skip(self, t: int) -> None:
        inst = self._instance(t, self._u)
        self._u = self.grid.solve_shifted(inst.shift, inst.b)

    # -- hindsight -------------------------------------------------------------------------------
    def _key(self) -> dict[str, Any]:
        return {
            "nx": self.nx,
            "dt": self.dt,
            "grid": [self.omega_min, self.omega_max, self.n_omegas],
            "golden_steps": self.golden_steps,
            "ssor_order": self.ssor_order,
            "tol": self.tol,
            "max_iterations": self.max_iterations,
            "instances": self.n_instances,
        }

    def _solve_instance(self, instance: HeatInstance, omega: float | None) -> int:
        x = instance.u.copy()
        return pcg_solve(
            instance.matrix, instance.b, x, omega, self.tol, self.max_iterations, self.ssor_order
        )[0]

    def _instance_optimal(
        self, instance: HeatInstance, grid_costs: np.ndarray
    ) -> tuple[float, int]:
        return golden_section(
            lambda w: self._solve_instance(instance, w),
            self.oracle_grid,
            grid_costs,
            self.golden_steps,
        )

    def _extra_baselines(self, instance: HeatInstance) -> dict[str, float]:
        tick = time.perf_counter()
        iterations = self._solve_instance(instance, None)
        return {"cg_cost": iterations, "cg_time_s": time.perf_counter() - tick}

    def evaluate(self, solution: Any = None) -> dict[str, float]:
        """The sequence metrics plus ``iterations_vs_cg`` and ``time_vs_cg``: cumulative
        iterations and solve time relative to unpreconditioned CG on the same instances."""
        metrics = super().evaluate(solution)
        s = len(self.costs)
        if s:
            table = self._load_table()
            cg_iterations = float(table["cg_cost"][:s].sum())
            cg_time = float(table["cg_time_s"][:s].sum())
            metrics["cg_iterations"] = cg_iterations
            if cg_iterations > 0:
                metrics["iterations_vs_cg"] = metrics["cumulative_iterations"] / cg_iterations
            if cg_time > 0:
                metrics["time_vs_cg"] = self.solve_time_s / cg_time
        return metrics
