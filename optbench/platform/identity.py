"""A run's identity: its config flattened to dotted keys and hashed.

The config hash covers everything that can change a run's numbers (problem, algorithm, device,
seed, budget, evaluation cadence) and nothing that cannot (where it is tracked, whether it is
forced, how it is reported, Hydra's own settings). Two jobs with the same hash are the same run:
resume skips the second.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from enum import Enum
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

#: Top-level keys that do not change a run's numbers.
NOT_IDENTITY = frozenset(
    {"hydra", "tracking", "force", "report", "reproduction", "experiment_name", "tuning"}
)

MAX_PARAM_VALUE = 6000


def resolved(cfg: DictConfig) -> dict[str, Any]:
    """The config as plain containers, interpolations resolved, enums as their names, without
    Hydra's own node (it may hold values only a running job can resolve). Each top-level node is
    converted in place: a copy of the config without the node would cost more than the rest."""
    data: dict[str, Any] = {}
    for key in cfg:
        if key == "hydra":
            continue
        value = cfg[key]
        if isinstance(value, DictConfig | ListConfig):
            value = OmegaConf.to_container(value, resolve=True, enum_to_str=True)
        elif isinstance(value, Enum):
            value = value.name
        data[str(key)] = value
    return data


def identity_of(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in NOT_IDENTITY}


def config_hash(config: Mapping[str, Any]) -> str:
    """A short stable hash of the identity part of a resolved config."""
    text = json.dumps(identity_of(config), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists stay leaves."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def unflatten_set(config: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``config[a][b] = value`` for ``dotted = "a.b"`` (creating levels as needed)."""
    *parents, leaf = dotted.split(".")
    node = config
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def as_params(config: Mapping[str, Any]) -> dict[str, str]:
    """Flattened config as MLflow params (string values within MLflow's length limit)."""
    return {
        key[:250]: ("None" if v is None else str(v))[:MAX_PARAM_VALUE]
        for key, v in flatten(config).items()
    }
