"""optbench's launchers: jobs in this process (the default) or in warm local worker processes.

Both run a job as Hydra's ``run_job`` does (the job's output dir with ``.hydra/config.yaml``,
``hydra.yaml`` and ``overrides.yaml``, its log file, ``hydra.job.env_set``, the callbacks'
``on_job_start``/``on_job_end``, a ``JobReturn``) without the parts that cost more than a short
run: the job config is not copied (its nodes move into the task's config), the Hydra config is
set once, and logging is configured once per launch, only the job's log file being switched per
job (Hydra reconfigures every logger twice per job, which walks all of torch's and MLflow's
loggers), and the saved configs are written by libyaml (``optbench.platform.yaml_text``: the
same text).

``WorkersLauncher`` (``hydra/launcher=parallel``) keeps ``n_jobs`` worker processes for the whole
sweep: each starts an interpreter and imports once, then runs job after job, composing each
job's config itself (once per distinct set of config-group choices). A worker that dies (killed,
out of memory, a crash in native code) is replaced; the job it was running is recorded as
failed, with the reason, in its output dir and on its MLflow run, and the sweep goes on.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import logging
import multiprocessing
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import (
    JobReturn,
    JobRuntime,
    JobStatus,
    configure_log,
    env_override,
    filter_overrides,
    setup_globals,
)
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from optbench.platform.errors import Abort
from optbench.platform.yaml_text import to_yaml

log = logging.getLogger(__name__)


class JobLogging:
    """The job logging of a launch: configured from ``hydra.job_logging`` for the first job;
    for each later job only the root logger's file handler is pointed at the job's log file.
    Between jobs the launcher's own logging (``hydra.hydra_logging``) is back in place."""

    def __init__(self, config: DictConfig) -> None:
        self.config = config
        self.launcher_handlers: list[logging.Handler] | None = None
        self.launcher_level = logging.INFO
        self.job_handlers: list[logging.Handler] | None = None
        self.job_level = logging.INFO
        self.file_key: str | None = None  # the config key of the job's log file name
        self.file_template: logging.FileHandler | None = None
        self.current_file: logging.FileHandler | None = None

    def launcher(self) -> None:
        """The launcher's logging (between jobs)."""
        root = logging.getLogger()
        if self.current_file is not None:
            self.current_file.close()
            self.current_file = None
        if self.launcher_handlers is None:
            configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
            self.launcher_handlers, self.launcher_level = list(root.handlers), root.level
        else:
            root.handlers = list(self.launcher_handlers)
            _set_level(root, self.launcher_level)

    def job(self, config: DictConfig) -> None:
        """The job logging of ``config``'s job (its log file in its output dir)."""
        root = logging.getLogger()
        if self.job_handlers is None:
            configure_log(config.hydra.job_logging, config.hydra.verbose)
            self.job_handlers, self.job_level = list(root.handlers), root.level
            files = [h for h in root.handlers if type(h) is logging.FileHandler]
            handlers = config.hydra.job_logging.get("handlers") or {}
            keys = [k for k, h in handlers.items() if h.get("class") == "logging.FileHandler"]
            if len(files) == 1 and len(keys) == 1:
                self.file_template, self.file_key = files[0], keys[0]
                self.current_file = files[0]
            return
        if self.file_template is None or self.file_key is None:
            configure_log(config.hydra.job_logging, config.hydra.verbose)  # as Hydra does
            return
        template = self.file_template
        path = OmegaConf.select(config, f"hydra.job_logging.handlers.{self.file_key}.filename")
        handler = logging.FileHandler(str(path), mode=template.mode, encoding=template.encoding)
        handler.setFormatter(template.formatter)
        handler.setLevel(template.level)
        root.handlers = [handler if h is template else h for h in self.job_handlers]
        _set_level(root, self.job_level)
        self.current_file = handler


def _set_level(logger: logging.Logger, level: int) -> None:
    """``logger.setLevel(level)`` unless it has that level (setting it clears the cached
    levels of every logger: torch and MLflow have hundreds)."""
    if logger.level != level:
        logger.setLevel(level)


def run_job(
    hydra_context: HydraContext,
    task_function: TaskFunction,
    config: DictConfig,
    logs: JobLogging,
) -> JobReturn:
    """One job, as ``hydra.core.utils.run_job`` runs it (output dir, saved configs, env_set,
    callbacks), on a config that belongs to this job alone."""
    callbacks = hydra_context.callbacks
    previous_hydra = HydraConfig.instance().cfg
    output_dir = os.path.abspath(
        os.path.join(str(config.hydra.sweep.dir), str(config.hydra.sweep.subdir))
    )
    with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
        config.hydra.runtime.output_dir = output_dir
    # Hydra's ``set_config`` copies the node into a config of its own whose parent is ``config``
    # (so that interpolations reach the job's config); ``config`` belongs to this job alone, so
    # it serves as that view itself: ``HydraConfig.get()`` is ``config.hydra``, read-only.
    OmegaConf.set_readonly(config.hydra, True)
    HydraConfig.instance().cfg = config  # type: ignore[assignment]
    try:
        ret = JobReturn()
        overrides = OmegaConf.to_container(config.hydra.overrides.task)
        assert isinstance(overrides, list)
        ret.overrides = overrides
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        ret.working_dir = os.getcwd()  # optbench jobs never chdir (hydra.job.chdir=false)
        logs.job(config)
        task_cfg = task_config(config)
        if config.hydra.output_subdir is not None:
            saved = Path(output_dir) / str(config.hydra.output_subdir)
            saved.mkdir(parents=True, exist_ok=True)
            (saved / "config.yaml").write_text(to_yaml(task_cfg), encoding="utf-8")
            hydra_node = OmegaConf.to_container(config.hydra, enum_to_str=True)
            (saved / "hydra.yaml").write_text(to_yaml({"hydra": hydra_node}), encoding="utf-8")
            (saved / "overrides.yaml").write_text(
                to_yaml(config.hydra.overrides.task), encoding="utf-8"
            )
        ret.cfg = task_cfg
        ret.hydra_cfg = config
        with env_override(dict(config.hydra.job.env_set)):
            callbacks.on_job_start(config=config, task_function=task_function)
            try:
                ret.return_value = task_function(task_cfg)
                ret.status = JobStatus.COMPLETED
            except Exception as exc:
                ret.return_value = exc
                ret.status = JobStatus.FAILED
        ret.task_name = JobRuntime.instance().get("name")
        for handler in logging.getLogger().handlers:
            handler.flush()
        callbacks.on_job_end(config=config, job_return=ret)
        return ret
    finally:
        HydraConfig.instance().cfg = previous_hydra
        logs.launcher()


def task_config(config: DictConfig) -> DictConfig:
    """The task's config: ``config`` without its ``hydra`` node, as Hydra's deep copy minus the
    node. ``config`` belongs to this job alone, so the nodes are moved into the task's config
    rather than copied (OmegaConf's ``no_deepcopy_set_nodes``, as in its ``unsafe_merge``; the
    copy took 1.3 ms of a trivial job's ~37). ``config`` still holds them, for the
    interpolations of its ``hydra`` node (``${experiment_name}``); their own interpolations
    resolve in the task's config, as a copy's would."""
    content = {key: config._get_node(key) for key in config if key != "hydra"}
    task = DictConfig(content, flags={"no_deepcopy_set_nodes": True})
    task._set_flag("no_deepcopy_set_nodes", None)
    OmegaConf.set_struct(task, OmegaConf.is_struct(config))
    return task


def _job_config(
    hydra_context: HydraContext, config: DictConfig, overrides: Sequence[str], idx: int
) -> DictConfig:
    job = hydra_context.config_loader.load_sweep_config(config, list(overrides))
    with open_dict(job):
        job.hydra.job.id = idx
        job.hydra.job.num = idx
    return job


class LocalLauncher(Launcher):
    """Jobs one after another in this process (Hydra's basic launcher, lighter per job)."""

    def __init__(self) -> None:
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Any:
        assert self.config is not None and self.hydra_context is not None
        assert self.task_function is not None
        setup_globals()
        logs = JobLogging(self.config)
        logs.launcher()
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        log.info(f"Launching {len(job_overrides)} jobs locally")
        returns = []
        for offset, overrides in enumerate(job_overrides):
            idx = initial_job_idx + offset
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            job = _job_config(self.hydra_context, self.config, overrides, idx)
            returns.append(run_job(self.hydra_context, self.task_function, job, logs))
        return returns


# -- warm local workers --------------------------------------------------------------------------
class _Worker:
    """A worker process, the launcher's end of its pipe, and the job it runs (an index into
    the launch's jobs) if any. (No dataclass: Hydra's plugin scan executes this module outside
    ``sys.modules``.)"""

    def __init__(self, process: Any, conn: Connection) -> None:
        self.process, self.conn = process, conn
        self.job: int | None = None


def _worker_main(conn: Connection, payload: bytes) -> None:
    """A worker process: set up once, then run the jobs the launcher sends until told to stop."""
    import cloudpickle

    signal.signal(signal.SIGINT, signal.default_int_handler)
    hydra_context, task_function, config, state = cloudpickle.loads(payload)
    setup_globals()
    Singleton.set_state(state)
    from optbench.platform import cli, schema

    gc.set_threshold(*cli.GC_THRESHOLDS)
    schema.register()
    logs = JobLogging(config)
    logs.launcher()
    while True:
        try:
            message = conn.recv()
        except EOFError:  # the launcher is gone
            return
        if message is None:
            return
        idx, overrides = message
        try:
            job = _job_config(hydra_context, config, overrides, idx)
            ret = run_job(hydra_context, task_function, job, logs)
            answer = _portable(ret)
        except KeyboardInterrupt:
            return
        except Abort as abort:  # a user error that stops the sweep, as it would in-process
            answer = ("abort", abort.error)
        except BaseException:
            answer = ("error", traceback.format_exc())
        conn.send(answer)


def _portable(ret: JobReturn) -> tuple[str, Any]:
    """What a worker sends back: the job's status and return value (its repr when the value
    cannot be pickled)."""
    import pickle

    value = ret._return_value  # (the property raises a failed job's exception)
    try:
        pickle.dumps(value)
    except Exception:
        value = repr(value)
    return ("ok", (ret.status, value, ret.overrides, ret.working_dir, ret.task_name))


class WorkersLauncher(LocalLauncher):
    """``n_jobs`` warm local worker processes for the whole sweep; a worker that dies is
    replaced and its job recorded as failed."""

    def __init__(self, n_jobs: int = 2) -> None:
        super().__init__()
        self.n_jobs = n_jobs
        self._workers: list[_Worker] = []
        self._payload: bytes | None = None
        atexit.register(self.shutdown)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Any:
        import cloudpickle

        assert self.config is not None and self.hydra_context is not None
        if self.n_jobs < 1:
            from optbench.platform.errors import ConfigError

            raise ConfigError(f"hydra.launcher.n_jobs: must be >= 1, got {self.n_jobs}")
        setup_globals()
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        log.info(f"Launching {len(job_overrides)} jobs on {self.n_jobs} local workers")
        if self._payload is None:
            self._payload = cloudpickle.dumps(
                (self.hydra_context, self.task_function, self.config, Singleton.get_state())
            )
        while len(self._workers) < min(self.n_jobs, len(job_overrides)):
            self._workers.append(self._start_worker())
        pending = list(range(len(job_overrides)))
        results: dict[int, JobReturn] = {}
        try:
            while len(results) < len(job_overrides):
                for worker in list(self._workers):
                    if worker.job is None and pending:
                        self._send(worker, pending.pop(0), job_overrides, initial_job_idx)
                busy = [w for w in self._workers if w.job is not None]
                ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy])
                for worker in busy:
                    if worker.conn in ready or worker.process.sentinel in ready:
                        self._collect(worker, job_overrides, initial_job_idx, results)
        except BaseException:
            self.shutdown()
            raise
        return [results[i] for i in range(len(job_overrides))]

    def _start_worker(self) -> _Worker:
        # not a daemon: a job may start processes of its own
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(
            target=_worker_main, args=(child, self._payload), name="optbench-worker"
        )
        process.start()
        child.close()
        return _Worker(process, parent)

    def _replace(self, worker: _Worker) -> _Worker:
        """A new worker in the place of ``worker`` (which died)."""
        worker.conn.close()
        fresh = self._start_worker()
        self._workers[self._workers.index(worker)] = fresh
        return fresh

    def _send(
        self, worker: _Worker, job: int, job_overrides: Sequence[Sequence[str]], first: int
    ) -> None:
        overrides = list(job_overrides[job])
        log.info(f"\t#{first + job} : {' '.join(filter_overrides(overrides))}")
        if not worker.process.is_alive():  # it died between jobs
            worker = self._replace(worker)
        worker.job = job
        worker.conn.send((first + job, overrides))

    def _collect(
        self,
        worker: _Worker,
        job_overrides: Sequence[Sequence[str]],
        first: int,
        results: dict[int, JobReturn],
    ) -> None:
        """The answer of a worker that finished its job, or the record of a job whose worker
        died (the worker is then replaced)."""
        assert worker.job is not None
        job, worker.job = worker.job, None
        ret = JobReturn(overrides=list(job_overrides[job]))
        try:
            kind, answer = worker.conn.recv()
        except (EOFError, OSError):
            kind, answer = "died", None
        if kind == "abort":
            raise Abort(answer)
        if kind == "ok":
            ret.status, ret.return_value, ret.overrides, ret.working_dir, ret.task_name = answer
        else:
            if kind == "died":
                worker.process.join(timeout=10)
                code = worker.process.exitcode
                reason = f"its worker process died (exit code {code})"
                if code is not None and code < 0:
                    reason = f"its worker process was killed ({signal.Signals(-code).name})"
                self._replace(worker)
            else:
                reason = f"its worker failed outside the run: {answer.strip().splitlines()[-1]}"
            self._record_lost(job_overrides[job], first + job, reason)
            ret.status, ret.return_value = JobStatus.FAILED, RuntimeError(reason)
        results[job] = ret

    def _record_lost(self, overrides: Sequence[str], idx: int, reason: str) -> None:
        from optbench.platform.sweep import record_lost_job

        assert self.hydra_context is not None and self.config is not None
        try:
            record_lost_job(_job_config(self.hydra_context, self.config, overrides, idx), reason)
        except Exception as exc:
            log.warning("could not record the failure of job #%d: %s", idx, exc)
        print(f"[optbench] failed    job #{idx}: {reason}", file=sys.stderr, flush=True)

    def shutdown(self) -> None:
        """Stop the workers (at the end of a sweep, at exit, or when it is interrupted)."""
        workers, self._workers = self._workers, []
        for worker in workers:
            with contextlib.suppress(OSError):
                worker.conn.send(None)
        for worker in workers:
            worker.process.join(timeout=10)
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join(timeout=5)
