"""Sweeps: a Hydra callback that gives every multirun a parent MLflow run and a summary.

At multirun start (in the launching process, before any job) the tracking store and experiment
are created once, and the sweep's parent run is opened: reopened when the same sweep (same
experiment, overrides and sweep grid) ran before, so a resumed sweep keeps all its children under
one parent. Jobs find the parent through ``$OPTBENCH_PARENT_RUN_ID``, set in every job's own
process through ``hydra.job.env_set`` (so it reaches joblib, Ray and SLURM workers too).

At multirun end the summaries the jobs left in their output dirs are collected (this works for
every launcher: jobs may run in other processes), counted by status and printed; failed runs are
listed with their error. The parent run is closed with the counts as tags, and, if the
experiment has a ``report:`` block with ``auto: true``, its report is written. ``last_outcome``
tells the CLI whether anything failed (exit code 1).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, read_write

from optbench.platform import paths, progress
from optbench.platform.errors import Abort
from optbench.platform.runner import SUMMARY_FILE, RunSummary
from optbench.platform.tracking import (
    PARENT_RUN_ENV,
    TAG,
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


last_outcome: SweepOutcome | None = None
_active: tuple[Any, str] | None = None  # (tracker, parent run id) of the sweep in progress


def interrupted() -> None:
    """Ctrl-C during a sweep: end its parent run as KILLED (a rerun resumes it)."""
    global _active
    if _active is not None:
        tracker, parent = _active
        _active = None
        try:
            tracker.close_sweep(
                parent, {f"{TAG}sweep.interrupted": "true"}, failed=True, killed=True
            )
        except Exception as exc:  # the store may be what failed
            log.warning("could not mark sweep run %s KILLED: %s", parent, exc)


def sweep_hash(config: DictConfig) -> str:
    """Identity of a sweep: experiment name, command-line overrides and the sweeper's grid."""
    params = config.hydra.sweeper.get("params") if "sweeper" in config.hydra else None
    data = {
        "experiment": config.experiment_name,
        "overrides": sorted(config.hydra.overrides.task),
        "params": OmegaConf.to_container(params, resolve=False) if params else None,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


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
        if s.status in (RunStatus.failed, RunStatus.diverged, RunStatus.timed_out):
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
        self._sweep_dir: Path | None = None
        self._started = 0.0
        self._bar: progress.SweepProgress | None = None

    @abort_on_error
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        global last_outcome
        last_outcome = None
        self._started = time.perf_counter()
        self._sweep_dir = Path(str(config.hydra.sweep.dir))
        tracker = make_tracker(config.tracking, config.experiment_name)
        tracker.prepare()
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
        pass_to_jobs(config, job_env)
        if self._parent:
            global _active
            _active = (tracker, self._parent)
            orphans = tracker.mark_orphans_killed(self._parent)
            if orphans:
                log.info("marked %d runs KILLED that were still RUNNING from before", orphans)
        if progress.enabled():
            self._bar = progress.SweepProgress(self._sweep_dir, progress.count_jobs(config)).start()

    @abort_on_error
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        global last_outcome, _active
        _active = None
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        assert self._sweep_dir is not None
        outcome = collect(self._sweep_dir) if self._sweep_dir.exists() else SweepOutcome()
        outcome.parent_run_id = self._parent
        last_outcome = outcome
        print(format_outcome(outcome, time.perf_counter() - self._started), flush=True)
        tracker = make_tracker(config.tracking, config.experiment_name)
        count_tags = {f"{TAG}sweep.{k}": str(v) for k, v in outcome.counts.items()}
        tracker.close_sweep(self._parent, count_tags, failed=outcome.failed)
        report = config.get("report")
        if report is not None and report.auto and tracker.enabled:
            from optbench.platform.report import write_report

            result = write_report(report, tracker, config.experiment_name)
            print(result.describe(), flush=True)
