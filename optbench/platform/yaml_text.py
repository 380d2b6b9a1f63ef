"""The YAML text of a config, as ``OmegaConf.to_yaml`` writes it, emitted by libyaml.

``OmegaConf.to_yaml`` emits with PyYAML's pure-Python emitter (and, given a plain dict, first
builds an OmegaConf container of it): several milliseconds for a run's config, and a job writes
four (its ``.hydra/{config,hydra,overrides}.yaml`` and its config artifact). ``to_yaml`` gives
the same text through PyYAML's C emitter with OmegaConf's own dumper rules (block style, keys in
their order, a string that would read back as a bool or a number quoted);
``tests/test_yaml_text.py`` compares the two texts on every experiment preset's config, resolved
and not, and on its Hydra node. Without libyaml it is ``OmegaConf.to_yaml``.
"""

from __future__ import annotations

import functools
from typing import Any

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf


@functools.cache
def _dumper() -> type | None:
    """PyYAML's C dumper with OmegaConf's representation of strings (None without libyaml)."""
    if not getattr(yaml, "__with_libyaml__", False):
        return None
    from omegaconf._utils import get_omega_conf_dumper

    omegaconf_dumper = get_omega_conf_dumper()

    class Dumper(yaml.CDumper):  # type: ignore[name-defined,misc]
        pass

    Dumper.add_representer(str, omegaconf_dumper.yaml_representers[str])
    return Dumper


def to_yaml(cfg: Any) -> str:
    """``OmegaConf.to_yaml(cfg)`` (unresolved) for a DictConfig/ListConfig or a plain
    dict/list of plain values, faster."""
    dumper = _dumper()
    if dumper is None:
        return OmegaConf.to_yaml(cfg)
    if isinstance(cfg, DictConfig | ListConfig):
        cfg = OmegaConf.to_container(cfg, resolve=False, enum_to_str=True)
    return yaml.dump(
        cfg, Dumper=dumper, default_flow_style=False, allow_unicode=True, sort_keys=False
    )
