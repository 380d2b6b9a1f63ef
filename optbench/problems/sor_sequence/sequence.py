"""What the SOR-sequence problems share: the record of solved instances, the hindsight cost
table (computed lazily, kept in the run context's cache), replay from it, and the scoring.

A concrete problem implements ``_key()`` (everything the instance stream depends on),
``_instances()`` (the instances in order, for the table), ``_solve_instance``,
``_instance_optimal``, and the online path: ``context``, ``_solve_online`` (solve instance t
with a parameter and advance) and ``_skip`` (advance past instance t without solving it).

Cache: the entry (namespace ``parameter_sequence``) keyed by the problem's class and ``_key()``
holds, for every instance of the stream, the iteration count and the solve's wall time at every
``oracle_grid`` parameter (``costs``, ``times``), the instance-optimal parameter and its count
(``optimal_parameter``, ``optimal_cost``), plus problem-specific baselines (e.g.
unpreconditioned CG). The key covers the problem's class, its parameters, the number of
instances and the seed that generated the stream, and a version number bumped whenever the
solver or the table's contents change.

Replay (``replay=true``): the solvers are deterministic, so the iteration count of instance t at
a grid parameter is the table's entry; ``solve`` then reads it (and the wall time measured when
the table was built) instead of solving again, and counts it under ``replayed``. A learner whose
arms are the grid (the presets' learners: 20 omegas in [1, 1.95]) then costs the table once per
(sequence, seed) plus its own arithmetic, which makes the paper's T = 5000 affordable. Parameters
off the grid (the instance-optimal oracle's) are still solved.
"""

from __future__ import annotations

import logging
import time
from abc import abstractmethod
from collections.abc import Iterator
from typing import Any

import numpy as np

from optbench.contracts.context import Cache, MemoryCache, RunContext
from optbench.contracts.errors import ConfigError
from optbench.contracts.parameter_sequence import ParameterSequenceProblem
from optbench.problems.sor_sequence import kernels

log = logging.getLogger("optbench")
CACHE_VERSION = 2  # 2: per-cell solve times (replay)


def check_grid(omega_min: float, omega_max: float, n_omegas: int, upper: float) -> None:
    if not 0 < omega_min <= omega_max < upper:
        raise ConfigError(
            f"omega_min: need 0 < omega_min <= omega_max < {upper}, got {omega_min}, {omega_max}"
        )
    if n_omegas < 1:
        raise ConfigError(f"n_omegas: must be >= 1, got {n_omegas}")


class SolverSequence(ParameterSequenceProblem):
    """Record, hindsight baselines and ``evaluate`` for a sequence solved by an omega-solver."""

    parameter_range = (0.0, 2.0)

    def __init__(
        self,
        n_instances: int,
        omega_min: float,
        omega_max: float,
        n_omegas: int,
        tol: float,
        max_iterations: int,
        replay: bool = False,
    ) -> None:
        super().__init__()
        if n_instances < 1:
            raise ConfigError(f"n_instances: must be >= 1, got {n_instances}")
        check_grid(omega_min, omega_max, n_omegas, 2.0)
        if not 0 < tol < 1:
            raise ConfigError(f"tol: must be in (0, 1), got {tol}")
        if max_iterations < 1:
            raise ConfigError(f"max_iterations: must be >= 1, got {max_iterations}")
        self.n_instances = n_instances
        self.omega_min, self.omega_max, self.n_omegas = omega_min, omega_max, n_omegas
        self.tol, self.max_iterations = tol, max_iterations
        self.replay = bool(replay)
        self.costs: list[int] = []
        self.parameters: list[float] = []
        self.solve_time_s = 0.0
        self._table: dict[str, np.ndarray] | None = None
        self._cache: Cache = MemoryCache()

    def setup(self, ctx: RunContext) -> None:
        """Keep the run's cache and load the compiled solvers through it (subclasses build the
        sequence after calling this)."""
        self._cache = ctx.cache
        kernels.load(ctx.cache)

    # -- the online record -----------------------------------------------------------------------
    def _check_next(self, t: int, parameter: float) -> None:
        if t != len(self.costs):
            raise ValueError(
                f"instances are solved in order: expected t={len(self.costs)}, got {t}"
            )
        if t >= self.n_instances:
            raise ValueError(f"the sequence has {self.n_instances} instances; t={t} is past it")
        low, high = self.parameter_range
        if not low < parameter < high:
            raise ValueError(f"parameter {parameter} outside ({low}, {high})")

    def solve(self, t: int, parameter: float) -> int:
        """Solve instance t with ``parameter`` (or replay its table entry, see the module)."""
        self._check_next(t, parameter)
        column = self._grid_column(parameter) if self.replay else None
        if column is None:
            iterations, seconds = self._solve_online(t, parameter)
        else:
            table = self._load_table()
            iterations, seconds = int(table["costs"][t, column]), float(table["times"][t, column])
            self.counters["replayed"] += 1
            self._skip(t)
        return self._record(parameter, iterations, seconds)

    def _grid_column(self, parameter: float) -> int | None:
        grid = self.oracle_grid
        j = int(np.argmin(np.abs(grid - parameter)))
        return j if abs(grid[j] - parameter) <= 1e-12 else None

    @abstractmethod
    def _solve_online(self, t: int, parameter: float) -> tuple[int, float]:
        """Solve instance t (the next one) with ``parameter``; (iterations, seconds)."""

    def _skip(self, t: int) -> None:
        """Advance past instance t without solving it (replay). Default: nothing to do."""

    def _record(self, parameter: float, iterations: int, seconds: float) -> int:
        self.costs.append(int(iterations))
        self.parameters.append(float(parameter))
        self.solve_time_s += seconds
        self.counters["instances"] += 1
        self.counters["iterations"] += int(iterations)
        return int(iterations)

    # -- the hindsight table ---------------------------------------------------------------------
    @property
    def oracle_grid(self) -> np.ndarray:
        return np.linspace(self.omega_min, self.omega_max, self.n_omegas)

    @abstractmethod
    def _key(self) -> dict[str, Any]:
        """Everything the instance stream and the solver's counts depend on (JSON-able)."""

    @abstractmethod
    def _instances(self) -> Iterator[Any]:
        """The instances in order (a fresh pass), as objects ``_solve_instance`` accepts."""

    @abstractmethod
    def _solve_instance(self, instance: Any, omega: float) -> int:
        """Iterations to solve ``instance`` with ``omega`` (uncounted)."""

    @abstractmethod
    def _instance_optimal(self, instance: Any, grid_costs: np.ndarray) -> tuple[float, int]:
        """The instance-optimal omega of ``instance`` and its count (grid costs given)."""

    def _extra_baselines(self, instance: Any) -> dict[str, float]:
        """Further per-instance baselines stored in the table (e.g. plain CG). Default none."""
        return {}

    def _load_table(self) -> dict[str, np.ndarray]:
        if self._table is None:
            key = {"class": type(self).__name__, "version": CACHE_VERSION, **self._key()}
            self._table = self._cache.get_or_compute("parameter_sequence", key, self._compute_table)
        return self._table

    def _compute_table(self) -> dict[str, np.ndarray]:
        started = time.perf_counter()
        grid = self.oracle_grid
        rows: dict[str, list[Any]] = {}
        for instance in self._instances():
            costs, times = np.zeros(len(grid), dtype=np.int64), np.zeros(len(grid))
            for j, w in enumerate(grid):
                tick = time.perf_counter()
                costs[j] = self._solve_instance(instance, w)
                times[j] = time.perf_counter() - tick
            omega, cost = self._instance_optimal(instance, costs)
            values = {
                "costs": costs,
                "times": times,
                "optimal_parameter": omega,
                "optimal_cost": cost,
            }
            values.update(self._extra_baselines(instance))
            for k, v in values.items():
                rows.setdefault(k, []).append(v)
        table = {k: np.asarray(v) for k, v in rows.items()}
        log.info(
            "%s cost table (%d instances) computed in %.1f s",
            type(self).__name__,
            self.n_instances,
            time.perf_counter() - started,
        )
        return table

    def cost_table(self) -> np.ndarray:
        return self._load_table()["costs"]

    def instance_optimal_parameters(self) -> np.ndarray:
        return self._load_table()["optimal_parameter"]

    # -- scoring ---------------------------------------------------------------------------------
    def evaluate(self, solution: Any = None) -> dict[str, float]:
        """Scores the online record the problem's counted oracle (``solve``) kept of the
        instances solved so far: in an online problem the cost is what was paid along the way,
        not a property of the last parameter played (``solution``). Nothing is reported before
        the first instance."""
        s = len(self.costs)
        total = float(sum(self.costs))
        metrics = {"instances": float(s), "cumulative_iterations": total}
        if s == 0:
            return metrics
        table = self._load_table()
        column_sums = table["costs"][:s].sum(axis=0)
        best = int(np.argmin(column_sums))
        fixed = float(column_sums[best])
        optimal = float(table["optimal_cost"][:s].sum())
        metrics.update(
            best_fixed_iterations=fixed,
            best_fixed_omega=float(self.oracle_grid[best]),
            instance_optimal_iterations=optimal,
            grid_instance_best_iterations=float(table["costs"][:s].min(axis=1).sum()),
            regret_best_fixed=total - fixed,
            regret_instance_optimal=total - optimal,
            mean_iterations=total / s,
            solve_time_s=self.solve_time_s,
        )
        if fixed > 0:
            metrics["ratio_to_best_fixed"] = total / fixed
        if optimal > 0:
            metrics["ratio_to_instance_optimal"] = total / optimal
        return metrics
