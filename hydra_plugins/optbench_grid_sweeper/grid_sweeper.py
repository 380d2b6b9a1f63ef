"""The Hydra sweeper class; the grid and the job order are in ``optbench.platform.sweep``."""

from __future__ import annotations

import logging
from typing import Any

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from optbench.platform.compose import ComposeOnce

log = logging.getLogger("optbench")


class GridSweeper(Sweeper):
    """Every combination of the sweep overrides (as Hydra's basic sweeper), launched in stages:
    a job whose algorithm reads another run of the sweep (``Algorithm.inputs``) is launched after
    it, so parallel launchers respect the dependency too."""

    def __init__(self, max_batch_size: int | None = None, params: dict[str, str] | None = None):
        self.max_batch_size = max_batch_size
        self.params = params or {}

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        # one loader for the ordering and the launcher: each distinct set of config-group
        # choices is composed by Hydra once, every job is a copy with its values applied
        loader = ComposeOnce(hydra_context.config_loader)
        self.hydra_context = HydraContext(config_loader=loader, callbacks=hydra_context.callbacks)
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=self.hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        from pathlib import Path

        from optbench.platform import sweep

        assert self.config is not None and self.launcher is not None
        jobs = sweep.expand_grid(self.params, arguments)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        loader = self.hydra_context.config_loader
        assert isinstance(loader, ComposeOnce)
        # composing a job also validates it; a launcher running jobs in this process is handed
        # these configs, one in other processes composes them there
        in_process = type(self.launcher).__name__ in ("LocalLauncher", "BasicLauncher")
        configs = loader.prepare(self.config, jobs, keep=in_process)
        stages = sweep.job_stages(configs)
        sweep.write_finished_index(configs, sweep_dir)  # resume: one store query per sweep
        del configs
        returns = []
        index = 0
        try:
            for stage in stages:
                batch = [jobs[i] for i in stage]
                size = self.max_batch_size or len(batch)
                for start in range(0, len(batch), size):
                    chunk = batch[start : start + size]
                    returns.append(self.launcher.launch(chunk, initial_job_idx=index))
                    index += len(chunk)
        finally:
            shutdown = getattr(self.launcher, "shutdown", None)  # warm workers
            if shutdown is not None:
                shutdown()
        return returns
