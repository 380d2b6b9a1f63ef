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
a returned string (``return "singular Jacobian"``) becomes the run's stop reason.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from optbench.platform.context import RunContext
from optbench.problems.base import Problem, ProblemKind


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


class Algorithm(ABC):
    """Base of every algorithm: declare ``accepts`` and implement ``run``."""

    #: The problem kinds this algorithm can solve; the runner refuses any other pairing.
    accepts: ClassVar[frozenset[ProblemKind]]

    @abstractmethod
    def run(self, problem: Problem, ctx: RunContext) -> Iterator[Progress]:
        """Iterate on ``problem``, yielding one ``Progress`` per step."""
