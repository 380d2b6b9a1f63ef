"""Hyperparameter tuning with a current Optuna (ask/tell), as a Hydra sweeper.

``hydra/sweeper=optuna`` (``configs/hydra/sweeper/optuna.yaml``; the class lives in
``hydra_plugins.optbench_optuna_sweeper`` because Hydra only loads plugins from there) turns the
usual sweep syntax into an Optuna search space:

- ``choice(a, b, c)`` or ``a,b,c`` -> categorical; ``range(lo, hi, step)`` -> stepped int/float;
- ``interval(lo, hi)`` -> uniform float (Hydra parses its bounds as floats; use ``range``
  for integers); ``tag(log, interval(lo, hi))`` -> log-uniform.

Each trial is one job of the configured launcher (so trials run in parallel with
``n_jobs > 1`` and a parallel launcher), hence one MLflow child run under the study's parent
run. The job reports the objective ``metric`` at every evaluation to its trial, and the study's
pruner (``median`` or ``hyperband``) may stop it (status ``pruned``). Failed, diverged,
timed-out and killed runs are told to the study as FAIL, never as NaN. The study lives in a
journal file under ``runs/optuna/`` (or an RDB URL): a killed study is resumed by running the same
command again; trials left RUNNING by the kill are marked FAIL and the study continues up to
``n_trials``. At the end the best trial's params and all trials are written to
``runs/reports/<experiment>/optuna_best.yaml`` and ``optuna_trials.csv``.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from optbench.platform import paths
from optbench.platform.errors import ConfigError
from optbench.platform.runner import EvaluationHook, RunSummary
from optbench.platform.sweep import quote_override
from optbench.platform.tracking import RunStatus

log = logging.getLogger("optbench")

SAMPLERS = ("tpe", "random", "grid", "cmaes")
PRUNERS = ("none", "median", "hyperband")


def search_space(
    params: Mapping[str, Any] | None, arguments: Sequence[str]
) -> tuple[dict[str, Any], list[str]]:
    """Optuna distributions for the sweep overrides; other overrides are fixed for all trials."""
    import optuna.distributions as dist
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep

    texts = [f"{k}={v}" for k, v in (params or {}).items()] + list(arguments)
    space: dict[str, Any] = {}
    fixed: list[str] = []
    for override in OverridesParser.create().parse_overrides(texts):
        key = override.get_key_element()
        value = override.value()
        if not override.is_sweep_override():
            fixed.append(override.input_line)
            continue
        if isinstance(value, ChoiceSweep):
            space[key] = dist.CategoricalDistribution(list(value.list))
        elif isinstance(value, RangeSweep):
            start, stop, step = value.start, value.stop, value.step
            last = start + step * math.floor((stop - start) / step - 1e-12)  # range() excludes stop
            if all(isinstance(v, int) for v in (start, stop, step)):
                space[key] = dist.IntDistribution(start, int(last), step=step)
            else:
                space[key] = dist.FloatDistribution(start, last, step=step)
        elif isinstance(value, IntervalSweep):
            space[key] = dist.FloatDistribution(
                float(value.start), float(value.end), log="log" in value.tags
            )
        else:
            raise ConfigError(
                f"hydra.sweeper.params.{key}: unsupported sweep '{override.input_line}'"
            )
    if not space:
        raise ConfigError(
            "hydra/sweeper=optuna: no search space "
            "(give e.g. algorithm.lr='tag(log, interval(1e-3, 1))')"
        )
    return space, fixed


def make_sampler(name: str, seed: int | None, space: Mapping[str, Any]) -> Any:
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if name == "grid":
        grid = {}
        for key, d in space.items():
            if isinstance(d, optuna.distributions.CategoricalDistribution):
                grid[key] = list(d.choices)
            elif getattr(d, "step", None) is not None and not getattr(d, "log", False):
                count = round((d.high - d.low) / d.step) + 1
                grid[key] = [d.low + i * d.step for i in range(count)]
            else:
                raise ConfigError(f"hydra.sweeper.sampler=grid: '{key}' needs choice() or range()")
        return optuna.samplers.GridSampler(grid, seed=seed)
    raise ConfigError(f"hydra.sweeper.sampler: unknown '{name}' (known: {', '.join(SAMPLERS)})")


def make_pruner(name: str) -> Any:
    import optuna

    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner()
    raise ConfigError(f"hydra.sweeper.pruner: unknown '{name}' (known: {', '.join(PRUNERS)})")


def storage_for(study: str, storage: str | None) -> Any:
    """An RDB URL as given, else a journal file (``runs/optuna/<study>.journal`` by default)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    if storage and "://" in storage:
        return storage
    path = Path(storage) if storage else paths.runs_dir() / "optuna" / f"{study}.journal"
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


def open_study(name: str, storage: str | None, direction: str, sampler: Any, pruner: Any) -> Any:
    """Create or resume the study; trials a killed sweep left RUNNING are marked FAIL."""
    import optuna

    if direction not in ("minimize", "maximize"):
        raise ConfigError(f"hydra.sweeper.direction: minimize or maximize, got '{direction}'")
    study = optuna.create_study(
        study_name=name,
        storage=storage_for(name, storage),
        sampler=sampler,
        pruner=pruner,
        direction=direction,
        load_if_exists=True,
    )
    stale = [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]
    for trial in stale:
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
    if stale:
        log.info(
            "study %s: %d trials left RUNNING by an interrupted sweep marked FAIL", name, len(stale)
        )
    return study


def _format(value: Any) -> str:
    if isinstance(value, str) and not re.fullmatch(r"[\w./:+-]+", value):
        return quote_override(value)
    return repr(value) if isinstance(value, float) else str(value)


def trial_overrides(
    trial: Any, fixed: Sequence[str], study: str, storage: str | None, metric: str
) -> list[str]:
    """The job overrides of one trial: the fixed ones, the trial's params, the tuning block."""
    chosen = [f"{k}={_format(v)}" for k, v in trial.params.items()]
    tuning = [
        f"tuning.study={_format(study)}",
        f"tuning.trial_id={trial._trial_id}",
        f"tuning.metric={_format(metric)}",
    ]
    if storage:
        tuning.append(f"tuning.storage={_format(storage)}")
    return [*fixed, *chosen, *tuning]


def tell(study: Any, trial: Any, summary: RunSummary | None, metric: str) -> str:
    """Tell the study how the trial's run ended; returns the state told."""
    from optuna.trial import TrialState

    if summary is None or summary.status in (
        RunStatus.failed,
        RunStatus.killed,
        RunStatus.diverged,
        RunStatus.timed_out,
    ):
        study.tell(trial, state=TrialState.FAIL)
        return "fail"
    if summary.status is RunStatus.pruned:
        study.tell(trial, state=TrialState.PRUNED)
        return "pruned"
    value = summary.metrics.get(metric, math.nan)
    if not math.isfinite(value):
        study.tell(trial, state=TrialState.FAIL)
        return "fail"
    study.tell(trial, value)
    return "complete"


def pruning_hook(tuning: Any) -> EvaluationHook | None:
    """For a job launched as an Optuna trial: report the objective at each evaluation and ask
    the study's pruner whether to stop."""
    if tuning is None or tuning.trial_id is None:
        return None
    import optuna

    study = optuna.load_study(
        study_name=tuning.study, storage=storage_for(tuning.study, tuning.storage)
    )
    trial = optuna.trial.Trial(study, int(tuning.trial_id))

    def hook(step: int, metrics: Mapping[str, float]) -> bool:
        value = metrics.get(tuning.metric)
        if value is None or not math.isfinite(value) or step == 0:
            return False
        trial.report(value, step)
        return trial.should_prune()

    return hook


def write_best(study: Any, out_dir: Path) -> list[Path]:
    """The best trial's params (YAML) and every trial (CSV) under ``out_dir``."""
    import optuna
    import yaml

    out_dir.mkdir(parents=True, exist_ok=True)
    trials = study.trials_dataframe()
    trials.to_csv(out_dir / "optuna_trials.csv", index=False)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = {"study": study.study_name, "trials": len(study.trials), "complete": len(complete)}
    if complete:
        best.update(
            value=float(study.best_trial.value),
            params=dict(study.best_trial.params),
            trial=study.best_trial.number,
        )
    (out_dir / "optuna_best.yaml").write_text(yaml.safe_dump(best, sort_keys=False))
    return [out_dir / "optuna_trials.csv", out_dir / "optuna_best.yaml"]
