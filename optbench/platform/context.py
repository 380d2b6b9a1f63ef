"""The run context: what the runner hands to a problem's ``setup`` and an algorithm's ``run``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from optbench.platform.errors import ConfigError


class HistoryLookup(Protocol):
    """``history(changes, key)``: the per-step progress series ``key`` of the FINISHED run whose
    config equals this run's config with the dotted-key ``changes`` applied. With
    ``best_over`` (dotted keys), among the runs that differ from it only in those keys, the one
    with the best final ``metric`` (``goal`` min or max)."""

    def __call__(
        self,
        changes: Mapping[str, Any],
        key: str,
        best_over: Sequence[str] = (),
        metric: str | None = None,
        goal: str = "min",
    ) -> np.ndarray: ...


def _no_history(changes: Mapping[str, Any], key: str, *args: Any, **kwargs: Any) -> np.ndarray:
    raise ConfigError(
        f"reading the history of another run ({dict(changes)}) needs a tracking store; "
        "tracking=none has none"
    )


@dataclass
class RunContext:
    """Device, dtype, seeded random streams and platform services for one run.

    Problems and algorithms put every tensor on ``device`` with ``dtype`` and draw every random
    number from ``generator`` (torch) or ``rng`` (NumPy), both seeded from the run's ``seed``, so
    the same config and seed give the same numbers on CPU.
    """

    device: torch.device
    dtype: torch.dtype
    seed: int
    max_steps: int
    generator: torch.Generator
    rng: np.random.Generator
    cache_dir: Path
    history: HistoryLookup = field(default=_no_history)

    @classmethod
    def create(
        cls,
        device: torch.device,
        dtype: torch.dtype,
        seed: int,
        max_steps: int,
        cache_dir: Path,
        history: HistoryLookup = _no_history,
    ) -> RunContext:
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)
        return cls(
            device=device,
            dtype=dtype,
            seed=seed,
            max_steps=max_steps,
            generator=generator,
            rng=np.random.default_rng(seed),
            cache_dir=cache_dir,
            history=history,
        )

    def tensor(self, data: Any) -> torch.Tensor:
        """``data`` as a tensor on the run's device with the run's floating dtype."""
        return torch.as_tensor(data, dtype=self.dtype, device=self.device)

    def synchronize(self) -> None:
        """Wait for queued device work, so wall-clock readings mean what they say."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
