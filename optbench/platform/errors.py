"""The platform's errors: the contracts' exception hierarchy, and ``Abort``.

``OptbenchError`` and its subclasses live in ``optbench.contracts.errors`` (families raise them
too); they are re-exported here so the platform has one place to import them from.
"""

from __future__ import annotations

from optbench.contracts.errors import (
    CompatibilityError,
    ConfigError,
    DataError,
    DeviceError,
    OptbenchError,
    TrackingError,
)

__all__ = [
    "Abort",
    "CompatibilityError",
    "ConfigError",
    "DataError",
    "DeviceError",
    "OptbenchError",
    "TrackingError",
]


class Abort(BaseException):
    """Carries an error out of code that Hydra wraps in ``except Exception`` (job bodies,
    callbacks), which would otherwise print it its own way or swallow it. The CLI unwraps it:
    an ``OptbenchError`` becomes one line, anything else its traceback."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error
