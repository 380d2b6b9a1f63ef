"""The one exception hierarchy of optbench.

Every error a user can cause (a bad config key or value, a malformed data file, an incompatible
problem/algorithm pair, a missing device, an unreachable tracking store) is an ``OptbenchError``.
The CLI prints it as a single line, ``error: <message>``, and exits with code 2; the message must
name the key, file or value at fault. Anything else raised inside a run is a bug or a numerical
failure of the method: the runner records it on the run (status ``failed``, traceback artifact).
"""

from __future__ import annotations


class OptbenchError(Exception):
    """Base class: a user-facing error whose message is one line naming what is at fault."""

    exit_code = 2

    def __str__(self) -> str:
        # One line, whatever the message was built from.
        return " ".join(super().__str__().split())


class ConfigError(OptbenchError):
    """A config key is unknown, has the wrong type, or has a value out of range."""


class DataError(OptbenchError):
    """A data file is missing or malformed; the message names the file (and line when known)."""


class CompatibilityError(OptbenchError):
    """The algorithm does not solve the kind of problem it was paired with."""


class DeviceError(OptbenchError):
    """The requested device or dtype is not available on this machine."""


class TrackingError(OptbenchError):
    """The tracking store cannot be reached or written."""
