"""Tracking: where runs, their params, tags, metrics and artifacts are recorded.

``NullTracker`` (``tracking=none``): runs are executed and summarised but nothing is stored and
nothing can be resumed. ``MlflowTracker`` (the default) records into MLflow:

- one MLflow experiment per optbench experiment; one run per job, nested under a sweep's parent;
- params: the resolved config flattened to dotted keys; tags under ``optbench.*`` (config hash,
  git commit and dirty flag, seed, device, versions, status, error);
- metrics sent with ``log_batch`` (one call per step is ~50x slower on sqlite); per-step progress
  metrics decimated to at most ``max_points_per_metric`` points per key, the full per-step series
  kept in the run's ``progress.csv`` artifact;
- read primitives (``search_runs``, ``metric_history``, ``read_artifact_csv``) for
  ``optbench.platform.results``, which interprets stored runs; this module is the only one that
  talks to MLflow.
"""

from __future__ import annotations

import atexit
import contextlib
import csv
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pandas as pd

from optbench.platform import store
from optbench.platform.errors import ConfigError, OptbenchError, TrackingError
from optbench.platform.results import PROGRESS, PROGRESS_ARTIFACT, ROLE, TAG, StoredRun

#: experiment tags naming the metric the dashboard shows first and whether lower is better
KEY_METRIC = f"{TAG}key_metric"
KEY_GOAL = f"{TAG}key_goal"

log = logging.getLogger(__name__)

# MLflow's artifact download progress bars would interleave with the run log; a tracking
# server that goes away should fail a run in seconds, not after minutes of retries.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
# MLflow's usage telemetry wraps every client call and sends records from a background thread:
# a benchmark platform neither needs it nor should phone home (set it to false to allow it).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

PARENT_RUN_ENV = "OPTBENCH_PARENT_RUN_ID"
METRICS_FILE = "metrics.csv"


class RunStatus(StrEnum):
    """Outcome of a run. Every status but ``failed``/``killed`` is a result (MLflow FINISHED)."""

    finished = "finished"
    diverged = "diverged"
    timed_out = "timed_out"
    stalled = "stalled"
    pruned = "pruned"
    failed = "failed"
    killed = "killed"
    skipped = "skipped"

    @property
    def mlflow_status(self) -> str:
        return {"failed": "FAILED", "killed": "KILLED"}.get(self.value, "FINISHED")


class RunRecorder:
    """Records one run's metrics. This base keeps them in memory and, at ``finish``, writes them
    to ``local_dir`` (the job's output directory) as ``metrics.csv`` (evaluations) and
    ``progress.csv`` (every step's own metrics): written locally first, then sent to the store.
    """

    run_id: str | None = None

    def __init__(self, stride: int = 1, local_dir: Path | None = None) -> None:
        self.stride = max(1, stride)
        self.local_dir = local_dir
        self._progress: list[dict[str, float]] = []
        self._evaluations: list[dict[str, float]] = []

    def progress(self, step: int, time_s: float, metrics: dict[str, float]) -> None:
        """One algorithm step's own metrics (kept for every step)."""
        self._progress.append({"step": step, "time_s": time_s, **metrics})

    def evaluation(self, step: int, metrics: dict[str, float]) -> None:
        """An evaluation of the problem at ``step`` (always sent in full)."""
        self._evaluations.append({"step": step, **metrics})

    def flush(self) -> None:
        """Send buffered metrics to the store (done by the recorder itself every few seconds)."""

    def write_local(self, directory: Path) -> list[Path]:
        """Write ``progress.csv`` and ``metrics.csv`` (when non-empty) into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for name, rows in ((PROGRESS_ARTIFACT, self._progress), (METRICS_FILE, self._evaluations)):
            if rows:
                write_csv(directory / name, rows)
                written.append(directory / name)
        return written

    def finish(
        self, status: RunStatus, tags: dict[str, str], traceback_text: str | None = None
    ) -> None:
        """Write the local copy, then flush, store the progress series (and traceback), set
        tags and end the run with ``status``."""
        if self.local_dir is not None:
            self.write_local(self.local_dir)


def write_csv(path: Path, rows: list[dict[str, float]]) -> None:
    """``rows`` as pandas' ``DataFrame(rows).to_csv(path, index=False)`` writes them (columns in
    order of first appearance, a missing value or NaN as an empty field), without building a
    frame: a run's local copy is written once per job, and pandas takes 10x longer."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if _missing(row.get(key)) else row[key] for key in columns])


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


class NullTracker:
    """The null tracker (``tracking=none``): nothing is stored, nothing is resumed, no run can
    be read back. ``MlflowTracker`` implements the same methods against MLflow."""

    enabled = False
    uri: str | None = None

    def prepare(self, key_metric: tuple[str, str] | None = None) -> None:
        """Create the store and the experiment (once, before any parallel job starts);
        ``key_metric`` (name, goal) is what the dashboard shows first for the experiment."""

    def start_run(
        self,
        name: str,
        params: dict[str, str],
        tags: dict[str, str],
        config_yaml: str,
        parent_run_id: str | None,
        stride: int,
        local_dir: Path | None = None,
    ) -> RunRecorder:
        """Open a run; its recorder takes the metrics and ends it."""
        return RunRecorder(stride, local_dir)

    def mark_orphans_killed(self, parent_run_id: str | None) -> int:
        """End as KILLED the children of ``parent_run_id`` still RUNNING (their process died)."""
        return 0

    def end_running(
        self, parent_run_id: str, config_hash: str, status: RunStatus, reason: str
    ) -> int:
        """End the RUNNING children of ``parent_run_id`` with config hash ``config_hash``
        (their process died) with ``status`` and ``reason``."""
        return 0

    def open_sweep(self, sweep_hash: str, name: str, tags: dict[str, str]) -> str | None:
        """The parent run of a sweep: reopened if this sweep ran before, else created."""
        return None

    def close_sweep(
        self, run_id: str | None, tags: dict[str, str], failed: bool, killed: bool = False
    ) -> None:
        """End a sweep's parent run (FAILED if any child failed, KILLED if interrupted)."""

    def set_tags(self, run_id: str | None, tags: dict[str, str]) -> None:
        """Add ``tags`` to run ``run_id``."""

    def log_artifacts(self, run_id: str | None, local_dir: Path, artifact_path: str) -> None:
        """Attach the files under ``local_dir`` to run ``run_id``."""

    # -- read primitives (for optbench.platform.results) ----------------------------------------
    def search_runs(self, filter_string: str, max_results: int | None = None) -> list[StoredRun]:
        """Runs of the experiment matching an MLflow filter string, newest first."""
        return []

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        """Every logged (step, value) of metric ``key`` of run ``run_id``."""
        return []

    def read_artifact_csv(self, run_id: str, path: str) -> pd.DataFrame:
        """The CSV artifact ``path`` of run ``run_id``."""
        raise ConfigError("tracking=none: no run can be read back (there is no store)")


def make_tracker(tracking: Any, experiment_name: str) -> NullTracker:
    """The tracker a ``TrackingConfig`` (or its DictConfig) asks for. One ``MlflowTracker`` per
    store and experiment in a process: the jobs of a sweep share its client and experiment id
    (opening a client and finding the experiment again cost more than a trivial run)."""
    backend = getattr(tracking.backend, "value", tracking.backend)
    if backend == "none":
        return NullTracker()
    key = (str(tracking.uri), experiment_name, tracking.artifact_root)
    if key not in _TRACKERS:
        _TRACKERS[key] = MlflowTracker(*key)
    return _TRACKERS[key]


_TRACKERS: dict[tuple[str, str, str | None], MlflowTracker] = {}


def progress_stride(max_steps: int, max_points: int) -> int:
    """Send every ``stride``-th step's progress metrics so each key stays within ``max_points``."""
    return max(1, math.ceil(max_steps / max(1, max_points)))


class MlflowRunRecorder(RunRecorder):
    #: buffered metrics are sent when this many are waiting or this many seconds have passed
    FLUSH_POINTS = 1000
    FLUSH_SECONDS = 5.0

    def __init__(
        self, client: Any, run_id: str, stride: int, local_dir: Path | None, artifacts: Any
    ) -> None:
        super().__init__(stride, local_dir)
        self.client = client
        self.run_id = run_id
        self.artifacts = artifacts  # the run's artifact repository
        self._buffer: list[Any] = []
        self._flushed_at = time.monotonic()

    def _add(self, step: int, metrics: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._buffer.extend(Metric(k, float(v), now, step) for k, v in metrics.items())
        if (
            len(self._buffer) >= self.FLUSH_POINTS
            or time.monotonic() - self._flushed_at >= self.FLUSH_SECONDS
        ):
            self.flush()

    def progress(self, step: int, time_s: float, metrics: dict[str, float]) -> None:
        super().progress(step, time_s, metrics)
        if step % self.stride == 0:
            self._add(step, {f"{PROGRESS}{k}": v for k, v in metrics.items()})

    def evaluation(self, step: int, metrics: dict[str, float]) -> None:
        super().evaluation(step, metrics)
        self._add(step, metrics)

    def flush(self) -> None:
        self._flushed_at = time.monotonic()
        if self._buffer:
            batch, self._buffer = self._buffer, []
            self.client.log_batch(self.run_id, metrics=batch)

    def finish(
        self, status: RunStatus, tags: dict[str, str], traceback_text: str | None = None
    ) -> None:
        from mlflow.entities import RunTag

        super().finish(status, tags, traceback_text)
        all_tags = {f"{TAG}status": status.value, **tags}
        # the last metrics and the tags in one call (MLflow splits batches over its limits)
        batch, self._buffer = self._buffer, []
        self.client.log_batch(
            self.run_id, metrics=batch, tags=[RunTag(k, v) for k, v in all_tags.items()]
        )
        if self._progress and self.local_dir is not None:  # the local copy's file
            self.artifacts.log_artifact(str(self.local_dir / PROGRESS_ARTIFACT))
        elif self._progress or traceback_text:
            with tempfile.TemporaryDirectory() as tmp:
                if self._progress:
                    write_csv(Path(tmp) / PROGRESS_ARTIFACT, self._progress)
                    self.artifacts.log_artifact(str(Path(tmp) / PROGRESS_ARTIFACT))
        if traceback_text:
            self.artifacts.log_artifact(str(_scratch_file("traceback.txt", traceback_text)))
        self.client.set_terminated(self.run_id, status.mlflow_status)


class MlflowTracker(NullTracker):
    """Records into MLflow at ``uri`` (sqlite file, or an http tracking server)."""

    enabled = True

    def __init__(self, uri: str, experiment_name: str, artifact_root: str | None = None) -> None:
        self.uri = uri
        self.experiment_name = experiment_name
        self._artifact_root = artifact_root
        self._client: Any = None
        self._experiment_id: str | None = None

    # -- store -----------------------------------------------------------------------------------
    @property
    def sqlite_path(self) -> Path | None:
        if not self.uri.startswith("sqlite:"):
            return None
        # sqlite:///relative/path.db and sqlite:////absolute/path.db (SQLAlchemy's convention)
        return Path(urlparse(self.uri).path[1:])

    def artifact_location(self) -> str | None:
        if self._artifact_root:
            return self._artifact_root
        db = self.sqlite_path
        return (db.parent / "artifacts").as_uri() if db is not None else None

    @property
    def client(self) -> Any:
        if self._client is None:
            from mlflow import MlflowClient

            for name in ("alembic", "mlflow"):
                logging.getLogger(name).setLevel(logging.WARNING)
            # it logs each database error before raising it; the error reaches the user once,
            # as one line (``_store_fault``, ``prepare``)
            logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)

            db = self.sqlite_path
            if db is not None:
                if not db.is_absolute():
                    raise ConfigError(f"tracking.uri: sqlite path must be absolute, got {self.uri}")
                store.prepare_sqlite(db)
            self._client = MlflowClient(tracking_uri=self.uri)
            if db is not None:
                _write_ahead_log(self._client)
        return self._client

    @property
    def experiment_id(self) -> str:
        if self._experiment_id is None:
            self.prepare()
        assert self._experiment_id is not None
        return self._experiment_id

    def prepare(self, key_metric: tuple[str, str] | None = None) -> None:
        if self.uri.startswith(("http://", "https://")):
            self._check_server()
        tags = {"mlflow.experimentKind": "custom_model_development"}
        if key_metric is not None:
            tags.update({KEY_METRIC: key_metric[0], KEY_GOAL: key_metric[1]})
            tags["mlflow.experiment.primaryMetric.name"] = key_metric[0]
        try:
            experiment = self.client.get_experiment_by_name(self.experiment_name)
            if experiment is None:
                try:
                    self._experiment_id = self.client.create_experiment(
                        self.experiment_name,
                        artifact_location=self.artifact_location(),
                        tags=tags,
                    )
                    return
                except Exception:  # another process created it first: use theirs
                    experiment = self.client.get_experiment_by_name(self.experiment_name)
                    if experiment is None:
                        raise
            if experiment.lifecycle_stage == "deleted":
                self.client.restore_experiment(experiment.experiment_id)
            self._experiment_id = experiment.experiment_id
            for key, value in tags.items():
                if experiment.tags.get(key) != value:
                    self.client.set_experiment_tag(experiment.experiment_id, key, value)
        except OptbenchError:
            raise
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise TrackingError(
                f"tracking.uri={self.uri}: cannot open the store ({first})"
            ) from exc

    def _check_server(self) -> None:
        """Fail fast, naming the URI, when no tracking server answers."""
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(f"{self.uri.rstrip('/')}/health", timeout=5) as answer:
                answer.read()
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TrackingError(
                f"tracking.uri={self.uri}: no MLflow server answers ({reason}); "
                "start one with `make server` or use tracking=sqlite"
            ) from None

    @contextlib.contextmanager
    def _store_fault(self, doing: str) -> Iterator[None]:
        """An MLflow failure (the store became unreadable, read-only, full) as one line."""
        try:
            yield
        except OptbenchError:
            raise
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise TrackingError(f"tracking.uri={self.uri}: {doing} ({first[:300]})") from exc

    # -- read primitives -------------------------------------------------------------------------
    def _search(self, filter_string: str, max_results: int | None = None) -> list[Any]:
        """MLflow runs of the experiment matching ``filter_string``, newest first (all pages)."""
        runs: list[Any] = []
        token = None
        client, experiment_id = self.client, self.experiment_id
        while True:
            size = 5000 if max_results is None else min(5000, max_results - len(runs))
            with self._store_fault("cannot read its runs"):
                page = client.search_runs(
                    [experiment_id],
                    filter_string=filter_string,
                    max_results=size,
                    order_by=["attributes.start_time DESC"],
                    page_token=token,
                )
            runs.extend(page)
            token = page.token
            if not token or (max_results is not None and len(runs) >= max_results):
                return runs

    def search_runs(self, filter_string: str, max_results: int | None = None) -> list[StoredRun]:
        return [
            StoredRun(
                run.info.run_id,
                run.info.status,
                run.info.start_time,
                dict(run.data.params),
                dict(run.data.metrics),
                dict(run.data.tags),
            )
            for run in self._search(filter_string, max_results)
        ]

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        return [(p.step, p.value) for p in self.client.get_metric_history(run_id, key)]

    def read_artifact_csv(self, run_id: str, path: str) -> pd.DataFrame:
        from mlflow.artifacts import download_artifacts

        with tempfile.TemporaryDirectory() as tmp:
            try:
                local = download_artifacts(
                    run_id=run_id, artifact_path=path, dst_path=tmp, tracking_uri=self.uri
                )
            except Exception as exc:
                raise TrackingError(f"run {run_id}: cannot read {path} ({exc})") from exc
            return pd.read_csv(local)

    # -- writes ----------------------------------------------------------------------------------
    def mark_orphans_killed(self, parent_run_id: str | None) -> int:
        if parent_run_id is None:
            return 0
        from mlflow.entities import RunTag

        orphans = self._search(
            f"tags.`mlflow.parentRunId` = '{parent_run_id}' and attributes.status = 'RUNNING'"
        )
        for run in orphans:
            reason = "orphaned: still RUNNING when its sweep was started again"
            tags = [RunTag(f"{TAG}status", RunStatus.killed.value), RunTag(f"{TAG}error", reason)]
            self.client.log_batch(run.info.run_id, tags=tags)
            self.client.set_terminated(run.info.run_id, "KILLED")
        return len(orphans)

    def end_running(
        self, parent_run_id: str, config_hash: str, status: RunStatus, reason: str
    ) -> int:
        from mlflow.entities import RunTag

        runs = self._search(
            f"tags.`mlflow.parentRunId` = '{parent_run_id}' and attributes.status = 'RUNNING'"
            f" and tags.`{TAG}config_hash` = '{config_hash}'"
        )
        for run in runs:
            tags = [RunTag(f"{TAG}status", status.value), RunTag(f"{TAG}error", reason)]
            self.client.log_batch(run.info.run_id, tags=tags)
            self.client.set_terminated(run.info.run_id, status.mlflow_status)
        return len(runs)

    def start_run(
        self,
        name: str,
        params: dict[str, str],
        tags: dict[str, str],
        config_yaml: str,
        parent_run_id: str | None,
        stride: int,
        local_dir: Path | None = None,
    ) -> RunRecorder:
        from mlflow.entities import Param

        all_tags = {ROLE: "run", **tags}
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        client, experiment_id = self.client, self.experiment_id
        with self._store_fault("cannot start a run"):
            run = client.create_run(experiment_id, run_name=name[:250], tags=all_tags)
            run_id = run.info.run_id
            client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()])
            # the run's artifact store from its own record (MLflow's log_text would read it back)
            artifacts = get_artifact_repository(run.info.artifact_uri, tracking_uri=self.uri)
            artifacts.log_artifact(str(_scratch_file("config.yaml", config_yaml)))
        return MlflowRunRecorder(client, run_id, stride, local_dir, artifacts)

    def open_sweep(self, sweep_hash: str, name: str, tags: dict[str, str]) -> str | None:
        runs = self._search(
            f"tags.`{TAG}sweep_hash` = '{sweep_hash}' and tags.`{ROLE}` = 'sweep'", 1
        )
        if runs:
            run_id = runs[0].info.run_id
            self.client.update_run(run_id, status="RUNNING")
            log.info("resuming sweep %s (parent run %s)", name, run_id)
            return run_id
        all_tags = {ROLE: "sweep", f"{TAG}sweep_hash": sweep_hash, **tags}
        return self.client.create_run(
            self.experiment_id, run_name=name[:250], tags=all_tags
        ).info.run_id

    def close_sweep(
        self, run_id: str | None, tags: dict[str, str], failed: bool, killed: bool = False
    ) -> None:
        if run_id is None:
            return
        from mlflow.entities import RunTag

        self.client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
        self.client.set_terminated(
            run_id, "KILLED" if killed else "FAILED" if failed else "FINISHED"
        )

    def set_tags(self, run_id: str | None, tags: dict[str, str]) -> None:
        if run_id is not None and tags:
            from mlflow.entities import RunTag

            self.client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])

    def log_artifacts(self, run_id: str | None, local_dir: Path, artifact_path: str) -> None:
        if run_id is not None:
            self.client.log_artifacts(run_id, str(local_dir), artifact_path)


def _scratch_file(name: str, text: str) -> Path:
    """``text`` in a file named ``name`` in this process's scratch directory (an artifact to
    upload under that name; the next upload of that name overwrites it)."""
    global _SCRATCH
    if _SCRATCH is None:
        _SCRATCH = Path(tempfile.mkdtemp(prefix="optbench-upload-"))
        atexit.register(shutil.rmtree, _SCRATCH, True)
    path = _SCRATCH / name
    path.write_text(text)
    return path


_SCRATCH: Path | None = None


def _write_ahead_log(client: Any) -> None:
    """Every connection of this process to the sqlite store in write-ahead-log mode with
    ``synchronous=NORMAL``: a commit no longer waits for the disk (an fsync per commit made
    tracking the largest part of a short run), readers and writers of parallel jobs do not
    block each other, and the store stays consistent after a crash (a power loss may drop the
    last commits, never corrupt it; each job also keeps its metrics in its output dir)."""
    from sqlalchemy import event

    engine = getattr(getattr(client._tracking_client, "store", None), "engine", None)
    if engine is None or event.contains(engine, "connect", _sqlite_pragmas):
        return
    event.listen(engine, "connect", _sqlite_pragmas)
    engine.dispose()  # connections opened before the listener are closed


def _sqlite_pragmas(connection: Any, record: Any) -> None:
    cursor = connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    except Exception as exc:  # e.g. a read-only file: the defaults are kept
        log.debug("sqlite pragmas not set: %s", exc)
    finally:
        cursor.close()


def environment_tags() -> dict[str, str]:
    """Git commit and dirty flag of the project, and the versions of python/torch/optbench."""
    return dict(_ENVIRONMENT or _collect_environment())


_ENVIRONMENT: dict[str, str] = {}


def _collect_environment() -> dict[str, str]:
    import platform
    import subprocess

    import torch

    import optbench
    from optbench.platform.paths import project_root

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], cwd=project_root(), capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    _ENVIRONMENT.update(
        {
            f"{TAG}git_commit": commit or "unknown",
            f"{TAG}git_dirty": "unknown" if status is None else str(bool(status)).lower(),
            f"{TAG}version.python": platform.python_version(),
            f"{TAG}version.torch": torch.__version__,
            f"{TAG}version.optbench": optbench.__version__,
            f"{TAG}host": platform.node(),
        }
    )
    return _ENVIRONMENT
