"""Kind ``parameter_sequence``: a stream of related linear systems, one solver parameter each."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

from optbench.contracts.errors import ConfigError
from optbench.contracts.problem import Problem, ProblemKind


class ParameterSequenceProblem(Problem):
    """A sequence of ``n_instances`` linear systems solved one after another by a solver with
    one scalar parameter (SOR's or SSOR's relaxation ``omega``); the cost of an instance is the
    solver's iteration count (Khodak, Chow, Balcan, Talwalkar, "Learning to Relax", ICLR 2024).

    The problem owns the sequence, the solver and the cost. An online algorithm, at instance
    ``t = 0, 1, ...`` in order: reads ``context(t)`` (a scalar describing instance t, such as a
    diagonal shift or a diffusion coefficient, or None when the problem offers none), proposes a
    parameter in ``parameter_range``, and calls ``solve(t, parameter)``, which solves instance
    ``t`` with it and returns the iteration count (its only feedback: bandit feedback). One
    runner step is one instance; ``n_instances`` is the problem's own config key and the runner's
    ``budget.max_steps`` may not exceed it. ``solve`` counts ``instances`` and ``iterations``.

    ``evaluate`` reports, over the instances solved so far (``s`` of them):
    ``cumulative_iterations``; ``best_fixed_iterations`` (the best single parameter of
    ``oracle_grid`` in hindsight over those s instances) and ``instance_optimal_iterations``
    (each instance solved with its own optimal parameter); the ratios
    ``ratio_to_best_fixed`` and ``ratio_to_instance_optimal``; and the regrets (differences)
    ``regret_best_fixed`` and ``regret_instance_optimal``. The hindsight baselines need the cost
    of every instance at every grid parameter: an expensive table computed lazily on first need
    and kept in the run context's cache.

    Oracle interface, for oracle algorithms only (they are marked ``oracle: true`` in reports):
    ``oracle_grid``, ``cost_table()`` and ``instance_optimal_parameters()``.
    """

    kind: ClassVar[ProblemKind] = ProblemKind.PARAMETER_SEQUENCE
    stream = True
    headline = ("cumulative_iterations", "min")
    #: the number of instances in the sequence (a config key of the concrete problem).
    n_instances: int
    #: the interval a proposed parameter must lie in.
    parameter_range: tuple[float, float]
    #: the interval the contexts lie in, or None when the problem offers no context.
    context_range: tuple[float, float] | None = None

    def check_budget(self, max_steps: int) -> None:
        if max_steps > self.n_instances:
            raise ConfigError(
                f"budget.max_steps: {max_steps} steps exceed the sequence's "
                f"n_instances={self.n_instances} (one step solves one instance; raise "
                "problem.n_instances or lower budget.max_steps)"
            )

    @abstractmethod
    def context(self, t: int) -> float | None:
        """The context of instance ``t`` (seen before choosing its parameter), or None."""

    @abstractmethod
    def solve(self, t: int, parameter: float) -> int:
        """Solve instance ``t`` (the next unsolved one) with ``parameter``; its iteration count."""

    # -- oracle interface (hindsight information; never for online learners) -------------------
    @property
    @abstractmethod
    def oracle_grid(self) -> Any:
        """The parameters (a 1-D array) over which the best fixed parameter is sought."""

    @abstractmethod
    def cost_table(self) -> Any:
        """Iterations of every instance at every ``oracle_grid`` parameter: ``(n_instances,
        len(grid))`` integer array. Expensive: computed once, cached. Uncounted."""

    @abstractmethod
    def instance_optimal_parameters(self) -> Any:
        """The instance-optimal parameter of every instance (1-D array). Uncounted."""
