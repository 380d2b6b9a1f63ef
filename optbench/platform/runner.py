"""The runner: drives one run from a composed config to a logged, summarised result.

1. resolve the config and its hash; skip the job if a FINISHED run with that hash exists
   (unless ``force``);
2. before anything is tracked: resolve the device, seed Python/NumPy/torch, build problem and
   algorithm (keys and types validated), refuse an incompatible pair or a budget the problem
   cannot serve, read the cross-run inputs the algorithm declares (``Algorithm.inputs``) from the
   store, ``problem.setup(ctx)`` and ``algorithm.warm_up(problem)`` (one-off work of the process,
   kept out of the clock); a user error here creates no run;
3. open the tracked run (params, tags, resolved config artifact);
4. iterate the algorithm under the budget; the first ``Progress`` is the starting point (step 0);
   every ``eval_every`` steps and at the end call ``problem.evaluate`` outside the algorithm clock;
5. stop on ``max_steps``, target, the algorithm's convergence, NaN/inf in a metric (``diverged``),
   the time limit (``timed_out``), ``budget.stall_steps`` steps that changed neither the iterate
   nor the progress metrics (``stalled``, ``optbench.platform.stagnation``) or an exception
   (``failed``, traceback kept); a generator that returns a value (``return "why"``) ends the run
   as finished with stop reason ``algorithm stopped: why``;
6. end the tracked run with its status and return a ``RunSummary``.
"""

from __future__ import annotations

import json
import logging
import math
import signal
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from omegaconf import DictConfig, OmegaConf

from optbench.contracts.algorithm import Algorithm
from optbench.contracts.context import RunContext
from optbench.contracts.problem import Problem
from optbench.platform import paths, results
from optbench.platform.build import build, check_compatible
from optbench.platform.cache import DiskCache
from optbench.platform.devices import (
    configure_torch,
    resolve_device,
    resolve_dtype,
    seed_everything,
)
from optbench.platform.errors import OptbenchError
from optbench.platform.identity import as_params, config_hash, resolved
from optbench.platform.results import DESCRIBE, TAG
from optbench.platform.schema import check_run_keys
from optbench.platform.stagnation import StagnationWatch
from optbench.platform.tracking import (
    NullTracker,
    RunRecorder,
    RunStatus,
    environment_tags,
    progress_stride,
)
from optbench.platform.yaml_text import to_yaml

log = logging.getLogger("optbench")

#: ``on_evaluation(step, metrics) -> stop?`` called after every evaluation of a run.
EvaluationHook = Callable[[int, Mapping[str, float]], bool]


class Monitor(Protocol):
    """Watches a run from outside the algorithm's clock (e.g. a progress bar)."""

    def step(self, steps: int, clock: float) -> None: ...

    def evaluation(self, steps: int, metrics: Mapping[str, float]) -> None: ...


@dataclass
class RunSummary:
    """The outcome of one job, as the sweep summary and the CLI show it."""

    name: str
    status: RunStatus
    config_hash: str
    run_id: str | None = None
    stop_reason: str = ""
    steps: int = 0
    time_s: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str)

    @classmethod
    def from_json(cls, text: str) -> RunSummary:
        data = json.loads(text)
        data["status"] = RunStatus(data["status"])
        return cls(**data)

    def line(self) -> str:
        """One line for logs: status, name, steps, time and the headline metrics."""
        shown = ", ".join(f"{k}={v:.4g}" for k, v in list(self.metrics.items())[:4])
        text = f"{self.status.value:9s} {self.name}"
        if self.status is not RunStatus.skipped:
            text += f"  steps={self.steps} time={self.time_s:.2f}s {shown}"
        if self.error:
            text += f"  error: {self.error}"
        return text


@dataclass
class _Outcome:
    status: RunStatus
    stop_reason: str
    steps: int
    time_s: float
    metrics: dict[str, float]


@dataclass
class _Prepared:
    """A run ready to iterate: its problem (set up), algorithm and context."""

    problem: Problem
    algorithm: Algorithm
    ctx: RunContext
    setup_time_s: float


def _finite(metrics: Mapping[str, float]) -> bool:
    return all(math.isfinite(v) for v in metrics.values())


def execute(
    cfg: DictConfig,
    tracker: NullTracker,
    *,
    name: str,
    problem_name: str,
    algorithm_name: str,
    parent_run_id: str | None = None,
    reraise: bool = False,
    local_dir: Path | None = None,
    on_evaluation: EvaluationHook | None = None,
    monitor: Monitor | None = None,
    finished: results.FinishedIndex | None = None,
) -> RunSummary:
    """Run (or skip) the job described by the composed config ``cfg``.

    A user error found before the run starts (a bad value, an incompatible pair, a missing data
    file or input run) creates no tracked run: it is re-raised with ``reraise`` (single runs, so
    the CLI prints it), else summarised as failed. A failure inside the run is recorded on the
    run and summarised. ``local_dir`` receives a copy of the run's metrics before they are sent
    to the store. ``on_evaluation(step, metrics)`` is called after every evaluation; returning
    True stops the run as ``pruned`` (Optuna's pruners use it). ``monitor`` sees every step and
    evaluation. ``finished``: the sweep's resume lookup, done once for all its jobs; a config
    hash it does not cover is looked up in the store.
    """
    config = resolved(cfg)
    identity = config_hash(config)
    summary = RunSummary(name=name, status=RunStatus.skipped, config_hash=identity)
    if not cfg.force:
        if finished is not None and finished.covers(identity):
            previous = finished.finished.get(identity)
        else:
            previous = results.finished_run(tracker, identity)
        if previous is not None:
            log.info("skip %s: FINISHED run %s has config hash %s", name, previous.run_id, identity)
            summary.run_id = previous.run_id
            summary.stop_reason = f"already finished as {previous.tag('status', '?')}"
            summary.metrics = {
                k: v for k, v in previous.metrics.items() if not k.startswith(results.PROGRESS)
            }
            summary.steps = int(previous.tag("steps", "0"))
            return summary

    tags = {
        f"{TAG}config_hash": identity,
        f"{TAG}seed": str(cfg.seed),
        f"{TAG}device": str(config["device"]["type"]),
        f"{TAG}problem": problem_name,
        f"{TAG}algorithm": algorithm_name,
        **environment_tags(),
    }
    stride = progress_stride(cfg.budget.max_steps, cfg.tracking.max_points_per_metric)

    def open_run() -> RunRecorder:
        recorder = tracker.start_run(
            name,
            as_params(config),
            tags,
            to_yaml(config),
            parent_run_id,
            stride,
            local_dir,
        )
        summary.run_id = recorder.run_id
        return recorder

    try:
        prepared = _prepare(cfg, config, tracker, problem_name, algorithm_name)
    except OptbenchError as exc:
        summary.status, summary.error = RunStatus.failed, str(exc)
        if reraise:
            raise
        return summary
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # a bug in a problem's set-up: recorded on a run of its own
        _finish_failed(
            open_run(),
            summary,
            RunStatus.failed,
            f"{type(exc).__name__}: {exc}",
            traceback.format_exc(),
        )
        return summary

    recorder = open_run()
    try:
        outcome = _drive(cfg, prepared, recorder, on_evaluation, monitor)
    except KeyboardInterrupt:
        _finish_failed(recorder, summary, RunStatus.killed, "interrupted (Ctrl-C)")
        raise
    except OptbenchError as exc:
        _finish_failed(recorder, summary, RunStatus.failed, str(exc))
        if reraise:
            raise
        return summary
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"
        _finish_failed(recorder, summary, RunStatus.failed, message, traceback.format_exc())
        return summary

    summary.status = outcome.status
    summary.stop_reason = outcome.stop_reason
    summary.steps, summary.time_s, summary.metrics = outcome.steps, outcome.time_s, outcome.metrics
    end_tags = {
        f"{TAG}stop_reason": outcome.stop_reason,
        f"{TAG}steps": str(outcome.steps),
        **{f"{DESCRIBE}{k}": str(v)[:5000] for k, v in prepared.problem.describe().items()},
    }
    recorder.finish(outcome.status, end_tags)
    return summary


def _prepare(
    cfg: DictConfig,
    config: dict[str, Any],
    tracker: NullTracker,
    problem_name: str,
    algorithm_name: str,
) -> _Prepared:
    """Everything before the run's first step; raises ``OptbenchError`` for a user error."""
    budget = cfg.budget
    check_run_keys(cfg)
    device = resolve_device(cfg.device.type.value)
    dtype = resolve_dtype(cfg.device.dtype, device)
    configure_torch(cfg.device.threads, cfg.device.deterministic)
    seed_everything(cfg.seed)
    problem = build(cfg.problem, Problem, "problem")
    algorithm = build(cfg.algorithm, Algorithm, "algorithm")
    check_compatible(problem, algorithm, problem_name, algorithm_name)
    problem.check_budget(int(budget.max_steps))
    inputs = {
        wanted.name: results.read_input(tracker, config, wanted) for wanted in algorithm.inputs()
    }
    ctx = RunContext.create(
        int(cfg.seed),
        device=device,
        dtype=dtype,
        max_steps=int(budget.max_steps),
        cache=DiskCache(paths.cache_dir()),
        data_dir=paths.DATA_DIR,
        inputs=inputs,
    )
    started = time.perf_counter()
    problem.setup(ctx)
    setup_time = time.perf_counter() - started
    algorithm.warm_up(problem)
    return _Prepared(problem, algorithm, ctx, setup_time)


def _finish_failed(
    recorder: RunRecorder,
    summary: RunSummary,
    status: RunStatus,
    message: str,
    traceback_text: str | None = None,
) -> None:
    """End a run that did not complete; if even that fails (the store is gone), say where the
    local copy of its metrics is."""
    summary.status, summary.error = status, " ".join(message.split())[:500]
    try:
        recorder.finish(status, {f"{TAG}error": message[:5000]}, traceback_text)
    except Exception as exc:
        where = f"; local copy in {recorder.local_dir}" if recorder.local_dir else ""
        summary.error += f" (and the tracking store failed: {type(exc).__name__}: {exc}{where})"


class _StepTimeout(BaseException):
    """Raised by the watchdog inside a step that overran the time limit (a BaseException, so
    an algorithm's broad ``except Exception`` cannot swallow it)."""


class _Watchdog:
    """Cuts a step that overruns the time limit with SIGALRM. The handler is installed once per
    run (``with``); each step only arms and disarms the timer. Main thread only: elsewhere, or
    without a limit, it does nothing and the limit is only checked between steps."""

    def __init__(self, limit: float | None) -> None:
        self.active = (
            limit is not None
            and hasattr(signal, "setitimer")
            and threading.current_thread() is threading.main_thread()
        )

    def __enter__(self) -> _Watchdog:
        if self.active:
            self.previous = signal.signal(signal.SIGALRM, self._alarm)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.active:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)

    @staticmethod
    def _alarm(signum: int, frame: Any) -> None:
        raise _StepTimeout

    def arm(self, seconds: float | None) -> None:
        if self.active and seconds is not None:
            signal.setitimer(signal.ITIMER_REAL, max(seconds, 1e-3))

    def disarm(self) -> None:
        if self.active:
            signal.setitimer(signal.ITIMER_REAL, 0)


def _drive(
    cfg: DictConfig,
    prepared: _Prepared,
    recorder: RunRecorder,
    on_evaluation: EvaluationHook | None,
    monitor: Monitor | None,
) -> _Outcome:
    budget = OmegaConf.to_object(cfg.budget)  # plain values: DictConfig access is slow in loops
    eval_every = int(cfg.eval_every)
    problem, algorithm, ctx = prepared.problem, prepared.algorithm, prepared.ctx
    setup_time = prepared.setup_time_s

    target = budget.target if budget.target.metric is not None else None
    clock = 0.0
    steps = 0
    last_eval_step = -1
    last: dict[str, float] = {}
    solution: Any = None

    def evaluate(step: int, extra: Mapping[str, float] = {}) -> dict[str, float]:
        nonlocal last_eval_step, last
        metrics = {k: float(v) for k, v in problem.evaluate(solution).items()}
        metrics.update({f"oracle/{k}": float(v) for k, v in problem.counters.items()})
        metrics["time_s"] = clock
        recorder.evaluation(step, {**metrics, **extra})
        if monitor is not None:
            monitor.evaluation(step, metrics)
        last_eval_step, last = step, metrics
        return metrics

    def pruned(step: int, metrics: Mapping[str, float]) -> bool:
        return on_evaluation is not None and bool(on_evaluation(step, metrics))

    def reached(metrics: Mapping[str, float]) -> bool:
        if target is None or target.metric not in metrics or target.value is None:
            return False
        value = metrics[target.metric]
        return value <= target.value if target.goal.value == "min" else value >= target.value

    on_cuda = ctx.device.type == "cuda"
    stagnation = StagnationWatch(None if problem.stream else budget.stall_steps)
    limit = budget.time_limit_s
    grace = 0.0 if limit is None else max(0.5, 0.05 * limit)  # before a hung step is cut
    generator = algorithm.run(problem, ctx)
    status, reason = RunStatus.finished, "max_steps"
    ctx.synchronize()
    tick = time.perf_counter()
    try:
        first = next(generator)
    except StopIteration:
        raise RuntimeError("the algorithm yielded no starting point") from None
    ctx.synchronize()
    clock += time.perf_counter() - tick
    solution = first.solution
    metrics = evaluate(0, {"setup_time_s": setup_time})
    if not _finite(metrics):
        status, reason = RunStatus.diverged, "non-finite metric at the starting point"
    elif reached(metrics):
        reason = "target"
    else:
        with _Watchdog(limit) as watchdog:
            while True:
                if steps >= budget.max_steps:
                    break
                if budget.time_limit_s is not None and clock >= budget.time_limit_s:
                    status, reason = RunStatus.timed_out, "time_limit"
                    break
                watchdog.arm(None if limit is None else limit - clock + grace)
                tick = time.perf_counter()
                try:
                    progress = next(generator)
                except StopIteration as stop:
                    # a generator may return its reason for stopping (e.g. "singular Jacobian")
                    reason = (
                        f"algorithm stopped: {stop.value}" if stop.value else "algorithm stopped"
                    )
                    break
                except _StepTimeout:
                    clock += time.perf_counter() - tick
                    status, reason = (
                        RunStatus.timed_out,
                        "time_limit (a step overran it and was cut)",
                    )
                    break
                finally:
                    watchdog.disarm()
                if on_cuda:
                    ctx.synchronize()
                clock += time.perf_counter() - tick
                steps += 1
                solution = progress.solution
                recorder.progress(steps, clock, progress.metrics)
                if monitor is not None:
                    monitor.step(steps, clock)
                if not _finite(progress.metrics):
                    status, reason = RunStatus.diverged, "non-finite progress metric"
                    break
                if progress.converged:
                    reason = "converged"
                    break
                if stagnation.observe(solution, progress.metrics):
                    status = RunStatus.stalled
                    reason = f"unchanged iterate and progress metrics ({stagnation.repeated} steps)"
                    break
                if steps % eval_every == 0:
                    metrics = evaluate(steps)
                    if not _finite(metrics):
                        status, reason = RunStatus.diverged, "non-finite evaluation metric"
                        break
                    if reached(metrics):
                        reason = "target"
                        break
                    if pruned(steps, metrics):
                        status, reason = RunStatus.pruned, "pruned"
                        break
    generator.close()
    if last_eval_step != steps:
        try:
            metrics = evaluate(steps)
        except Exception:
            if status is not RunStatus.diverged:
                raise
        if status is RunStatus.finished and not _finite(last):
            status, reason = RunStatus.diverged, "non-finite evaluation metric"
    return _Outcome(status, reason, steps, clock, last)


def write_summary(summary: RunSummary, directory: Path) -> None:
    """Leave the job's summary in its output dir, where the sweep's end callback reads it."""
    (directory / SUMMARY_FILE).write_text(summary.to_json())


SUMMARY_FILE = "optbench_summary.json"
