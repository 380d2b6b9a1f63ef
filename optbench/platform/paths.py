"""Where optbench keeps its configs and its outputs.

The project root is the directory holding ``configs/`` (the repository of an editable install);
``OPTBENCH_ROOT`` overrides it. All outputs go under ``<root>/runs`` unless ``OPTBENCH_RUNS_DIR``
says otherwise (tests point it at a temporary directory).
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]
DATA_DIR = PACKAGE_DIR / "data"


def project_root() -> Path:
    """The directory with ``configs/``: ``$OPTBENCH_ROOT`` or the repository holding the package."""
    env = os.environ.get("OPTBENCH_ROOT")
    return Path(env).resolve() if env else PACKAGE_DIR.parent


def config_dir() -> Path:
    return project_root() / "configs"


def runs_dir() -> Path:
    """The root of every output: ``$OPTBENCH_RUNS_DIR`` or ``<root>/runs``."""
    env = os.environ.get("OPTBENCH_RUNS_DIR")
    return Path(env).resolve() if env else project_root() / "runs"


def cache_dir() -> Path:
    """Results worth computing once per machine (reference optima, ...): ``runs/cache``."""
    path = runs_dir() / "cache"
    path.mkdir(parents=True, exist_ok=True)
    return path
