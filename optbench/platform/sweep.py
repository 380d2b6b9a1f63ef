"""Sweeps: a Hydra callback that gives every multirun a parent MLflow run and a summary.

At multirun start (in the launching process, before any job) the tracking store and experiment
are created once, and the sweep's parent run is opened: reopened when the same sweep (same
experiment, overrides and sweep grid) ran before, so a resumed sweep keeps all its children under
one parent. Jobs find the parent through ``$OPTBENCH_PARENT_RUN_ID``, set in every job's own
process through ``hydra.job.env_set`` (so it reaches joblib, Ray and SLURM workers too).

At multirun end the summaries the jobs left in their output dirs are collected (this works for
every launcher: jobs may run in other processes), counted by status and printed; failed runs are
listed with their error. The parent run is closed with the counts as tags, and, if the
experiment has a ``report:`` block with ``auto: true``, its report is written. A sweep with a
failed run then ends by raising ``SweepFailed`` (the CLI exits 1); Ctrl-C during the sweep closes
the parent run as KILLED before the interrupt goes on.

The grid (``expand_grid``) and the order jobs are launched in (``job_stages``: a run reading
another run of the sweep comes after it) are used by the grid sweeper
(``hydra_plugins.optbench_grid_sweeper``).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import logging
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, read_write

from optbench.platform import dashboard, paths, progress
from optbench.platform.cache import write_atomically
from optbench.platform.errors import Abort, ConfigError
from optbench.platform.identity import NOT_IDENTITY, as_params, config_hash, resolved
from optbench.platform.results import TAG, FinishedIndex, finished_index
from optbench.platform.runner import SUMMARY_FILE, RunSummary
from optbench.platform.tracking import (
    PARENT_RUN_ENV,
    NullTracker,
    RunStatus,
    environment_tags,
    make_tracker,
)

log = logging.getLogger("optbench")


@dataclass
class SweepOutcome:
    """What a finished multirun produced; read by the CLI for its exit code."""

    summaries: list[RunSummary] = field(default_factory=list)
    launched: int = 0
    parent_run_id: str | None = None

    @property
    def counts(self) -> Counter[str]:
        counts = Counter(s.status.value for s in self.summaries)
        if self.missing:
            counts["missing"] = self.missing
        return counts

    @property
    def missing(self) -> int:
        """Jobs that left no summary (their process died)."""
        return max(0, self.launched - len(self.summaries))

    @property
    def failed(self) -> bool:
        return self.missing > 0 or any(s.status is RunStatus.failed for s in self.summaries)


class SweepFailed(BaseException):
    """Raised at the end of a sweep in which a run failed (a BaseException, so Hydra's callback
    wrapper lets it through); carries the outcome to the CLI, which exits 1."""

    def __init__(self, outcome: SweepOutcome) -> None:
        super().__init__(f"{outcome.counts.get('failed', 0)} runs failed")
        self.outcome = outcome


def expand_grid(params: Mapping[str, Any] | None, arguments: Sequence[str]) -> list[list[str]]:
    """The override lists of a grid sweep's jobs: every combination of the sweep overrides
    (``a=1,2``, ``range(...)``, ``choice(...)``) of ``params`` (``hydra.sweeper.params``) and the
    command line, in their order, with the fixed overrides in every job."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    texts = [f"{k}={v}" for k, v in (params or {}).items()] + list(arguments)
    axes: dict[str, list[str]] = {}
    for override in OverridesParser.create().parse_overrides(texts):
        key = override.get_key_element()
        if override.is_sweep_override():
            if not override.is_discrete_sweep():
                raise ConfigError(f"{key}: the grid sweeper takes lists, range() or choice()")
            axes[key] = [f"{key}={v}" for v in override.sweep_string_iterator()]
            if not axes[key]:
                sweep = override.input_line.split("=", 1)[-1]
                raise ConfigError(f"{key}={sweep}: an empty sweep (no value to run)")
        else:
            axes[key] = [f"{key}={override.get_value_element_as_str()}"]
    return [list(job) for job in itertools.product(*axes.values())]


def sweep_values(
    params: Mapping[str, Any] | None, arguments: Sequence[str]
) -> dict[str, list[str]]:
    """Per config key of a sweep's overrides (``hydra.sweeper.params``, then the command line)
    that is part of a run's identity: the values it takes, one for a fixed override.
    Continuous ranges (Optuna's ``interval``), deletions and list or dict values are left out."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    texts = [f"{k}={v}" for k, v in (params or {}).items()] + list(arguments)
    values: dict[str, list[str]] = {}
    for override in OverridesParser.create().parse_overrides(texts):
        key = override.key_or_group
        if override.is_delete() or key.split(".")[0] in NOT_IDENTITY:
            continue
        if override.is_sweep_override():
            taken = list(override.sweep_iterator()) if override.is_discrete_sweep() else []
        else:
            taken = [override.value()]
        if taken and not any(isinstance(v, list | dict) or v is None for v in taken):
            values[key] = [str(v) for v in taken]
    return values


def count_jobs(config: Any) -> int | None:
    """How many jobs the sweep will launch, when the sweeper says in advance (the grid sweeper:
    the product of the sweep lists; Optuna: ``n_trials``)."""
    sweeper = config.hydra.sweeper
    if "n_trials" in sweeper:
        return int(sweeper.n_trials)
    if not str(sweeper.get("_target_", "")).endswith("GridSweeper"):
        return None
    return len(expand_grid(sweeper.get("params"), list(config.hydra.overrides.task)))


def job_stages(configs: Sequence[DictConfig]) -> list[list[int]]:
    """The jobs of a sweep (their composed configs) in stages: a job whose algorithm declares an
    input (``Algorithm.inputs``) that another job of the sweep provides is in a later stage than
    that job. Within a stage the sweep's order is kept. A job whose algorithm cannot be built is
    left in the first stage: it fails when it runs, with its own error. Each distinct algorithm
    config is built once."""
    from optbench.contracts.algorithm import Algorithm
    from optbench.platform.build import build

    declared: dict[str, list[Any]] = {}
    wants: list[list[Any]] = []
    for cfg in configs:
        try:
            node = OmegaConf.to_container(cfg.algorithm, resolve=True)
            key = json.dumps(node, sort_keys=True, default=str)
            if key not in declared:
                declared[key] = list(build(cfg.algorithm, Algorithm, "algorithm").inputs())
            wants.append(declared[key])
        except Exception:
            wants.append([])
    if not any(wants):
        return [list(range(len(configs)))] if configs else []
    params = [as_params(resolved(c)) for c in configs]
    hashes = [config_hash(resolved(c)) for c in configs]
    depends: list[set[int]] = [set() for _ in configs]
    for j, cfg in enumerate(configs):
        for wanted in wants[j]:
            config = resolved(cfg)
            ignore = [*wanted.best_over, *NOT_IDENTITY]
            target = _with_changes(config, wanted.changes)
            if wanted.best_over:
                want = _without(as_params(target), ignore)
                depends[j] |= {
                    i for i, p in enumerate(params) if i != j and _without(p, ignore) == want
                }
            else:
                identity = config_hash(target)
                depends[j] |= {i for i, h in enumerate(hashes) if i != j and h == identity}
    level: list[int | None] = [None] * len(configs)

    def stage(j: int, seen: frozenset[int] = frozenset()) -> int:
        if j in seen:
            raise ConfigError("the sweep's cross-run inputs form a cycle")
        if level[j] is None:
            level[j] = 1 + max((stage(i, seen | {j}) for i in depends[j]), default=-1)
        return level[j]  # type: ignore[return-value]

    for j in range(len(configs)):
        stage(j)
    stages: dict[int, list[int]] = {}
    for j, value in enumerate(level):
        stages.setdefault(value or 0, []).append(j)
    return [stages[k] for k in sorted(stages)]


FINISHED_FILE = "optbench_finished.json"


def write_finished_index(configs: Sequence[DictConfig], sweep_dir: Path) -> None:
    """The resume lookup of every job of the sweep at once: one query to the tracking store for
    all their config hashes, left in the sweep dir (``FINISHED_FILE``) where every job reads it,
    whichever process or host it runs on. Nothing is written when the jobs log to more than one
    store or the store cannot be read: each job then looks itself up."""
    stores: set[tuple[str, str]] = set()
    hashes = []
    for cfg in configs:
        config = resolved(cfg)
        tracking = config["tracking"]
        if str(tracking["backend"]) == "none":
            return
        stores.add((str(tracking["uri"]), str(config["experiment_name"])))
        hashes.append(config_hash(config))
    if len(stores) != 1:
        return
    try:
        tracker = make_tracker(configs[0].tracking, configs[0].experiment_name)
        index = finished_index(tracker, hashes)
    except Exception as exc:  # the jobs will report the store's error themselves
        log.warning("resume lookup for the whole sweep failed (%s); each job looks itself up", exc)
        return
    write_atomically(sweep_dir / FINISHED_FILE, index.to_json().encode())


@functools.lru_cache(maxsize=4)
def _read_index(file: Path, mtime_ns: int) -> FinishedIndex:
    return FinishedIndex.from_json(file.read_text())


def read_finished_index(sweep_dir: Path) -> FinishedIndex | None:
    """The sweep's resume lookup (``write_finished_index``), if it was done."""
    file = sweep_dir / FINISHED_FILE
    try:
        return _read_index(file, file.stat().st_mtime_ns)
    except FileNotFoundError:
        return None


def _with_changes(config: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    from optbench.platform.identity import unflatten_set

    other = json.loads(json.dumps(config, default=str))
    for dotted, value in changes.items():
        unflatten_set(other, dotted, value)
    return other


def _without(params: Mapping[str, str], ignore: Sequence[str]) -> dict[str, str]:
    return {
        k: v for k, v in params.items() if not any(k == i or k.startswith(f"{i}.") for i in ignore)
    }


def sweep_hash(config: DictConfig) -> str:
    """Identity of a sweep: experiment name, command-line overrides and the sweeper's grid."""
    params = config.hydra.sweeper.get("params") if "sweeper" in config.hydra else None
    data = {
        "experiment": config.experiment_name,
        "overrides": sorted(config.hydra.overrides.task),
        "params": OmegaConf.to_container(params, resolve=False) if params else None,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def record_lost_job(config: DictConfig, reason: str) -> None:
    """A job whose process died before it could report (a killed worker): its output dir gets
    a failed summary, and its run, if it had opened one, is ended as FAILED with ``reason``."""
    from optbench.platform.runner import write_summary

    job_dir = Path(str(config.hydra.sweep.dir)) / str(config.hydra.sweep.subdir)
    (job_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    task = [str(o) for o in config.hydra.overrides.task]
    (job_dir / ".hydra" / "overrides.yaml").write_text(OmegaConf.to_yaml(task))
    choices = config.hydra.runtime.choices
    name = f"{choices.get('algorithm') or 'algorithm'}@{choices.get('problem') or 'problem'}"
    if config.hydra.job.override_dirname:
        name += f" {config.hydra.job.override_dirname}"
    identity = config_hash(resolved(config))
    summary = RunSummary(name, RunStatus.failed, identity, error=reason)
    write_summary(summary, job_dir)
    parent = config.hydra.job.env_set.get(PARENT_RUN_ENV)
    tracker = make_tracker(config.tracking, config.experiment_name)
    if tracker.enabled and parent:
        tracker.end_running(parent, identity, RunStatus.failed, reason)


def collect(sweep_dir: Path) -> SweepOutcome:
    """Read the job summaries under ``sweep_dir`` (job subdirs are named by job number)."""
    job_dirs = [d for d in sweep_dir.iterdir() if d.is_dir() and (d / ".hydra").exists()]
    outcome = SweepOutcome(launched=len(job_dirs))
    for job_dir in sorted(job_dirs, key=lambda d: (len(d.name), d.name)):
        file = job_dir / SUMMARY_FILE
        if file.exists():
            outcome.summaries.append(RunSummary.from_json(file.read_text()))
    return outcome


def format_outcome(outcome: SweepOutcome, elapsed_s: float) -> str:
    counts = ", ".join(f"{n} {status}" for status, n in sorted(outcome.counts.items()))
    lines = [f"sweep: {outcome.launched} jobs in {elapsed_s:.1f} s: {counts or 'nothing ran'}"]
    for s in outcome.summaries:
        if s.status in (
            RunStatus.failed,
            RunStatus.diverged,
            RunStatus.timed_out,
            RunStatus.stalled,
        ):
            detail = s.error or s.stop_reason
            lines.append(f"  {s.status.value}: {s.name} (run {s.run_id}): {detail}")
    if outcome.missing:
        lines.append(f"  missing: {outcome.missing} jobs left no summary (their process died)")
    return "\n".join(lines)


def quote_override(value: str) -> str:
    """``value`` as a quoted Hydra override value (backslashes and quotes escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def pass_to_jobs(config: DictConfig, env: dict[str, str]) -> None:
    """Set environment variables in every job of this sweep, wherever it runs.

    Hydra rebuilds each job's config from the sweep's ``hydra.overrides.hydra`` and applies
    ``hydra.job.env_set`` around the task in the job's own process (a joblib or Ray worker, a
    SLURM node), so appending ``++hydra.job.env_set.KEY=value`` reaches them all.
    """
    quoted = {k: quote_override(v) for k, v in env.items()}
    with read_write(config.hydra.overrides):
        config.hydra.overrides.hydra.extend(
            [f"++hydra.job.env_set.{k}={v}" for k, v in quoted.items()]
        )


def abort_on_error(method: Callable[..., None]) -> Callable[..., None]:
    """Hydra turns a callback's exceptions into warnings and carries on; an error here (an
    unreachable store, a bug) must stop the sweep instead, so it leaves as an ``Abort``."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            method(*args, **kwargs)
        except Exception as exc:
            raise Abort(exc) from exc

    return wrapper


class SweepCallback(Callback):
    """Parent run, status summary and automatic report for every multirun."""

    def __init__(self) -> None:
        self._parent: str | None = None
        self._tracker: NullTracker | None = None
        self._sweep_dir: Path | None = None
        self._started = 0.0
        self._bar: progress.SweepProgress | None = None
        self._previous_sigint: Any = None

    @abort_on_error
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        report = config.get("report")
        if report is not None and report.get("claims"):
            from optbench.platform.claims import parse_claims

            # a malformed claim fails now, not after the sweep has run
            parse_claims(report.claims, "metric", str(getattr(report.goal, "value", "min")))
        self._started = time.perf_counter()
        jobs = count_jobs(config)  # also refuses an empty sweep list, before anything is tracked
        self._sweep_dir = Path(str(config.hydra.sweep.dir))
        tracker = self._tracker = make_tracker(config.tracking, config.experiment_name)
        tracker.prepare(dashboard.key_metric(config))
        overrides = " ".join(config.hydra.overrides.task)
        tags = {
            **environment_tags(),
            f"{TAG}sweep.overrides": overrides[:5000],
            f"{TAG}sweep.dir": str(self._sweep_dir),
        }
        name = f"sweep {config.experiment_name}" + (f" {overrides}" if overrides else "")
        self._parent = tracker.open_sweep(sweep_hash(config), name, tags)
        job_env = {
            "OPTBENCH_RUNS_DIR": str(paths.runs_dir()),
            "OPTBENCH_ROOT": str(paths.project_root()),
        }
        if "MLFLOW_TRACKING_URI" in os.environ:
            job_env["MLFLOW_TRACKING_URI"] = os.environ["MLFLOW_TRACKING_URI"]
        if self._parent:
            job_env[PARENT_RUN_ENV] = self._parent
        values = sweep_values(config.hydra.sweeper.get("params"), config.hydra.overrides.task)
        swept = [key for key, taken in values.items() if len(taken) > 1]
        job_env[dashboard.SWEPT_KEYS_ENV] = ",".join(swept)  # runs are named by these
        pass_to_jobs(config, job_env)
        if self._parent:
            orphans = tracker.mark_orphans_killed(self._parent)
            if orphans:
                log.info("marked %d runs KILLED that were still RUNNING from before", orphans)
            self._previous_sigint = signal.signal(signal.SIGINT, self._interrupted)
        if progress.enabled():
            self._bar = progress.SweepProgress(self._sweep_dir, jobs).start()

    def _report(self, config: DictConfig, tracker: NullTracker, outcome: SweepOutcome) -> None:
        """The experiment's report on the runs this sweep's overrides select; without a
        ``report:`` block, the default report of this sweep's own runs (or a line saying why
        there is none)."""
        from optbench.platform.report import write_report

        params = config.hydra.sweeper.get("params")
        values = sweep_values(params, config.hydra.overrides.task)
        report = config.get("report")
        if report is not None:
            declared = sweep_values(params, [])
            result = write_report(
                report, tracker, config.experiment_name, only=values, declared=declared
            )
        else:
            swept = [key for key, taken in values.items() if len(taken) > 1]
            run_ids = [s.run_id for s in outcome.summaries if s.run_id]
            try:
                result = write_report(
                    None, tracker, config.experiment_name, only=values, run_ids=run_ids, swept=swept
                )
            except ConfigError as exc:
                print(f"no report: {exc}", flush=True)
                return
        print(result.describe(), flush=True)

    def _interrupted(self, signum: int, frame: Any) -> None:
        """Ctrl-C: close the parent run as KILLED (a rerun resumes it), then interrupt."""
        self._restore_sigint()
        if self._tracker is not None and self._parent is not None:
            try:
                self._tracker.close_sweep(
                    self._parent, {f"{TAG}sweep.interrupted": "true"}, failed=True, killed=True
                )
            except Exception as exc:  # the store may be what failed
                log.warning("could not mark sweep run %s KILLED: %s", self._parent, exc)
        raise KeyboardInterrupt

    def _restore_sigint(self) -> None:
        if self._previous_sigint is not None:
            signal.signal(signal.SIGINT, self._previous_sigint)
            self._previous_sigint = None

    @abort_on_error
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._restore_sigint()
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        assert self._sweep_dir is not None
        outcome = collect(self._sweep_dir) if self._sweep_dir.exists() else SweepOutcome()
        outcome.parent_run_id = self._parent
        print(format_outcome(outcome, time.perf_counter() - self._started), flush=True)
        tracker = self._tracker or make_tracker(config.tracking, config.experiment_name)
        count_tags = {f"{TAG}sweep.{k}": str(v) for k, v in outcome.counts.items()}
        tracker.close_sweep(self._parent, count_tags, failed=outcome.failed)
        report = config.get("report")
        if tracker.enabled and (report is None or report.auto):
            self._report(config, tracker, outcome)
        if outcome.failed:
            raise SweepFailed(outcome)
