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

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

#: where each name lives; imported on first use, so that ``optbench.contracts.errors`` (the
#: command line's error handling) does not import torch through ``context``
_HOMES = {
    "Algorithm": "algorithm",
    "Progress": "algorithm",
    "RunInput": "algorithm",
    "Cache": "context",
    "MemoryCache": "context",
    "RandomStream": "context",
    "RunContext": "context",
    "CompatibilityError": "errors",
    "ConfigError": "errors",
    "DataError": "errors",
    "DeviceError": "errors",
    "OptbenchError": "errors",
    "TrackingError": "errors",
    "Problem": "problem",
    "ProblemKind": "problem",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'optbench.contracts' has no attribute '{name}'")
    value = getattr(importlib.import_module(f"optbench.contracts.{_HOMES[name]}"), name)
    globals()[name] = value
    return value


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
