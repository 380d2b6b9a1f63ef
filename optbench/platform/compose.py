"""Composing a sweep's jobs: Hydra's composition once per distinct set of config-group choices.

Hydra composes every job of a multirun from scratch (the defaults list, every YAML file, the
schema merge), although the jobs of a sweep usually differ only in values (``seed=3``,
``algorithm.lr=0.1``). ``ComposeOnce`` wraps Hydra's config loader: a job's overrides are split
into *structural* ones (config-group choices such as ``algorithm=adam`` or
``policy@algorithm.policy=mlp``, everything under ``hydra``) and *value* ones
(``key=value``, ``+key=value``, ``++key=value`` on a key that is not a config group). The config
composed by Hydra from the structural overrides alone is kept per distinct structural set; a job
gets a copy with its value overrides applied by Hydra's own function, in the order given, and
the bookkeeping Hydra does after applying them (``hydra.overrides``, ``override_dirname``, the
sweep's resolver cache) redone for the whole override list.

That is what Hydra itself does: it builds the defaults list from the structural overrides only
and applies the value overrides to the merged config afterwards. Anything the fast path does not
handle (a sweep override, a deletion ``~key``, an error while applying a value) goes to Hydra's
full composition, which also raises Hydra's own error for a bad override.
``tests/test_compose.py`` composes every job of every experiment preset both ways and compares
the configs.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from typing import Any

from hydra.core.config_loader import ConfigLoader
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict


class ComposeOnce(ConfigLoader):
    """A config loader that composes once per distinct set of structural overrides and gives
    each job a copy with its value overrides applied; every other call goes to ``loader``.

    The cache of composed configs stays in its process: a copy of this loader sent to another
    process (joblib, Ray) starts with an empty cache.
    """

    def __init__(self, loader: ConfigLoader) -> None:
        self.loader = loader
        self._bases: dict[tuple[Any, ...], bytes] = {}  # composed configs, pickled
        self._repos: dict[tuple[Any, ...], Any] = {}
        self._ready: dict[tuple[str, ...], DictConfig] = {}  # composed by ``prepare``
        self._parsed: dict[str, Override] = {}  # each override string parsed once
        self._structural: dict[tuple[Any, ...], bool] = {}  # ``_kinds``' decisions
        self._master: tuple[DictConfig, str | None, list[str]] | None = None
        self.composed = 0  # Hydra compositions done (for the benchmarks and tests)
        self.copied = 0  # jobs served from a composed config

    def __getstate__(self) -> dict[str, Any]:  # the caches stay in this process
        return {"loader": self.loader}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["loader"])  # type: ignore[misc]

    # -- the fast path ---------------------------------------------------------------------------
    def prepare(
        self, master_config: DictConfig, jobs: Sequence[Sequence[str]], keep: bool = True
    ) -> list[DictConfig]:
        """Compose every job of a sweep (in order); with ``keep``, each config is kept for the
        launcher's ``load_sweep_config`` of that job (given out once): no job is composed twice.
        """
        configs = [self.load_sweep_config(master_config, list(job)) for job in jobs]
        if keep:
            for job, config in zip(jobs, configs, strict=True):
                self._ready[tuple(job)] = config
        return configs

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]) -> Any:
        """The config of the job with ``sweep_overrides`` in the multirun of ``master_config``:
        identical to Hydra's ``load_sweep_config``."""
        ready = self._ready.pop(tuple(sweep_overrides), None)
        if ready is not None:
            return ready
        try:
            config = self._from_base(master_config, list(sweep_overrides))
        except Exception:
            config = None
        if config is None:
            self.composed += 1
            return self.loader.load_sweep_config(master_config, list(sweep_overrides))
        self.copied += 1
        return config

    def _from_base(self, master: DictConfig, sweep_overrides: list[str]) -> DictConfig | None:
        from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname

        if not isinstance(self.loader, ConfigLoaderImpl):
            return None
        config_name, hydra_overrides = self._master_facts(master)
        parsed = self._parse(hydra_overrides + sweep_overrides)
        if any(o.is_sweep_override() or o.is_delete() for o in parsed):
            return None  # Hydra's own composition (and its error for a sweep in a job)
        kinds = self._kinds(config_name, tuple(hydra_overrides), parsed)
        structural = [o for o, is_structural in zip(parsed, kinds, strict=True) if is_structural]
        values = [o for o, is_structural in zip(parsed, kinds, strict=True) if not is_structural]
        key = (config_name, tuple(o.input_line for o in structural))
        if key not in self._bases:
            base = self.loader.load_configuration(
                config_name=config_name,
                overrides=[str(o.input_line) for o in structural],
                run_mode=RunMode.RUN,
            )
            self.composed += 1
            self._bases[key] = pickle.dumps(base)  # a copy is one unpickling (3x a deepcopy)
        config = pickle.loads(self._bases[key])
        ConfigLoaderImpl._apply_overrides_to_config(values, config)
        task = [o for o in parsed if not o.is_hydra_override()]
        job = config.hydra.job
        with open_dict(config.hydra):
            config.hydra.overrides.hydra = [o.input_line for o in parsed if o.is_hydra_override()]
            config.hydra.overrides.task = [o.input_line for o in task]
            job.override_dirname = get_overrides_dirname(
                overrides=task,
                kv_sep=job.config.override_dirname.kv_sep,
                item_sep=job.config.override_dirname.item_sep,
                exclude_keys=job.config.override_dirname.exclude_keys,
            )
        OmegaConf.copy_cache(from_config=master, to_config=config)
        return config

    def _master_facts(self, master: DictConfig) -> tuple[str | None, list[str]]:
        """The primary config's name and the hydra overrides of the multirun of ``master``
        (read once per master config: reading an OmegaConf node costs more than a lookup)."""
        if self._master is None or self._master[0] is not master:
            hydra_overrides = [str(o) for o in master.hydra.overrides.hydra]
            self._master = (master, master.hydra.job.config_name, hydra_overrides)
        return self._master[1], list(self._master[2])

    def _kinds(
        self, config_name: str | None, hydra_overrides: tuple[str, ...], parsed: list[Override]
    ) -> list[bool]:
        """Whether each override is structural (``_is_structural``), decided once per override
        string and config repository."""
        repo_key = (config_name, hydra_overrides)
        kinds = []
        for override in parsed:
            key = (repo_key, override.input_line)
            if key not in self._structural:
                self._structural[key] = _is_structural(override, self._repo(*repo_key))
            kinds.append(self._structural[key])
        return kinds

    def _parse(self, overrides: list[str]) -> list[Override]:
        """Hydra's parse of each override (it parses them one by one), done once per string: a
        sweep's jobs repeat all but one or two of theirs."""
        missing = [line for line in dict.fromkeys(overrides) if line not in self._parsed]
        if missing:
            parsed = OverridesParser.create().parse_overrides(missing)
            self._parsed.update(zip(missing, parsed, strict=True))
        return [self._parsed[line] for line in overrides]

    def _repo(self, config_name: str | None, hydra_overrides: tuple[str, ...]) -> Any:
        """Hydra's config repository as the hydra overrides (``hydra.searchpath``) set it up."""
        key = (config_name, hydra_overrides)
        if key not in self._repos:
            self._repos[key] = self.loader._parse_overrides_and_create_caching_repo(  # type: ignore[attr-defined]
                config_name, list(hydra_overrides)
            )[1]
        return self._repos[key]

    # -- everything else is the wrapped loader's -------------------------------------------------
    def load_configuration(
        self,
        config_name: str | None,
        overrides: list[str],
        run_mode: RunMode,
        from_shell: bool = True,
        validate_sweep_overrides: bool = True,
    ) -> DictConfig:
        return self.loader.load_configuration(
            config_name, overrides, run_mode, from_shell, validate_sweep_overrides
        )

    def get_search_path(self) -> Any:
        return self.loader.get_search_path()

    def get_sources(self) -> list[Any]:
        return self.loader.get_sources()

    def list_groups(self, parent_name: str) -> list[str]:
        return self.loader.list_groups(parent_name)

    def get_group_options(
        self,
        name: str,
        results_filter: Any = None,
        config_name: str | None = None,
        overrides: list[str] | None = None,
    ) -> list[str]:
        return self.loader.get_group_options(name, results_filter, config_name, overrides)

    def compute_defaults_list(
        self, config_name: str | None, overrides: list[str], run_mode: RunMode
    ) -> Any:
        return self.loader.compute_defaults_list(config_name, overrides, run_mode)


def _is_structural(override: Override, repo: Any) -> bool:
    """Whether ``override`` is part of a job's composition (a config-group choice, anything
    under ``hydra``) rather than a value applied to the composed config.
    Mirrors ``hydra._internal.defaults_list.Overrides``: a dict value on a group is a value."""
    if override.is_hydra_override() or override.package is not None:
        return True
    return repo.group_exists(override.key_or_group) and not isinstance(override.value(), dict)


def compose_jobs(
    loader: ConfigLoader, master_config: DictConfig, jobs: Sequence[Sequence[str]]
) -> list[DictConfig]:
    """The composed config of every job (``load_sweep_config`` of each)."""
    return [loader.load_sweep_config(master_config, list(job)) for job in jobs]
