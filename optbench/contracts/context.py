"""The run context: what the runner hands to a problem's ``setup`` and an algorithm's ``run``.

Random numbers (the one convention, after AlgoPerf's split streams): the run's ``seed`` is split
into two independent streams, ``problem_random`` for the problem (data sets, instances, splits)
and ``algorithm_random`` for the algorithm (minibatches, sketches, initial weights, exploration).
A problem draws only from its stream and an algorithm only from its own, so a draw added to a
problem's ``setup`` never shifts an algorithm's draws. ``RandomStream.child(name)`` gives an
independent named sub-stream (e.g. one per data split), stable whatever else is drawn.

Caches: ``cache.get_or_compute(namespace, key, compute)`` returns a value computed once per
machine (a reference optimum, a cost table), ``cache.get_or_build(namespace, key, build)`` a file
built once (a compiled kernel). ``key`` is any JSON-serialisable value naming everything the value
depends on.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import torch

T = TypeVar("T")


@dataclass(frozen=True)
class RandomStream:
    """An independent random stream: ``numpy`` (a ``np.random.Generator``) and ``torch`` (a
    ``torch.Generator`` on the run's device), both seeded from one ``np.random.SeedSequence``."""

    seed_sequence: np.random.SeedSequence
    device: torch.device

    @classmethod
    def root(cls, seed: int, name: str, device: torch.device) -> RandomStream:
        """The stream ``name`` of the run seeded by ``seed``."""
        return cls(np.random.SeedSequence(seed, spawn_key=(_tag(name),)), device)

    def child(self, name: str) -> RandomStream:
        """An independent sub-stream named ``name`` (the same name gives the same stream)."""
        sequence = self.seed_sequence
        spawn_key = (*sequence.spawn_key, _tag(name))
        return RandomStream(
            np.random.SeedSequence(sequence.entropy, spawn_key=spawn_key), self.device
        )

    @property
    def numpy(self) -> np.random.Generator:
        """The stream's NumPy generator (created once; later calls return the same one)."""
        return self._generators()[0]

    @property
    def torch(self) -> torch.Generator:
        """The stream's torch generator on the run's device (created once)."""
        return self._generators()[1]

    def integer_seed(self) -> int:
        """A 63-bit integer seed from the stream, for a library that takes only an int."""
        return int(self.seed_sequence.generate_state(2, np.uint64)[1] >> np.uint64(1))

    def _generators(self) -> tuple[np.random.Generator, torch.Generator]:
        made = self.__dict__.get("_made")
        if made is None:
            state = self.seed_sequence.generate_state(2, np.uint64)
            generator = torch.Generator(device=self.device)
            generator.manual_seed(int(state[0] >> np.uint64(1)))
            made = (np.random.default_rng(self.seed_sequence), generator)
            object.__setattr__(self, "_made", made)
        return made


def _tag(name: str) -> int:
    return zlib.crc32(name.encode())


class Cache(Protocol):
    """Values and files computed once per machine and shared by every run (and parallel job)."""

    def get_or_compute(self, namespace: str, key: Any, compute: Callable[[], T]) -> T:
        """The value stored under (``namespace``, ``key``), computed by ``compute()`` and stored
        the first time. ``key`` is JSON-serialisable and names everything the value depends on."""
        ...

    def get_or_build(
        self, namespace: str, key: Any, build: Callable[[Path], None], suffix: str = ""
    ) -> Path:
        """The path of the file stored under (``namespace``, ``key``); the first time,
        ``build(path)`` writes it at a temporary path that is then moved into place."""
        ...


class MemoryCache:
    """A ``Cache`` that lives as long as the object (for unit tests; runs use the disk cache)."""

    def __init__(self, directory: Path | None = None) -> None:
        self._values: dict[tuple[str, str], Any] = {}
        self._directory = directory

    def get_or_compute(self, namespace: str, key: Any, compute: Callable[[], T]) -> T:
        entry = (namespace, cache_key(key))
        if entry not in self._values:
            self._values[entry] = compute()
        return self._values[entry]

    def get_or_build(
        self, namespace: str, key: Any, build: Callable[[Path], None], suffix: str = ""
    ) -> Path:
        import tempfile

        entry = (namespace, cache_key(key))
        if entry not in self._values:
            directory = self._directory or Path(tempfile.mkdtemp(prefix="optbench-cache-"))
            path = directory / f"{namespace}-{entry[1]}{suffix}"
            build(path)
            self._values[entry] = path
        return self._values[entry]


def cache_key(key: Any) -> str:
    """A short stable digest of a JSON-serialisable key."""
    import hashlib

    text = json.dumps(key, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass
class RunContext:
    """Device, dtype, random streams and services for one run (see the module docstring).

    Problems and algorithms put every tensor on ``device`` with ``dtype``. ``max_steps`` is the
    runner's step budget (an algorithm's horizon, e.g. for a learning-rate schedule). ``inputs``
    holds the cross-run inputs an algorithm declared (``Algorithm.inputs``), read by the runner
    before the algorithm's clock starts. ``data_dir`` is the directory of the vendored data sets.
    """

    device: torch.device
    dtype: torch.dtype
    max_steps: int
    problem_random: RandomStream
    algorithm_random: RandomStream
    cache: Cache
    data_dir: Path
    inputs: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        seed: int,
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float64,
        max_steps: int = 0,
        cache: Cache | None = None,
        data_dir: Path | None = None,
        inputs: Mapping[str, Any] | None = None,
    ) -> RunContext:
        """The context of a run seeded by ``seed``: the two streams derived from it."""
        device = torch.device(device)
        return cls(
            device=device,
            dtype=dtype,
            max_steps=max_steps,
            problem_random=RandomStream.root(seed, "problem", device),
            algorithm_random=RandomStream.root(seed, "algorithm", device),
            cache=cache if cache is not None else MemoryCache(),
            data_dir=data_dir if data_dir is not None else default_data_dir(),
            inputs=dict(inputs or {}),
        )

    def tensor(self, data: Any) -> torch.Tensor:
        """``data`` as a tensor on the run's device with the run's floating dtype."""
        return torch.as_tensor(data, dtype=self.dtype, device=self.device)

    def synchronize(self) -> None:
        """Wait for queued device work, so wall-clock readings mean what they say."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def default_data_dir() -> Path:
    """The vendored data sets shipped inside the package (``optbench/data``)."""
    return Path(__file__).resolve().parents[1] / "data"
