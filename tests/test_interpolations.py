"""Parsing each interpolation string once (``optbench.platform.interpolations``) gives the
values OmegaConf's own parse of every read gives: on every preset's config and on the kinds of
interpolation OmegaConf has (relative, nested, escaped, resolvers with defaults, invalid)."""

from __future__ import annotations

import omegaconf._utils
import omegaconf.base
import omegaconf.grammar_parser
import pytest
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.utils import create_config_search_path
from hydra.core.utils import setup_globals
from hydra.types import RunMode
from omegaconf import OmegaConf
from omegaconf.errors import GrammarParseError

from optbench.platform import paths, schema
from optbench.platform.identity import resolved
from optbench.platform.interpolations import parse_each_once

PRESETS = sorted(p.stem for p in (paths.config_dir() / "experiment").glob("*.yaml"))


def uncached(monkeypatch: pytest.MonkeyPatch) -> None:
    """OmegaConf as shipped: a parse on every read."""
    monkeypatch.setattr(omegaconf.base, "parse", omegaconf.grammar_parser.parse)
    monkeypatch.setattr(omegaconf._utils, "parse", omegaconf.grammar_parser.parse)


def test_registering_optbench_installs_it_once() -> None:
    schema.register()
    cached = omegaconf.base.parse
    assert cached is not omegaconf.grammar_parser.parse and omegaconf._utils.parse is cached
    parse_each_once()
    assert omegaconf.base.parse is cached


def test_every_presets_config_resolves_to_the_same_values(monkeypatch: pytest.MonkeyPatch) -> None:
    schema.register()
    setup_globals()  # Hydra's ``now`` and ``hydra`` resolvers
    loader = ConfigLoaderImpl(create_config_search_path(str(paths.config_dir())))
    configs = [
        loader.load_configuration("config", [f"experiment={preset}"], RunMode.MULTIRUN)
        for preset in PRESETS
    ]

    def values() -> list:  # the run's config and the sweep's directory
        return [(resolved(c), str(c.hydra.sweep.dir)) for c in configs]

    with_cache = values()
    hits = omegaconf.base.parse.cache_info().hits  # type: ignore[attr-defined]
    assert hits > 0  # the cache served reads
    with monkeypatch.context() as patch:
        uncached(patch)
        without = values()
    assert with_cache == without


def test_each_kind_of_interpolation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTBENCH_TEST_VAR", "from-env")
    text = """
    a: {x: 1, rel: '${.x}', up: '${..top}', s: 'x=${.x}'}
    b: {x: 2, rel: '${.x}', up: '${..top}', s: 'x=${.x}'}
    top: 7
    nested: '${oc.env:OPTBENCH_TEST_MISSING,${top}}'
    env: '${oc.env:OPTBENCH_TEST_VAR,none}'
    escaped: '\\${a.x} and ${a.x}'
    listed: ['${a.x}', '${b.x}', '${.0}']
    """

    def values() -> object:
        return OmegaConf.to_container(OmegaConf.create(text), resolve=True)

    parse_each_once()
    first, second = values(), values()
    with monkeypatch.context() as patch:
        uncached(patch)
        reference = values()
    assert first == second == reference
    assert reference["a"]["rel"] == 1 and reference["b"]["rel"] == 2  # type: ignore[index]
    assert reference["escaped"] == "${a.x} and 1"  # type: ignore[index]
    for _ in range(2):  # an invalid string raises on every parse, cached or not
        with pytest.raises(GrammarParseError):
            OmegaConf.create({"v": "${oc.env:}x${"})
