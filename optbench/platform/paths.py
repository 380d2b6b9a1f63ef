"""Where optbench finds configs and user code, and where it writes.

The *project* is the directory a study lives in: ``$OPTBENCH_ROOT`` when set; else the working
directory when it holds a ``configs/`` directory (a project made by ``optbench init``, or this
repository's clone); else the source checkout the package runs from (an editable install of the
clone, as before); else the working directory.

- Configs: Hydra searches the project's ``configs/`` first, then the built-in tree shipped in
  the package (``optbench/configs``; in the clone, a link to its top-level ``configs/``), so a
  project's YAML adds configs or replaces a built-in one of the same name.
- User code: the project directory is put on the import path, so ``_target_: my_method.MyMethod``
  finds ``<project>/my_method.py``.
- Outputs: everything goes under ``<project>/runs`` unless ``$OPTBENCH_RUNS_DIR`` says
  otherwise (tests point it at a temporary directory).
"""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]
DATA_DIR = PACKAGE_DIR / "data"
#: the built-in config tree (package data; in the clone, ``optbench/configs -> ../configs``).
BUILTIN_CONFIG_DIR = PACKAGE_DIR / "configs"


def source_checkout() -> Path | None:
    """The repository the package runs from (an editable install), or None (an installed wheel)."""
    root = PACKAGE_DIR.parent
    if (root / "pyproject.toml").is_file() and (root / "configs" / "config.yaml").is_file():
        return root
    return None


def project_root() -> Path:
    """The current project: ``$OPTBENCH_ROOT``, the working directory if it has ``configs/``,
    the source checkout of an editable install, or else the working directory."""
    env = os.environ.get("OPTBENCH_ROOT")
    if env:
        return Path(env).resolve()
    cwd = Path.cwd()
    if (cwd / "configs").is_dir():
        return cwd
    return source_checkout() or cwd


def config_dir() -> Path:
    """The built-in config tree, the primary config path (it holds the root ``config.yaml``)."""
    return BUILTIN_CONFIG_DIR


def project_config_dir() -> Path | None:
    """The project's own ``configs/``, searched before the built-in tree; None when it has none
    or when it is the built-in tree itself (the clone)."""
    path = project_root() / "configs"
    if not path.is_dir() or path.resolve() == BUILTIN_CONFIG_DIR.resolve():
        return None
    return path


def put_project_on_import_path() -> Path:
    """Make the project's modules importable (``_target_: my_method.MyMethod``); idempotent."""
    root = project_root()
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return root


def import_dirs() -> list[str]:
    """The directories a ``_target_`` is looked for in: the import path without the standard
    library (named in the error when a ``_target_`` cannot be imported)."""
    stdlib = {Path(sysconfig.get_path(name)).resolve() for name in ("stdlib", "platstdlib")}
    dirs: list[str] = []
    for entry in sys.path:
        path = Path(entry or ".").resolve()
        if not path.is_dir() or path in stdlib or path.name == "lib-dynload":
            continue  # zip archives, missing entries, the standard library
        if str(path) not in dirs:
            dirs.append(str(path))
    return dirs


def runs_dir() -> Path:
    """The root of every output: ``$OPTBENCH_RUNS_DIR`` or ``<project>/runs``."""
    env = os.environ.get("OPTBENCH_RUNS_DIR")
    return Path(env).resolve() if env else project_root() / "runs"


def cache_dir() -> Path:
    """Results worth computing once per machine (reference optima, ...): ``runs/cache``."""
    path = runs_dir() / "cache"
    path.mkdir(parents=True, exist_ok=True)
    return path
