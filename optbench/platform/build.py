"""Build a problem or algorithm from its config node, validating keys and types first.

The class's ``__init__`` signature is its schema: every config key must be a parameter, every
value must match the parameter's type hint (ints are accepted for floats; NaN and infinities are
refused for every float parameter, ranges are each class's own checks). Violations raise
``ConfigError`` naming the dotted key, before anything runs. ``ConfigError`` raised by the
constructor itself (range checks) gets the key prefix added.

Nested nodes with their own ``_target_`` (e.g. a policy architecture inside an algorithm's
config) are checked the same way against their target's signature (a class's ``__init__`` or a
function's), recursively; with ``_partial_: true`` the parameters they leave unset may be
supplied later by the caller, so only their keys and types are checked.

A ``_target_`` is imported with the project directory on the import path (``paths``), so a
project's own modules (``_target_: my_method.MyMethod``) are found; one that cannot be imported is
a ``ConfigError`` naming it and the directories searched, or the file and line that failed.
"""

from __future__ import annotations

import importlib
import inspect
import math
import traceback
import types
import typing
from typing import Any, Literal, TypeVar, Union

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from optbench.contracts.algorithm import Algorithm
from optbench.contracts.problem import Problem
from optbench.platform import paths
from optbench.platform.errors import CompatibilityError, ConfigError

T = TypeVar("T")


def build(node: Any, base: type[T], key: str) -> T:
    """Instantiate the ``_target_`` of config ``node`` (at dotted ``key``) as a ``base``."""
    if not isinstance(node, DictConfig) or "_target_" not in node:
        raise ConfigError(f"{key}: expected a config with a _target_ class, got {node!r}")
    target = node["_target_"]
    cls = locate(target, f"{key}._target_")
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ConfigError(f"{key}._target_: '{target}' is not a {base.__name__}")
    values = OmegaConf.to_container(node, resolve=True)
    assert isinstance(values, dict)
    values.pop("_target_")
    checked = validate_arguments(cls, values, key)
    try:
        if _needs_instantiate(checked):
            return instantiate({"_target_": target, **checked}, _convert_="all")
        return cls(**checked)  # a flat node: what instantiate calls, without its config copies
    except ConfigError as exc:
        raise ConfigError(f"{key}.{exc}") from None
    except Exception as exc:
        cause = exc.__cause__ if isinstance(exc.__cause__, ConfigError) else None
        if cause is not None:
            raise ConfigError(f"{key}.{cause}") from None
        raise


def _needs_instantiate(value: Any) -> bool:
    """Whether a node's values hold a nested ``_target_`` node or a special key (``_partial_``,
    ``_args_``, ...) that Hydra's ``instantiate`` must handle."""
    if isinstance(value, list):
        return any(_needs_instantiate(v) for v in value)
    if isinstance(value, dict):
        return any(
            (k.startswith("_") and k.endswith("_")) or _needs_instantiate(v)
            for k, v in value.items()
        )
    return False


def locate(target: Any, key: str) -> Any:
    """The object the dotted path ``target`` names (a module's attribute, a class's attribute),
    imported with the project directory on the import path. Raises a one-line ``ConfigError``
    (at ``key``) naming the target and the directories searched when no module of it is found,
    or the error and the file and line where importing it failed."""
    if not isinstance(target, str) or not all(target.split(".")):
        raise ConfigError(
            f"{key}: expected a dotted path such as 'package.module.Class', got {target!r}"
        )
    paths.put_project_on_import_path()
    parts = target.split(".")
    try:
        obj, attributes = _import_longest_module(parts)
        for attribute in attributes:
            obj = getattr(obj, attribute)
        return obj
    except ModuleNotFoundError as exc:
        if _is_prefix(exc.name, target):
            searched = ", ".join(paths.import_dirs())
            raise ConfigError(
                f"{key}: cannot import '{target}': no module '{exc.name}' (searched: {searched})"
            ) from None
        raise ConfigError(f"{key}: cannot import '{target}': {_failure(exc)}") from None
    except Exception as exc:  # the module raised while importing, or a missing attribute
        raise ConfigError(f"{key}: cannot import '{target}': {_failure(exc)}") from None


def _import_longest_module(parts: list[str]) -> tuple[Any, list[str]]:
    """The longest importable module prefix of ``parts`` and the attribute names after it."""
    for end in range(len(parts), 0, -1):
        name = ".".join(parts[:end])
        try:
            return importlib.import_module(name), parts[end:]
        except ModuleNotFoundError as exc:
            if end > 1 and _is_prefix(exc.name, name):
                continue  # this prefix is not a module: its last part may be an attribute
            raise
    raise AssertionError("unreachable")


def _is_prefix(module: str | None, dotted: str) -> bool:
    """Whether ``module`` is ``dotted`` or a leading part of it (``a.b`` of ``a.b.C``)."""
    return module is not None and f"{dotted}.".startswith(f"{module}.")


def _failure(exc: BaseException) -> str:
    """``Type: message`` of an import failure, with the file and line it was raised at."""
    message = " ".join(str(exc).split())
    where = ""
    if isinstance(exc, SyntaxError) and exc.filename:
        message, where = exc.msg, f" ({exc.filename}:{exc.lineno})"
    else:
        frames = [
            f for f in traceback.extract_tb(exc.__traceback__) if "importlib" not in f.filename
        ]
        if frames and frames[-1].filename != __file__:
            where = f" ({frames[-1].filename}:{frames[-1].lineno})"
    return f"{type(exc).__name__}: {message}{where}"


def validate_arguments(
    cls: Any, values: dict[str, Any], key: str, partial: bool = False
) -> dict[str, Any]:
    """Check ``values`` against ``cls.__init__``'s (or a function's) parameters and type hints;
    coerce int->float; validate nested ``_target_`` nodes. ``partial``: unset required
    parameters are allowed (they are supplied when the partial is called)."""
    params, hints, open_kwargs = _parameters(cls)
    name_of = getattr(cls, "__name__", str(cls))
    checked: dict[str, Any] = {}
    for name, value in values.items():
        if name not in params and not open_kwargs:
            known = ", ".join(params)
            raise ConfigError(f"{key}.{name}: unknown key for {name_of} (known: {known})")
        value = _validate_nested(value, f"{key}.{name}")
        checked[name] = coerce(value, hints.get(name, Any), f"{key}.{name}")
    for name, p in params.items():
        if p.default is p.empty and name not in values and not partial:
            raise ConfigError(f"{key}.{name}: required by {name_of} but not set")
    return checked


def _validate_nested(value: Any, key: str) -> Any:
    """A nested config value with every ``_target_`` node in it checked against its target."""
    if isinstance(value, list):
        return [_validate_nested(v, f"{key}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, dict):
        return value
    if "_target_" not in value:
        return {k: _validate_nested(v, f"{key}.{k}") for k, v in value.items()}
    target = value["_target_"]
    obj = locate(target, f"{key}._target_")
    if not callable(obj):
        raise ConfigError(f"{key}._target_: '{target}' is not callable")
    special = {k: v for k, v in value.items() if k.startswith("_") and k.endswith("_")}
    arguments = {k: v for k, v in value.items() if k not in special}
    partial = bool(special.get("_partial_", False))
    return {**special, **validate_arguments(obj, arguments, key, partial)}


def _parameters(cls: Any) -> tuple[dict[str, inspect.Parameter], dict[str, Any], bool]:
    """Parameters and type hints of ``cls.__init__`` following ``**kwargs`` up the MRO, or of
    a function."""
    if not isinstance(cls, type):
        signature = inspect.signature(cls)
        try:
            hints = typing.get_type_hints(cls)
        except Exception:  # unresolvable annotations: validate names only
            hints = {}
        own = {n: p for n, p in signature.parameters.items()}
        open_kwargs = any(p.kind is p.VAR_KEYWORD for p in own.values())
        named = {n: p for n, p in own.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        return named, {n: hints.get(n, Any) for n in named}, open_kwargs
    params: dict[str, inspect.Parameter] = {}
    hints: dict[str, Any] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        own = {n: p for n, p in inspect.signature(init).parameters.items() if n != "self"}
        try:
            own_hints = typing.get_type_hints(init)
        except Exception:  # unresolvable annotations: validate names only
            own_hints = {}
        for name, p in own.items():
            if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                params.setdefault(name, p)
                hints.setdefault(name, own_hints.get(name, Any))
        if not any(p.kind is p.VAR_KEYWORD for p in own.values()):
            return params, hints, False
        if klass is object:
            break
    return params, hints, True


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def coerce(value: Any, annotation: Any, key: str) -> Any:
    """``value`` checked against ``annotation`` (and an int made a float where one is expected)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any or annotation is inspect.Parameter.empty:
        return value
    if isinstance(value, float) and not math.isfinite(value) and float in (annotation, *args):
        raise ConfigError(f"{key}: must be a finite number, got {value}")
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = None  # the error inside an option of the value's own shape (a list's item)
        for option in args:
            if option is type(None):
                continue
            try:
                return coerce(value, option, key)
            except ConfigError as exc:
                shape = typing.get_origin(option) or option
                if isinstance(shape, type) and shape is not float and isinstance(value, shape):
                    inner = inner or exc
        raise inner or ConfigError(f"{key}: expected {_type_name(annotation)}, got {value!r}")
    if origin is Literal:
        if value in args:
            return value
        raise ConfigError(f"{key}: expected one of {', '.join(map(str, args))}, got {value!r}")
    if annotation is bool:
        if isinstance(value, bool):
            return value
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif annotation is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)  # Hydra parses `name=123` as an int
    elif origin in (list, tuple) or annotation in (list, tuple):
        if isinstance(value, list | tuple):
            item = args[0] if args and (origin is list or args[-1] is Ellipsis) else Any
            return [coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    elif origin is dict or annotation is dict:
        if isinstance(value, dict):
            return value
    else:
        return value  # an annotation we do not check
    raise ConfigError(f"{key}: expected {_type_name(annotation)}, got {value!r}")


def check_compatible(
    problem: Problem, algorithm: Algorithm, problem_name: str, algorithm_name: str
) -> None:
    """Refuse a pairing the algorithm does not declare in ``accepts``."""
    if problem.kind not in algorithm.accepts:
        kinds = " or ".join(f"'{k.value}'" for k in sorted(algorithm.accepts))
        raise CompatibilityError(
            f"algorithm '{algorithm_name}' solves {kinds} problems; "
            f"'{problem_name}' is '{problem.kind.value}'"
        )
