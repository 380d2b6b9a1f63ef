"""The algorithm contract.

An algorithm *proposes*; the problem scores and the runner drives. An algorithm is a class built
from its hyperparameters (the YAML under ``configs/algorithm/``); its ``__init__`` signature, with
type hints, is its config schema: the runner refuses unknown keys and wrong types before anything
runs, naming the key. Raise ``ConfigError`` for a value out of range, with a message starting
with the parameter's name.

``run(problem, ctx)`` is a generator. Each ``next()`` performs one step (one iteration of the
method, as the method's paper counts them) and yields a ``Progress``. The runner owns the budget
(``max_steps``, ``time_limit_s``, a target on a metric), evaluation, divergence detection and all
logging; the generator owns nothing beyond its own convergence test (``Progress.converged``).
Returning (``StopIteration``) means the method cannot continue and ends the run as finished;
a returned string (``return "singular Jacobian"``) becomes the run's stop reason. Random numbers
come from ``ctx.algorithm_random`` only.

An algorithm that needs what another run produced (e.g. the refined schedule reads the gradient
norms of a linear-decay run) declares it in ``inputs()``: the runner reads each input from the
store before the algorithm's clock starts and hands it over as ``ctx.inputs[name]``; a sweep runs
the runs an input comes from first.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from optbench.contracts.context import RunContext
from optbench.contracts.problem import Problem, ProblemKind


@dataclass
class Progress:
    """What one step of an algorithm reports.

    ``solution``: the current iterate (a cheap reference; the runner evaluates it before asking
    for the next step). ``metrics``: numbers the algorithm knows for free (step size, minibatch
    loss, inner iterations, chosen arm); logged as ``progress/<name>``. ``converged``: the
    algorithm's own convergence test fired; the run ends as finished.
    """

    solution: Any
    metrics: dict[str, float] = field(default_factory=dict)
    converged: bool = False


@dataclass(frozen=True)
class RunInput:
    """A per-step series another run produced, which an algorithm needs before it starts.

    The source run is the FINISHED run whose config equals this run's config with the dotted-key
    ``changes`` applied. With ``best_over`` (dotted keys), it is, among the runs that differ from
    that config only in those keys, the one with the best final ``metric`` (``goal`` min or max).
    ``series`` names the source's per-step progress metric (e.g. ``grad_norm``).
    """

    name: str
    changes: Mapping[str, Any]
    series: str
    best_over: Sequence[str] = ()
    metric: str | None = None
    goal: str = "min"


class Algorithm(ABC):
    """Base of every algorithm: declare ``accepts`` and implement ``run``."""

    #: The problem kinds this algorithm can solve; the runner refuses any other pairing.
    accepts: ClassVar[frozenset[ProblemKind]]

    def inputs(self) -> Sequence[RunInput]:
        """What this algorithm reads from other runs (none by default)."""
        return ()

    def warm_up(self, problem: Problem) -> None:
        """One-off work of the process that the first step on ``problem`` would otherwise pay
        inside the run's clock (e.g. an import made by a library on first use); the runner calls
        it after ``problem.setup``, before the clock starts. Nothing by default."""
        return None

    @abstractmethod
    def run(self, problem: Problem, ctx: RunContext) -> Iterator[Progress]:
        """Iterate on ``problem``, yielding one ``Progress`` per step."""
