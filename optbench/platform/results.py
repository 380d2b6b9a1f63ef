"""Results: the one reader of stored runs, between the tracking store and everything that reads.

It owns the names of the fields a run is stored with (``TAG``-prefixed tags, the ``describe.``
facts of the problem, the ``progress.csv`` artifact) and turns stored runs into what readers
need: a tidy pandas frame of an experiment's runs (reports, claims), a run's full per-step series
(plots, the refined schedule), the FINISHED run of a config (resume), and the series a cross-run
input names (``Algorithm.inputs``). Reports, plots, the regression gate, tuning and the runner
read through here; only the tracking module talks to MLflow.

A store is anything with the tracker's read primitives (``search_runs``, ``metric_history``,
``read_artifact_csv``): ``optbench.platform.tracking.MlflowTracker``, or the null tracker, which
has no runs.
"""

from __future__ import annotations

import copy
import json
import logging
import math
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from optbench.contracts.algorithm import RunInput
from optbench.contracts.errors import ConfigError
from optbench.platform.identity import NOT_IDENTITY, as_params, config_hash, unflatten_set

log = logging.getLogger("optbench")

# -- the names of stored fields ------------------------------------------------------------------
#: prefix of optbench's own tags (status, config hash, seed, versions, ...)
TAG = "optbench."
#: prefix of the problem's ``describe()`` facts, stored as tags
DESCRIBE = "describe."
#: prefix of an algorithm's per-step metrics among the logged metrics
PROGRESS = "progress/"
#: the artifact holding every step's progress metrics (the full series)
PROGRESS_ARTIFACT = "progress.csv"
#: the tag naming what a run is: ``run`` (one job) or ``sweep`` (a sweep's parent)
ROLE = f"{TAG}role"
#: prefix of final metrics in a runs frame
METRIC = "metrics."
SEED = "seed"
#: run columns that are outcomes, not configuration
OUTCOMES = ("steps", "stop_reason")
#: run columns that say where a run's numbers came from (the code's commit, local changes)
PROVENANCE = ("git_commit", "git_dirty")
#: run columns that say which run a row is
META = ("run_id", "mlflow_status", "status", "config_hash", "start_time", *OUTCOMES, *PROVENANCE)


@dataclass
class StoredRun:
    """A run as the store returns it: identity, MLflow status, params, final metrics and tags."""

    run_id: str
    status: str
    start_time: int
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def tag(self, name: str, default: str = "") -> str:
        """optbench's tag ``name`` (without its prefix)."""
        return self.tags.get(f"{TAG}{name}", default)


class RunStore(Protocol):
    """The read primitives of a tracking store."""

    def search_runs(self, filter_string: str, max_results: int | None = None) -> list[StoredRun]:
        """Runs of the experiment matching an MLflow filter, newest first."""
        ...

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        """Every logged (step, value) of metric ``key`` of a run."""
        ...

    def read_artifact_csv(self, run_id: str, path: str) -> pd.DataFrame:
        """A CSV artifact of a run as a frame."""
        ...


def run_filter(**tags: str) -> str:
    """An MLflow filter on optbench tags, e.g. ``run_filter(role="run")``."""
    return " and ".join(f"tags.`{TAG}{k}` = '{v}'" for k, v in tags.items())


FINISHED = "attributes.status = 'FINISHED'"


# -- one run -------------------------------------------------------------------------------------
def finished_run(store: RunStore, identity: str) -> StoredRun | None:
    """The latest FINISHED run with config hash ``identity`` (resume skips its job), if any."""
    found = store.search_runs(f"{run_filter(config_hash=identity, role='run')} and {FINISHED}", 1)
    return found[0] if found else None


def finished_runs(store: RunStore, identities: Collection[str]) -> dict[str, StoredRun]:
    """The latest FINISHED run of each config hash in ``identities`` that has one (one query
    for a whole sweep)."""
    wanted = set(identities)
    if not wanted:
        return {}
    found: dict[str, StoredRun] = {}
    for run in store.search_runs(f"{run_filter(role='run')} and {FINISHED}"):
        identity = run.tag("config_hash")
        if identity in wanted and identity not in found:
            found[identity] = run
    return found


@dataclass
class FinishedIndex:
    """The resume lookup of a whole sweep, done once before its jobs start: of the config
    hashes in ``checked``, those with a FINISHED run (``finished``). A hash that occurs twice in
    one sweep is left out of ``checked``: its second job must see the first one's run."""

    checked: set[str] = field(default_factory=set)
    finished: dict[str, StoredRun] = field(default_factory=dict)

    def covers(self, identity: str) -> bool:
        return identity in self.checked

    def to_json(self) -> str:
        return json.dumps(
            {
                "checked": sorted(self.checked),
                "finished": {k: asdict(v) for k, v in self.finished.items()},
            }
        )

    @classmethod
    def from_json(cls, text: str) -> FinishedIndex:
        data = json.loads(text)
        finished = {k: StoredRun(**v) for k, v in data["finished"].items()}
        return cls(set(data["checked"]), finished)


def finished_index(store: RunStore, identities: Sequence[str]) -> FinishedIndex:
    """The ``FinishedIndex`` of a sweep whose jobs have config hashes ``identities``."""
    counts = Counter(identities)
    once = {identity for identity, n in counts.items() if n == 1}
    return FinishedIndex(once, finished_runs(store, once))


def series(store: RunStore, run_id: str, key: str) -> pd.Series:
    """The full series of ``key`` of a run, indexed by step: a progress metric
    (``progress/<name>``: every step's value, from the run's progress.csv) or an evaluation
    metric (logged in full at every evaluation)."""
    if key.startswith(PROGRESS):
        name = key.removeprefix(PROGRESS)
        frame = store.read_artifact_csv(run_id, PROGRESS_ARTIFACT)
        if name not in frame:
            return pd.Series(dtype=float)  # this run's algorithm does not report it
        values = frame[name].to_numpy(float)
        kept = ~np.isnan(values)  # steps that did not report it
        return pd.Series(values[kept], index=frame["step"].to_numpy(int)[kept])
    points = store.metric_history(run_id, key)
    return pd.Series(dict(points), dtype=float).sort_index()


# -- an experiment's runs as a frame -------------------------------------------------------------
def runs_frame(store: RunStore, *, all_statuses: bool = False) -> pd.DataFrame:
    """One row per run of the experiment (the latest per config hash): config params (dotted
    keys, numbers coerced), ``problem`` and ``algorithm`` (config names), final metrics
    (``metrics.<name>``), the status, ``steps``, ``stop_reason`` and the problem's facts
    (``describe.<name>``). Only runs that ended as a result (MLflow FINISHED), unless
    ``all_statuses``."""
    rows = [_row(run) for run in store.search_runs(run_filter(role="run"))]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    if not all_statuses:
        frame = frame[frame["mlflow_status"] == "FINISHED"]
    frame = frame.sort_values("start_time").drop_duplicates("config_hash", keep="last")
    for column in frame.columns:
        if column.startswith(METRIC) or column == "start_time":
            continue
        numeric = pd.to_numeric(frame[column], errors="coerce")
        if numeric.notna().all():
            frame[column] = numeric
        elif column.startswith(DESCRIBE) and numeric.notna().any():
            unset = frame[column].isna() | frame[column].isin(["None", "", "nan"])
            if (numeric.notna() | unset).all():
                frame[column] = numeric  # facts known for some problems only
    return frame.reset_index(drop=True)


def _row(run: StoredRun) -> dict[str, Any]:
    row: dict[str, Any] = dict(run.params)
    row.update({f"{METRIC}{k}": v for k, v in run.metrics.items()})
    row.update(
        problem=run.tag("problem"),
        algorithm=run.tag("algorithm"),
        run_id=run.run_id,
        mlflow_status=run.status,
        status=run.tag("status"),
        config_hash=run.tag("config_hash", run.run_id),
        start_time=run.start_time,
        steps=run.tags.get(f"{TAG}steps"),
        stop_reason=run.tag("stop_reason"),
        git_commit=run.tag("git_commit"),
        git_dirty=run.tag("git_dirty"),
    )
    row.update({k: v for k, v in run.tags.items() if k.startswith(DESCRIBE)})
    return row


def param_columns(frame: pd.DataFrame) -> list[str]:
    """The config columns of a runs frame (not metrics, facts or run metadata)."""
    return [
        c
        for c in frame.columns
        if not c.startswith(METRIC) and not c.startswith(DESCRIBE) and c not in META
    ]


def metric_names(frame: pd.DataFrame) -> list[str]:
    """The final metrics the runs of a frame logged."""
    return sorted(c[len(METRIC) :] for c in frame.columns if c.startswith(METRIC))


def value_column(frame: pd.DataFrame, name: str, key: str = "report") -> str:
    """The frame column of ``name``: a final metric (``metrics.<name>``) or a run column; an
    error naming the config ``key`` when no run has it."""
    if f"{METRIC}{name}" in frame:
        return f"{METRIC}{name}"
    if name in frame:
        return name
    raise ConfigError(
        f"{key}: no run logged '{name}' (metrics: {', '.join(metric_names(frame))}; run "
        f"columns: {', '.join(OUTCOMES)}, describe.<fact>)"
    )


def best_values(
    store: RunStore, run_ids: Iterable[str], metric: str, goal: str
) -> dict[str, float]:
    """Per run, the best ``metric`` over all its logged evaluations (min or max by ``goal``);
    NaN when any evaluation is not finite (a diverged run has no best)."""
    out = {}
    for run_id in run_ids:
        values = np.array([v for _, v in store.metric_history(run_id, metric)], dtype=float)
        if values.size == 0 or not np.isfinite(values).all():
            out[run_id] = math.nan
        else:
            out[run_id] = float(values.min() if goal == "min" else values.max())
    return out


def latest_sweep(store: RunStore) -> str | None:
    """The id of the experiment's most recently started sweep parent run."""
    found = store.search_runs(run_filter(role="sweep"), 1)
    return found[0].run_id if found else None


# -- cross-run inputs ----------------------------------------------------------------------------
def source_run(store: RunStore, config: Mapping[str, Any], wanted: RunInput) -> StoredRun:
    """The FINISHED run ``wanted`` (an ``Algorithm.inputs`` declaration) reads from, for the run
    with resolved ``config``; a ``ConfigError`` naming the missing run when there is none."""
    other = copy.deepcopy(dict(config))
    for dotted, value in wanted.changes.items():
        unflatten_set(other, dotted, value)
    described = " ".join(f"{k}={v}" for k, v in wanted.changes.items())
    if not wanted.best_over:
        source = finished_run(store, config_hash(other))
    else:
        metric = wanted.metric
        if metric is None:
            raise ConfigError(f"input '{wanted.name}': choosing the best run needs a metric")
        ignore = [*wanted.best_over, *NOT_IDENTITY]
        candidates = [
            run
            for run in _finished_like(store, as_params(other), ignore)
            if math.isfinite(run.metrics.get(metric, math.nan)) and run.tag("status") == "finished"
        ]
        pick = min if wanted.goal == "min" else max
        source = pick(candidates, key=lambda r: r.metrics[metric], default=None)
        described += f" (the best final {metric} over {', '.join(wanted.best_over)})"
    if source is None:
        raise ConfigError(
            f"input '{wanted.name}': no FINISHED run of this config with {described} to read "
            f"'{wanted.series}' from; run that config first"
        )
    return source


def read_input(store: RunStore, config: Mapping[str, Any], wanted: RunInput) -> np.ndarray:
    """The series an input declaration names, read from its source run."""
    source = source_run(store, config, wanted)
    values = series(store, source.run_id, PROGRESS + wanted.series).to_numpy(float)
    if values.size == 0:
        raise ConfigError(
            f"input '{wanted.name}': run {source.run_id} has no progress metric '{wanted.series}'"
        )
    log.info("input '%s': '%s' of run %s", wanted.name, wanted.series, source.run_id)
    return values


def _finished_like(
    store: RunStore, params: Mapping[str, str], ignore: Collection[str]
) -> list[StoredRun]:
    """FINISHED runs whose params equal ``params`` on every key but those in ``ignore`` (a key
    is ignored if it is an entry of ``ignore`` or lies under one: ``a.b`` under ``a``)."""

    def kept(values: Mapping[str, str]) -> dict[str, str]:
        return {
            k: v
            for k, v in values.items()
            if not any(k == i or k.startswith(f"{i}.") for i in ignore)
        }

    wanted = kept(params)
    narrow = "".join(
        f" and params.`{k}` = '{v}'" for k, v in wanted.items() if k == SEED and "'" not in v
    )
    found = store.search_runs(f"{run_filter(role='run')} and {FINISHED}{narrow}")
    return [run for run in found if kept(run.params) == wanted]
