"""The compose-once fast path gives every job of a sweep exactly the config Hydra composes.

Every experiment preset is expanded into its jobs (as the grid sweeper does) and each job is
composed both by Hydra (``load_sweep_config``) and by ``ComposeOnce``; the configs must be equal,
the ``hydra`` node included, unresolved and resolved. Every job of a preset of at most
``EXHAUSTIVE_UP_TO`` jobs is compared. Larger presets (quick ones up to 656 jobs, paper ones
up to 1,800; 0.05-0.5 s each for Hydra) compare one job of every class, a class being the jobs
with the same structural overrides and the same value-override keys and value types (they take
the same path through ``ComposeOnce``); ``OPTBENCH_COMPOSE_ALL=1`` compares every job of those
too.
"""

from __future__ import annotations

import functools
import os

import pytest
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.utils import create_config_search_path
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.types import RunMode
from omegaconf import OmegaConf
from omegaconf.errors import ConfigAttributeError

from optbench.platform import paths, schema
from optbench.platform.compose import ComposeOnce, _is_structural
from optbench.platform.identity import resolved
from optbench.platform.sweep import expand_grid

PRESETS = sorted(p.stem for p in (paths.config_dir() / "experiment").glob("*.yaml"))
ALL = os.environ.get("OPTBENCH_COMPOSE_ALL") == "1"
EXHAUSTIVE_UP_TO = 16
PARSER = OverridesParser.create()


@pytest.fixture(scope="module")
def loader() -> ConfigLoaderImpl:
    schema.register()
    return ConfigLoaderImpl(create_config_search_path(str(paths.config_dir())))


@functools.cache
def parsed(override: str) -> Override:
    """One override parsed by Hydra's parser (each distinct string once: a preset's jobs share
    most of theirs, and parsing was a third of this test's time)."""
    return PARSER.parse_override(override)


def job_class(repo, job: list[str]) -> tuple:
    """Structural overrides as given; value overrides as their key and value type."""
    parsed_job = [parsed(override) for override in job]
    return tuple(
        o.input_line if _is_structural(o, repo) else (o.key_or_group, type(o.value()).__name__)
        for o in parsed_job
    )


def assert_same(hydra_cfg, fast_cfg, what: str) -> None:
    assert OmegaConf.to_container(fast_cfg) == OmegaConf.to_container(hydra_cfg), what
    assert OmegaConf.to_yaml(fast_cfg) == OmegaConf.to_yaml(hydra_cfg), what  # order too
    assert resolved(fast_cfg) == resolved(hydra_cfg), what
    assert OmegaConf.is_struct(fast_cfg) == OmegaConf.is_struct(hydra_cfg), what


@pytest.mark.parametrize("preset", PRESETS)
def test_every_job_composes_as_hydra_does(loader: ConfigLoaderImpl, preset: str) -> None:
    master = loader.load_configuration("config", [f"experiment={preset}"], RunMode.MULTIRUN)
    if "n_trials" in master.hydra.sweeper:
        pytest.skip("an Optuna study: its jobs are drawn by the sampler, not a grid")
    jobs = expand_grid(master.hydra.sweeper.get("params"), list(master.hydra.overrides.task))
    fast = ComposeOnce(loader)
    repo = fast._repo("config", ())
    compared: set[tuple] = set()
    served: list = []
    exhaustive = ALL or len(jobs) <= EXHAUSTIVE_UP_TO
    for job in jobs:
        kind = job_class(repo, job)
        if not exhaustive and kind in compared:
            continue
        compared.add(kind)
        served.append(job)
        fast_cfg = fast.load_sweep_config(master, list(job))
        assert_same(loader.load_sweep_config(master, list(job)), fast_cfg, f"{preset}: {job}")
    # the fast path served every job: Hydra composed once per distinct set of group choices
    groups = {tuple(x for x in job_class(repo, j) if isinstance(x, str)) for j in served}
    assert fast.copied == len(served) and fast.composed == len(groups)


def test_value_overrides_follow_hydra_semantics(loader: ConfigLoaderImpl) -> None:
    """Adding a key (+), forcing one (++), an interpolation, a list and a dict value, a group
    with a package: each job equals Hydra's; a bad value raises Hydra's own error."""
    master = loader.load_configuration("config", ["seed=0,1"], RunMode.MULTIRUN)
    fast = ComposeOnce(loader)
    jobs = [
        ["seed=1", "+extra.note=hello", "++budget.max_steps=7"],
        ["seed=2", "problem=least_squares", "problem.dim=${budget.max_steps}"],
        ["algorithm=hdpo", "problem=one_store_backlogged", "policy@algorithm.policy=mlp"],
        ["algorithm=sgd", "algorithm.schedule=cosine", "problem={dataset: a9a}"],
        ["seed=3", "~force"],  # a deletion: left to Hydra
    ]
    for job in jobs:
        assert_same(loader.load_sweep_config(master, job), fast.load_sweep_config(master, job), job)
    assert fast.copied == 4 and fast.composed == 4 + 1  # four bases, one full composition
    with pytest.raises(Exception) as hydra_error:
        loader.load_sweep_config(master, ["seed=abc"])
    with pytest.raises(type(hydra_error.value)) as fast_error:
        fast.load_sweep_config(master, ["seed=abc"])
    assert str(fast_error.value) == str(hydra_error.value)


@pytest.mark.parametrize("preset", PRESETS)
def test_resolved_is_the_config_without_its_hydra_node(
    loader: ConfigLoaderImpl, preset: str
) -> None:
    """``resolved`` converts a composed config (its ``hydra`` node left out) to exactly what
    OmegaConf gives for a copy of the config without that node."""
    cfg = loader.load_configuration("config", [f"experiment={preset}"], RunMode.RUN)
    task = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    expected = OmegaConf.to_container(task, resolve=True, enum_to_str=True)
    assert resolved(cfg) == expected and resolved(task) == expected
    assert list(resolved(cfg)) == list(expected)  # key order (the config artifact's YAML)
    assert "hydra" not in expected and "problem" in expected


@pytest.mark.parametrize("preset", PRESETS)
def test_the_task_config_is_the_copy_hydra_makes(loader: ConfigLoaderImpl, preset: str) -> None:
    """The launcher's task config (the job config's nodes moved, not copied) equals a copy of
    the config without its ``hydra`` node: content unresolved and resolved, key order, struct
    flag; and the job config's ``hydra`` node still resolves its interpolations into task keys
    (``${experiment_name}`` in the run and sweep dirs) to what it did before."""
    from hydra.core.utils import setup_globals

    from hydra_plugins.optbench_launcher.launcher import task_config

    setup_globals()  # Hydra's ``now`` resolver, as the launcher has it
    cfg = loader.load_configuration("config", [f"experiment={preset}"], RunMode.MULTIRUN)
    copy = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    OmegaConf.set_struct(copy, OmegaConf.is_struct(cfg))
    dirs = (str(cfg.hydra.sweep.dir), str(cfg.hydra.run.dir))
    assert all(str(cfg.experiment_name) in d for d in dirs)
    task = task_config(cfg)
    assert OmegaConf.to_yaml(task) == OmegaConf.to_yaml(copy)  # content and order
    assert resolved(task) == resolved(copy) == resolved(cfg)
    assert OmegaConf.is_struct(task) == OmegaConf.is_struct(copy) == OmegaConf.is_struct(cfg)
    assert "hydra" not in task and "hydra" in cfg
    assert (str(cfg.hydra.sweep.dir), str(cfg.hydra.run.dir)) == dirs
    with pytest.raises(ConfigAttributeError):  # struct, as Hydra's task config: no new key
        task.no_such_key = 1
