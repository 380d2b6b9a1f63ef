"""The cache every run on this machine shares (``runs/cache``): the ``Cache`` of the contracts.

An entry is one file, ``<root>/<namespace>/<digest of the key><suffix>``, written through a
temporary file and an atomic rename, so a parallel job sees a whole entry or none. Computing an
entry holds an exclusive lock on ``<entry>.lock``: a second job wanting the same entry waits and
then reads it instead of computing it again. An entry that cannot be read back (a damaged or
truncated file, a format from another version) is computed again and replaced.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import pickle
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from optbench.contracts.context import cache_key

T = TypeVar("T")
log = logging.getLogger("optbench")
_MISSING = object()


class DiskCache:
    """A ``Cache`` (see ``optbench.contracts.context``) of files under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, namespace: str, key: Any, suffix: str = ".pkl") -> Path:
        """Where the entry (``namespace``, ``key``) lives."""
        return self.root / namespace / f"{cache_key(key)}{suffix}"

    def get_or_compute(self, namespace: str, key: Any, compute: Callable[[], T]) -> T:
        path = self.path(namespace, key)
        value = _load(path)
        if value is _MISSING:
            with _locked(path):
                value = _load(path)  # another job may have written it while we waited
                if value is _MISSING:
                    value = compute()
                    write_atomically(path, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
        return value  # type: ignore[return-value]

    def get_or_build(
        self, namespace: str, key: Any, build: Callable[[Path], None], suffix: str = ""
    ) -> Path:
        path = self.path(namespace, key, suffix)
        if not path.exists():
            with _locked(path):
                if not path.exists():
                    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=suffix + ".tmp")
                    os.close(fd)
                    try:
                        build(Path(tmp))
                        os.replace(tmp, path)
                    finally:
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(tmp)
        return path


def _load(path: Path) -> Any:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return _MISSING
    try:
        return pickle.loads(data)
    except Exception as exc:  # truncated, damaged, or written by another version
        log.warning("cache entry %s cannot be read (%s): computing it again", path, exc)
        return _MISSING


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file beside it and an atomic rename: a
    concurrent reader sees the old file or the new one, never a part of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
