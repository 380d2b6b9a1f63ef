"""The Hydra sweeper class; the tuning logic is in ``optbench.platform.tuning``."""

from __future__ import annotations

import logging
from typing import Any

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

log = logging.getLogger("optbench")


class OptunaSweeper(Sweeper):
    """Ask/tell Optuna study over the sweep's search space; one launcher job per trial."""

    def __init__(
        self,
        sampler: str = "tpe",
        direction: str = "minimize",
        metric: str = "loss",
        n_trials: int = 20,
        n_jobs: int = 1,
        seed: int | None = 0,
        pruner: str = "none",
        study_name: str | None = None,
        storage: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        self.sampler, self.direction, self.metric = sampler, direction, metric
        self.n_trials, self.n_jobs, self.seed = n_trials, max(1, n_jobs), seed
        self.pruner, self.study_name, self.storage = pruner, study_name, storage
        self.params = params
        self.job_idx = 0

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        from optbench.platform import paths, tuning

        space, fixed = tuning.search_space(self.params, arguments)
        name = self.study_name or str(self.config.experiment_name)
        study = tuning.open_study(
            name,
            self.storage,
            self.direction,
            tuning.make_sampler(self.sampler, self.seed, space),
            tuning.make_pruner(self.pruner),
        )
        if (
            study.trials and self.seed is not None
        ):  # resumed: do not replay the first session's draws
            study.sampler = tuning.make_sampler(self.sampler, self.seed + len(study.trials), space)
        finished = sum(1 for t in study.trials if t.state.is_finished())
        log.info("study %s: %d of %d trials done", name, finished, self.n_trials)
        told: dict[str, int] = {}
        while finished < self.n_trials:
            batch = [study.ask(space) for _ in range(min(self.n_jobs, self.n_trials - finished))]
            overrides = [
                tuning.trial_overrides(t, fixed, name, self.storage, self.metric) for t in batch
            ]
            returns = self.launcher.launch(overrides, initial_job_idx=self.job_idx)
            self.job_idx += len(batch)
            for trial, job in zip(batch, returns, strict=True):
                try:
                    summary = job.return_value
                except Exception as exc:  # the job itself crashed (not just its run)
                    log.warning("trial %d: job failed: %s", trial.number, exc)
                    summary = None
                state = tuning.tell(study, trial, summary, self.metric)
                told[state] = told.get(state, 0) + 1
            finished += len(batch)
        out = paths.runs_dir() / "reports" / str(self.config.experiment_name)
        tuning.write_best(study, out)
        log.info(
            "study %s: this session told %s; best written to %s",
            name,
            told,
            out / "optuna_best.yaml",
        )
