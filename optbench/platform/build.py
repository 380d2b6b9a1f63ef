"""Build a problem or algorithm from its config node, validating keys and types first.

The class's ``__init__`` signature is its schema: every config key must be a parameter, every
value must match the parameter's type hint (ints are accepted for floats). Violations raise
``ConfigError`` naming the dotted key, before anything runs. ``ConfigError`` raised by the
constructor itself (range checks) gets the key prefix added.
"""

from __future__ import annotations

import inspect
import types
import typing
from typing import Any, Literal, TypeVar, Union

from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from optbench.algorithms.base import Algorithm
from optbench.platform.errors import CompatibilityError, ConfigError
from optbench.problems.base import Problem

T = TypeVar("T")


def build(node: Any, base: type[T], key: str) -> T:
    """Instantiate the ``_target_`` of config ``node`` (at dotted ``key``) as a ``base``."""
    if not isinstance(node, DictConfig) or "_target_" not in node:
        raise ConfigError(f"{key}: expected a config with a _target_ class, got {node!r}")
    target = node["_target_"]
    try:
        cls = get_class(target)
    except Exception as exc:  # ImportError, AttributeError, ValueError from Hydra
        raise ConfigError(f"{key}._target_: cannot import '{target}' ({exc})") from None
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ConfigError(f"{key}._target_: '{target}' is not a {base.__name__}")
    values = OmegaConf.to_container(node, resolve=True)
    assert isinstance(values, dict)
    values.pop("_target_")
    checked = validate_arguments(cls, values, key)
    try:
        return instantiate({"_target_": target, **checked}, _convert_="all")
    except ConfigError as exc:
        raise ConfigError(f"{key}.{exc}") from None
    except Exception as exc:
        cause = exc.__cause__ if isinstance(exc.__cause__, ConfigError) else None
        if cause is not None:
            raise ConfigError(f"{key}.{cause}") from None
        raise


def validate_arguments(cls: type, values: dict[str, Any], key: str) -> dict[str, Any]:
    """Check ``values`` against ``cls.__init__``'s parameters and type hints; coerce int->float."""
    params, hints, open_kwargs = _parameters(cls)
    checked: dict[str, Any] = {}
    for name, value in values.items():
        if name not in params and not open_kwargs:
            known = ", ".join(params)
            raise ConfigError(f"{key}.{name}: unknown key for {cls.__name__} (known: {known})")
        checked[name] = coerce(value, hints.get(name, Any), f"{key}.{name}")
    for name, p in params.items():
        if p.default is p.empty and name not in values:
            raise ConfigError(f"{key}.{name}: required by {cls.__name__} but not set")
    return checked


def _parameters(cls: type) -> tuple[dict[str, inspect.Parameter], dict[str, Any], bool]:
    """Parameters and type hints of ``cls.__init__``, following ``**kwargs`` up the MRO."""
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
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in args:
            if option is type(None):
                continue
            try:
                return coerce(value, option, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: expected {_type_name(annotation)}, got {value!r}")
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
