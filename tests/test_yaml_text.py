"""``yaml_text.to_yaml`` writes exactly what ``OmegaConf.to_yaml`` writes: on every experiment
preset's composed config (unresolved, resolved to plain values as the runner logs it, and its
Hydra node as the job's ``.hydra/hydra.yaml`` holds it) and on strings OmegaConf must quote."""

from __future__ import annotations

import pytest
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.utils import create_config_search_path
from hydra.types import RunMode
from omegaconf import OmegaConf

from optbench.platform import paths, schema
from optbench.platform.identity import resolved
from optbench.platform.yaml_text import to_yaml

PRESETS = sorted(p.stem for p in (paths.config_dir() / "experiment").glob("*.yaml"))


@pytest.fixture(scope="module")
def loader() -> ConfigLoaderImpl:
    schema.register()
    return ConfigLoaderImpl(create_config_search_path(str(paths.config_dir())))


@pytest.mark.parametrize("preset", PRESETS)
def test_a_presets_config_is_written_as_omegaconf_writes_it(
    loader: ConfigLoaderImpl, preset: str
) -> None:
    cfg = loader.load_configuration("config", [f"experiment={preset}"], RunMode.RUN)
    hydra_node = OmegaConf.masked_copy(cfg, "hydra")
    task = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    plain = resolved(task)
    for what in (task, hydra_node, cfg.hydra.overrides.task, plain):
        text = to_yaml(what)
        assert text == OmegaConf.to_yaml(what)
        assert len(text) > 10


def test_strings_that_read_as_other_types_are_quoted() -> None:
    data = {
        "floats": ["1e-3", "1.5", "inf", "-.inf", "nan", "1_000.5"],
        "ints": ["0", "-7", "0x1f", "1_000"],
        "bools": ["yes", "No", "on", "OFF", "true", "False", "y", "n"],
        "plain": ["adam", "1e-3x", "", "null", "~", "a: b", "- x", "#c", "é", "x\ny"],
        "values": [1e-3, 10**20, True, None, 1.5, float("inf")],
        "empty": {},
        "nested": [{"a": [1, [2, []]]}],
    }
    text = to_yaml(data)
    assert text == OmegaConf.to_yaml(data)
    assert "'1e-3'" in text and "'yes'" in text and "- adam" in text
    assert OmegaConf.to_container(OmegaConf.create(text)) == OmegaConf.to_container(
        OmegaConf.create(data)
    )
