"""Command-line entry points: ``optbench`` (Hydra app) and ``optbench-report``.

Any user error ends as one line on stderr, ``error: ...`` naming the key, file or value, and
exit code 2, never a traceback. A single run that fails exits 1; a sweep exits 1 when any of its
runs failed. ``OPTBENCH_DEBUG=1`` shows the full traceback of a user error.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any, NoReturn

import hydra
import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from optbench.platform import paths, progress, schema, sweep
from optbench.platform.errors import Abort, ConfigError, OptbenchError
from optbench.platform.runner import RunSummary, execute, write_summary
from optbench.platform.tracking import PARENT_RUN_ENV, RunStatus, make_tracker
from optbench.platform.tuning import pruning_hook

log = logging.getLogger("optbench")


def run_job(cfg: DictConfig) -> RunSummary:
    """The Hydra task: one job = one run (or a skip), summarised into the job's output dir."""
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    choices = hc.runtime.choices
    problem_name = str(choices.get("problem") or "problem")
    algorithm_name = str(choices.get("algorithm") or "algorithm")
    name = f"{algorithm_name}@{problem_name}"
    if hc.job.override_dirname:
        name += f" {hc.job.override_dirname}"
    try:
        tracker = make_tracker(cfg.tracking, cfg.experiment_name)
        if not multirun:
            tracker.prepare()
        monitor = None
        if progress.enabled() and not multirun:
            monitor = progress.RunProgress(cfg.budget.max_steps, cfg.budget.target.metric)
        with monitor or contextlib.nullcontext():
            summary = execute(
                cfg,
                tracker,
                name=name,
                problem_name=problem_name,
                algorithm_name=algorithm_name,
                parent_run_id=os.environ.get(PARENT_RUN_ENV) if multirun else None,
                reraise=not multirun,
                local_dir=Path(hc.runtime.output_dir),
                on_evaluation=pruning_hook(cfg.tuning),
                monitor=monitor,
            )
    except OptbenchError as exc:
        # A BaseException passes through Hydra's job wrapper, which would print its own line.
        raise Abort(exc) from None
    write_summary(summary, Path(hc.runtime.output_dir))
    log.info(summary.line())
    return summary


def _print_run(summary: RunSummary, uri: str | None) -> None:
    print(f"status: {summary.status.value} ({summary.stop_reason or summary.error})")
    if summary.status is not RunStatus.skipped:
        print(f"steps: {summary.steps}, algorithm time: {summary.time_s:.3f} s")
        for key, value in summary.metrics.items():
            if not key.startswith("oracle/"):
                print(f"  {key:24s} {value:.6g}")
    if summary.run_id:
        print(f"mlflow run: {summary.run_id} in {uri}  (make ui to browse)")


def _one_line(exc: BaseException) -> str:
    """A Hydra/OmegaConf error as one line naming the override, key or option at fault."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    parts: list[str] = []
    current: BaseException | None = exc
    while isinstance(current, HydraException | OmegaConfBaseException):
        lines = [ln.strip() for ln in str(current).splitlines() if ln.strip()]
        if lines and "$VALUE" not in lines[0]:
            head = lines[0].rstrip(".")
            key = next(
                (ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("full_key:")), ""
            )
            if key and key not in head:
                head = f"{key}: {head}"
            if "Available options" in str(current):
                listed = (
                    str(current).split("Available options", 1)[1].split("Config search path")[0]
                )
                options = [ln.strip() for ln in listed.splitlines()[1:] if ln.strip()]
                head += f" (available: {', '.join(options)})"
            parts.append(head)
        current = current.__cause__ or current.__context__
    return re.sub(r"\s+", " ", ": ".join(parts) or str(exc))


def _raised_in_hydra(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_globals.get("__name__", "").startswith("hydra.")


def _fail(message: str, code: int = 2) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def _guard(entry: Any) -> Any:
    """Run ``entry()`` turning user errors into one line and exit code 2."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    os.environ["HYDRA_FULL_ERROR"] = "1"  # let errors reach us instead of Hydra's printer
    debug = os.environ.get("OPTBENCH_DEBUG") == "1"
    try:
        return entry()
    except Abort as abort:
        if isinstance(abort.error, OptbenchError) and not debug:
            _fail(str(abort.error), abort.error.exit_code)
        raise abort.error from None
    except OptbenchError as exc:
        if debug:
            raise
        _fail(str(exc), exc.exit_code)
    except (HydraException, OmegaConfBaseException) as exc:
        if debug:
            raise
        _fail(_one_line(exc))
    except yaml.YAMLError as exc:  # a malformed config file
        if debug:
            raise
        mark = getattr(exc, "problem_mark", None)
        where = f"{mark.name}:{mark.line + 1}: " if mark is not None else ""
        _fail(f"{where}malformed YAML: {getattr(exc, 'problem', None) or exc}")
    except ValueError as exc:  # Hydra's own command-line checks (e.g. -m with --cfg)
        if debug or not _raised_in_hydra(exc):
            raise
        _fail(" ".join(str(exc).split()))
    except sweep.SweepFailed:
        sys.exit(1)  # the sweep printed which runs failed
    except KeyboardInterrupt:
        _fail("interrupted: the current run is recorded as KILLED with what it had logged", 130)


def main() -> None:
    """``optbench [overrides]`` / ``optbench -m [sweep overrides]``; ``optbench init [DIR]``
    (a new project, ``optbench.platform.scaffold``); ``optbench --version``."""
    args = sys.argv[1:]
    if "--version" in args:
        import optbench

        print(f"optbench {optbench.__version__}")
        return
    if args[:1] == ["init"]:
        from optbench.platform import scaffold

        _guard(lambda: scaffold.main(args[1:]))
        return
    schema.register()
    single: list[tuple[RunSummary, str | None]] = []  # a single run's outcome and store

    @hydra.main(config_path=str(paths.config_dir()), config_name="config", version_base="1.3")
    def app(cfg: DictConfig) -> RunSummary:
        summary = run_job(cfg)
        if HydraConfig.get().mode == RunMode.RUN:
            single.append((summary, make_tracker(cfg.tracking, cfg.experiment_name).uri))
        return summary

    _guard(app)  # a sweep ends here (exit 1 when it raised SweepFailed)
    if single:
        summary, uri = single[0]
        _print_run(summary, uri)
        sys.exit(1 if summary.status is RunStatus.failed else 0)


def report_main(argv: list[str] | None = None) -> None:
    """``optbench-report experiment=NAME [overrides]``: tables and plots of an experiment."""
    args = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in args):
        print("usage: optbench-report experiment=NAME [tracking.uri=URI] [report.metric=...]")
        return
    schema.register()

    def entry() -> None:
        from hydra import compose, initialize_config_dir

        from optbench.platform.report import write_report

        bad = [a for a in args if "=" not in a]
        if bad:
            raise ConfigError(f"expected key=value overrides, got '{bad[0]}'")
        with initialize_config_dir(str(paths.config_dir()), version_base="1.3"):
            cfg = compose("config", overrides=args)
        if cfg.get("report") is None:
            raise ConfigError(
                f"experiment '{cfg.experiment_name}' has no report: block; "
                "pick one with experiment=NAME"
            )
        tracker = make_tracker(cfg.tracking, cfg.experiment_name)
        if not tracker.enabled:
            raise ConfigError("tracking=none: a report reads runs back from a tracking store")
        result = write_report(cfg.report, tracker, cfg.experiment_name)
        print(result.describe())

    _guard(entry)
