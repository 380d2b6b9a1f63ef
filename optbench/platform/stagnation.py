"""Stagnation: a run whose iterate and progress metrics stop changing has stalled.

A method that can no longer move (a line search that returns a zero step, a solver stuck at
machine precision) would otherwise spend the rest of its budget repeating one step and end as
``finished (max_steps)``, a result that looks like a normal finish. The runner feeds every step
to a ``StagnationWatch``; after ``steps`` consecutive steps that changed neither the iterate nor
the progress metrics, the run ends with status ``stalled``.

The comparison is exact. Metrics are compared first (cheap); only when they repeat is the
iterate fingerprinted (a digest of its numbers: tensors, arrays, numbers, dataclasses, mappings,
sequences, ``torch.nn.Module`` state). An iterate of a type without a fingerprint is never
called stalled.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch


def fingerprint(value: Any) -> bytes | None:
    """A digest of the numbers in ``value``; None when some part of it has no fingerprint."""
    digest = hashlib.blake2b(digest_size=16)
    return digest.digest() if _feed(digest, value) else None


def _feed(digest: Any, value: Any) -> bool:
    if value is None or isinstance(value, bool | int | float | str):
        digest.update(f"{type(value).__name__}:{value!r};".encode())
        return True
    if isinstance(value, torch.Tensor):
        flat = value.detach().to("cpu").reshape(-1).contiguous()
        digest.update(f"tensor:{flat.dtype}:{tuple(value.shape)};".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
        return True
    if isinstance(value, np.ndarray):
        digest.update(f"array:{value.dtype}:{value.shape};".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
        return True
    if isinstance(value, torch.nn.Module):
        return _feed(digest, value.state_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        digest.update(f"{type(value).__name__}(".encode())
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return _feed(digest, fields)
    if isinstance(value, Mapping):
        for key in sorted(value, key=str):
            digest.update(f"{key!s}=".encode())
            if not _feed(digest, value[key]):
                return False
        return True
    if isinstance(value, list | tuple):
        digest.update(f"{type(value).__name__}[{len(value)}]".encode())
        return all(_feed(digest, item) for item in value)
    return False


class StagnationWatch:
    """Counts consecutive steps that changed neither the iterate nor the progress metrics.

    ``observe(solution, metrics)`` after every step returns True once ``steps`` consecutive
    steps repeated their predecessor exactly (the first repeated step only records the iterate's
    fingerprint, so the verdict comes one step after the ``steps``-th repetition at the latest).
    ``steps=None`` never reports a stall.
    """

    def __init__(self, steps: int | None) -> None:
        self.steps = steps
        self.repeated = 0
        self._metrics: dict[str, float] | None = None
        self._print: bytes | None = None

    def observe(self, solution: Any, metrics: Mapping[str, float]) -> bool:
        if self.steps is None:
            return False
        current = dict(metrics)
        if current != self._metrics:
            self._metrics, self._print, self.repeated = current, None, 0
            return False
        digest = fingerprint(solution)
        if digest is None or digest != self._print:
            self._print, self.repeated = digest, 0
            return False
        self.repeated += 1
        return self.repeated >= self.steps
