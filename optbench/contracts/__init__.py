"""The vocabulary every part of optbench speaks, importing nothing of optbench outside itself.

- ``context``: ``RunContext`` (device, dtype, the problem's and the algorithm's random streams,
  the cache, the data directory, cross-run inputs);
- ``errors``: the user-facing exception hierarchy;
- ``problem`` / ``algorithm``: ``Problem`` and ``ProblemKind``; ``Algorithm``, ``Progress`` and
  ``RunInput``;
- one module per problem kind, with its oracle interface and the small domain types its
  algorithms need: ``finite_sum``, ``nlp``, ``inventory``, ``parameter_sequence``,
  ``routing_stream``.

Problems, algorithms and the platform import from here; the platform imports no family and no
family imports the platform.
"""

from optbench.contracts.algorithm import Algorithm, Progress, RunInput
from optbench.contracts.context import Cache, MemoryCache, RandomStream, RunContext
from optbench.contracts.errors import (
    CompatibilityError,
    ConfigError,
    DataError,
    DeviceError,
    OptbenchError,
    TrackingError,
)
from optbench.contracts.problem import Problem, ProblemKind

__all__ = [
    "Algorithm",
    "Cache",
    "CompatibilityError",
    "ConfigError",
    "DataError",
    "DeviceError",
    "MemoryCache",
    "OptbenchError",
    "Problem",
    "ProblemKind",
    "Progress",
    "RandomStream",
    "RunContext",
    "RunInput",
    "TrackingError",
]
