"""A project's ``configs/`` searched before the built-in tree: a project's YAML adds configs or
replaces a built-in one of the same name (``optbench.platform.paths``)."""

from __future__ import annotations

from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

from optbench.platform import paths


class ProjectSearchPath(SearchPathPlugin):
    """Prepends ``<project>/configs`` before the primary config path, for optbench's apps only
    (the primary path is the built-in tree); other Hydra apps in the environment are untouched."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        builtin = paths.config_dir().resolve()
        main = [e.path for e in search_path.get_path() if e.provider == "main"]
        if not any(Path(p.removeprefix("file://")).resolve() == builtin for p in main):
            return
        project = paths.project_config_dir()
        if project is not None:
            search_path.prepend("optbench-project", f"file://{project}", anchor="main")
