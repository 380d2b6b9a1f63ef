"""Resolve ``device=cpu|cuda|auto`` and its dtype, and seed every random number generator."""

from __future__ import annotations

import random
import sys

import numpy as np
import torch

from optbench.platform.errors import ConfigError, DeviceError

DTYPES: dict[str, torch.dtype] = {
    "float64": torch.float64,
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


def resolve_device(kind: str) -> torch.device:
    """``cpu``, ``cuda`` (an error when CUDA is absent) or ``auto`` (cuda when present)."""
    if kind == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device.type=cuda: CUDA is not available here (torch {torch.__version__}); "
                "use device=cpu or device=auto"
            )
        return torch.device("cuda")
    if kind == "cpu":
        return torch.device("cpu")
    raise ConfigError(f"device.type: unknown device '{kind}'; expected cpu, cuda or auto")


#: dtypes every problem and algorithm computes in on the CPU (half precisions are GPU-only)
CPU_DTYPES = ("float64", "float32")


def resolve_dtype(name: str, device: torch.device | None = None) -> torch.dtype:
    """The torch dtype named ``name``; half precisions (float16, bfloat16) only on CUDA."""
    if name not in DTYPES:
        raise ConfigError(
            f"device.dtype: unknown dtype '{name}'; expected one of {', '.join(DTYPES)}"
        )
    if device is not None and device.type == "cpu" and name not in CPU_DTYPES:
        raise ConfigError(
            f"device.dtype={name}: half precision is not supported on the CPU; "
            f"use {' or '.join(CPU_DTYPES)} (or device=cuda)"
        )
    return DTYPES[name]


#: torch's intra-op thread count when this process started (its default, or OMP_NUM_THREADS)
PROCESS_THREADS = torch.get_num_threads()


def configure_torch(threads: int | None, deterministic: bool) -> None:
    """Set the intra-op thread count (``None``: the process's own, ``PROCESS_THREADS``, not what
    an earlier run of a sweep in this process set) and, if asked, deterministic kernels.

    ``torch.use_deterministic_algorithms`` also sets the compiler's (inductor's) flag and imports
    ``torch._dynamo`` and ``torch._inductor`` to do so: 1.5-4x the cost of importing torch, paid
    by every run of every process although optbench compiles nothing. The kernels' flag is set
    directly here, and the compiler's only when something already imported the compiler.
    """
    # range-checked with the other run-level keys (check_run_keys)
    wanted = PROCESS_THREADS if threads is None else threads
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
    torch._C._set_deterministic_algorithms(deterministic, warn_only=True)
    inductor_config = sys.modules.get("torch._inductor.config")
    if inductor_config is not None:
        inductor_config.deterministic = deterministic


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators from the run's seed."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
