"""Command-line entry points: ``optbench`` (Hydra app) and ``optbench-report``.

Any user error ends as one line on stderr, ``error: ...`` naming the key, file or value, and
exit code 2, never a traceback. A single run that fails exits 1; a sweep exits 1 when any of its
runs failed. ``OPTBENCH_DEBUG=1`` shows the full traceback of a user error.

Help, ``--cfg`` and config errors import neither torch, MLflow nor pandas: the runner, the
tracking store and the sweep machinery are imported when a job runs.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from optbench.platform import paths
from optbench.platform.errors import Abort, ConfigError, OptbenchError

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from optbench.platform.runner import RunSummary

log = logging.getLogger("optbench")


def run_job(cfg: DictConfig) -> RunSummary:
    """The Hydra task: one job = one run (or a skip), summarised into the job's output dir."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from optbench.platform import dashboard, progress, schema, sweep
    from optbench.platform.runner import execute, write_summary
    from optbench.platform.tracking import PARENT_RUN_ENV, make_tracker
    from optbench.platform.tuning import pruning_hook

    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    choices = hc.runtime.choices
    problem_name = str(choices.get("problem") or "problem")
    algorithm_name = str(choices.get("algorithm") or "algorithm")
    exclude = list(hc.job.config.override_dirname.exclude_keys)
    swept = os.environ.get(dashboard.SWEPT_KEYS_ENV) if multirun else None
    only = None if swept is None else {"seed", *filter(None, swept.split(","))}
    name = dashboard.run_name(algorithm_name, problem_name, list(hc.overrides.task), exclude, only)
    try:
        if not multirun:  # a bad number is refused before the store is opened
            schema.check_run_keys(cfg)
        tracker = make_tracker(cfg.tracking, cfg.experiment_name)
        if not multirun:
            tracker.prepare(dashboard.key_metric(cfg))
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
                finished=sweep.read_finished_index(Path(hc.sweep.dir)) if multirun else None,
            )
    except OptbenchError as exc:
        # A BaseException passes through Hydra's job wrapper, which would print its own line.
        raise Abort(exc) from None
    write_summary(summary, Path(hc.runtime.output_dir))
    log.info(summary.line())
    return summary


def _print_run(summary: RunSummary, uri: str | None) -> None:
    from optbench.platform import dashboard
    from optbench.platform.tracking import RunStatus

    print(f"status: {summary.status.value} ({summary.stop_reason or summary.error})")
    if summary.status is not RunStatus.skipped:
        print(f"steps: {summary.steps}, algorithm time: {summary.time_s:.3f} s")
        for key, value in summary.metrics.items():
            if not key.startswith("oracle/"):
                print(f"  {key:24s} {value:.6g}")
    if summary.run_id:
        print(f"mlflow run: {summary.run_id} in {uri}  ({dashboard.ui_command(uri)} to browse)")


def _lexer_error(exc: BaseException) -> str | None:
    """Hydra's override lexer error (``LexerNoViableAltException: key=valué``) as advice."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if not first.startswith("LexerNoViableAltException: "):
        return None
    override = first.split(": ", 1)[1]
    key, _, value = override.partition("=")
    if not key.isascii():
        return f"override '{override}': a key must be ASCII"
    quoted = f"{key}='{value}'"
    if not value.isascii():
        return (
            f"override '{override}': a value with non-ASCII characters must be quoted: "
            f'{quoted} (in a shell: "{quoted}")'
        )
    return f"override '{override}': not valid override syntax; quote the value: \"{quoted}\""


def _one_line(exc: BaseException) -> str:
    """A Hydra/OmegaConf error as one line naming the override, key or option at fault."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    lexer = _lexer_error(exc)
    if lexer is not None:
        return lexer

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
    import yaml
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
    except KeyboardInterrupt:
        _fail("interrupted: the current run is recorded as KILLED with what it had logged", 130)
    except BaseException as exc:
        sweep = sys.modules.get("optbench.platform.sweep")  # imported when a sweep ran
        if sweep is not None and isinstance(exc, sweep.SweepFailed):
            sys.exit(1)  # the sweep printed which runs failed
        raise


USAGE = """\
usage: optbench [KEY=VALUE ...]              one run
       optbench -m [KEY=V1,V2 ...]           a sweep: every combination is one run
       optbench --cfg job [KEY=VALUE ...]    print the composed config, run nothing
       optbench --hydra-help                 Hydra's own command-line flags

A problem, an algorithm and a device composed from config groups; any key is an override away:
  optbench problem=logreg problem.dataset=a9a algorithm=sgd algorithm.schedule=cosine seed=3
  optbench -m experiment=logreg_schedules   (a paper's sweep; its report at the end)
"""


def help_text(config_dir: Path) -> str:
    """The ``--help`` text: usage, every config group with its options (read from the config
    directory, which is what Hydra would list) and the run-level keys with their defaults."""
    import yaml

    lines = [USAGE, "config groups (GROUP=OPTION):"]
    for group in sorted(p for p in config_dir.rglob("*") if p.is_dir()):
        options = sorted(f.stem for f in group.glob("*.yaml"))
        if options and group.name != "job_logging":
            name = group.relative_to(config_dir).as_posix()
            lines.append(f"  {name}: {', '.join(options)}")
    root = yaml.safe_load((config_dir / "config.yaml").read_text()) or {}
    keys = {k: v for k, v in _flat(root).items() if not k.startswith(("defaults", "hydra"))}
    lines.append("\nrun-level keys (defaults):")
    lines.extend(f"  {k}={'null' if v is None else v}" for k, v in keys.items())
    return "\n".join(lines)


def _flat(node: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        if isinstance(value, dict) and value:
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


#: options with which Hydra only prints something (nothing is written under runs/)
INFO_OPTIONS = ("-h", "--help", "--hydra-help", "-c", "--cfg", "-i", "--info", "-sc")

#: the cyclic collector's thresholds in a process that runs jobs. Its heap holds the ~650k
#: long-lived objects of torch, MLflow and SQLAlchemy; with Python's defaults (700, 10, 10) the
#: short-lived objects of each job (configs, ORM rows) were promoted fast enough to start full
#: collections that walked that heap again: 0.4 s each, 1.05 s of collection in 200 trivial
#: jobs of an in-process sweep here, 0.2 s with these (timed with ``gc.callbacks``); the
#: per-job overhead of ``benchmarks.launchers --only per_job``, back to back: 52.5 and 60.7 ms
#: with the defaults, 45.9 and 50.7 ms with these.
GC_THRESHOLDS = (5000, 20, 10)


def _check_runs_dir() -> None:
    """The runs directory (Hydra's output dirs, the default store) must be writable: one line
    naming it, not Hydra's traceback from deep inside."""
    runs = paths.runs_dir()
    hint = "set OPTBENCH_RUNS_DIR to a writable directory"
    try:
        runs.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _fail(f"{runs}: cannot create the runs directory ({exc.strerror}); {hint}")
    if not os.access(runs, os.W_OK | os.X_OK):
        _fail(f"{runs}: the runs directory is not writable; {hint}")


def main() -> None:
    """``optbench [overrides]`` / ``optbench -m [sweep overrides]``; ``optbench init [DIR]``
    (a new project, ``optbench.platform.scaffold``); ``optbench ui ...`` (the dashboard);
    ``optbench --version``."""
    args = sys.argv[1:]
    if args[:1] == ["ui"]:
        ui_main(args[1:])
        return
    if "--version" in args:
        import optbench

        print(f"optbench {optbench.__version__}")
        return
    if args[:1] == ["init"]:
        from optbench.platform import scaffold

        _guard(lambda: scaffold.main(args[1:]))
        return
    if any(a in ("-h", "--help") for a in args):
        print(help_text(paths.config_dir()))  # Hydra's help composes every group: seconds
        return
    if not any(a.split("=")[0] in INFO_OPTIONS for a in args):
        _check_runs_dir()
        gc.set_threshold(*GC_THRESHOLDS)
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from optbench.platform import schema

    schema.register()
    single: list[tuple[RunSummary, str | None]] = []  # a single run's outcome and store

    @hydra.main(config_path=str(paths.config_dir()), config_name="config", version_base="1.3")
    def app(cfg: DictConfig) -> RunSummary:
        from optbench.platform.tracking import make_tracker

        summary = run_job(cfg)
        if HydraConfig.get().mode == RunMode.RUN:
            single.append((summary, make_tracker(cfg.tracking, cfg.experiment_name).uri))
        return summary

    _guard(app)  # a sweep ends here (exit 1 when it raised SweepFailed)
    if single:
        summary, uri = single[0]
        _print_run(summary, uri)
        sys.exit(1 if summary.status.value == "failed" else 0)


REPORT_USAGE = """usage: optbench-report [--record] experiment=NAME [overrides]

The tables, claims and plots of an experiment's logged runs. Takes the sweep's own overrides
(a swept key such as seed=0,1,2 or problem.dataset=a,b restricts the report to those values)
and report.* overrides (report.metric=..., +report.also=[...]). An experiment without a report:
block gets the default report (rows: swept problem keys, columns: swept algorithm keys, metric:
the problem's headline). --record also writes docs/reproductions/NAME.md from the preset's
reproduction: block and updates the README's index of reproductions."""


def report_main(argv: list[str] | None = None) -> None:
    """``optbench-report [--record] experiment=NAME [overrides]``."""
    args = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in args):
        print(REPORT_USAGE)
        return
    record = "--record" in args
    args = [a for a in args if a != "--record"]
    from optbench.platform import schema

    schema.register()

    def entry() -> None:
        from hydra import compose, initialize_config_dir
        from hydra.core.override_parser.overrides_parser import OverridesParser

        from optbench.platform import sweep
        from optbench.platform.report import write_report
        from optbench.platform.reproduction import update_readme, write_record
        from optbench.platform.tracking import make_tracker

        bad = [a for a in args if "=" not in a]
        if bad:
            raise ConfigError(f"expected key=value overrides, got '{bad[0]}'")
        parsed = OverridesParser.create().parse_overrides(args)
        is_report = [o.key_or_group.split(".")[0] == "report" for o in parsed]
        report_changes = {
            o.key_or_group.removeprefix("report").lstrip("."): o.value()
            for o, r in zip(parsed, is_report, strict=True)
            if r
        }
        others = [o for o, r in zip(parsed, is_report, strict=True) if not r]
        fixed = []  # a sweep override composes with its first value
        for o in others:
            if not o.is_sweep_override():
                fixed.append(o.input_line)
            elif o.is_discrete_sweep():
                fixed.append(f"{o.get_key_element()}={next(iter(o.sweep_string_iterator()))}")
        with initialize_config_dir(str(paths.config_dir()), version_base="1.3"):
            cfg = compose("config", overrides=fixed, return_hydra_config=True)
        task = [o.input_line for o in others]
        values = sweep.sweep_values(cfg.hydra.sweeper.get("params"), task)
        declared = sweep.sweep_values(cfg.hydra.sweeper.get("params"), [])
        tracker = make_tracker(cfg.tracking, cfg.experiment_name)
        if not tracker.enabled:
            raise ConfigError("tracking=none: a report reads runs back from a tracking store")
        swept = [key for key, taken in values.items() if len(taken) > 1]
        result = write_report(
            cfg.get("report"),
            tracker,
            cfg.experiment_name,
            only=values,
            swept=swept,
            changes=report_changes,
            declared=declared,
        )
        print(result.describe())
        if record:
            if cfg.get("reproduction") is None:
                raise ConfigError(
                    f"--record: experiment '{cfg.experiment_name}' has no reproduction: block"
                )
            docs = paths.project_root() / "docs" / "reproductions"
            written = write_record(
                cfg.experiment_name, cfg.reproduction, result.out_dir, docs, task
            )
            update_readme(paths.project_root() / "README.md", docs)
            print(f"record:  {written.path} ({written.verdicts})")

    _guard(entry)


UI_USAGE = """usage: optbench ui [--host HOST] [--port PORT] [overrides]

The MLflow dashboard, read-only, over the store the runs went to: the same config as a run
(OPTBENCH_RUNS_DIR, MLFLOW_TRACKING_URI, tracking.uri=...) says where that is. Prints a link to
each experiment's runs table. Ctrl-C stops it. Defaults: --host 127.0.0.1 --port 5001."""


def ui_main(argv: list[str]) -> None:
    """``optbench ui [--host H] [--port P] [overrides]``: the dashboard of the runs' store."""
    if any(a in ("-h", "--help") for a in argv):
        print(UI_USAGE)
        return
    options = {"--host": "127.0.0.1", "--port": "5001"}
    overrides: list[str] = []
    from optbench.platform import schema

    schema.register()

    def entry() -> None:
        from hydra import compose, initialize_config_dir

        from optbench.platform import dashboard, server, store
        from optbench.platform.errors import TrackingError
        from optbench.platform.tracking import make_tracker

        items = iter(argv)
        for arg in items:
            name, eq, value = arg.partition("=")
            if name in options:
                options[name] = value if eq else next(items, "")
            elif "=" in arg:
                overrides.append(arg)
            else:
                raise ConfigError(f"optbench ui: unexpected '{arg}' (see optbench ui --help)")
        host, port = options["--host"], options["--port"]
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"--port: expected a TCP port number, got '{port}'")
        with initialize_config_dir(str(paths.config_dir()), version_base="1.3"):
            cfg = compose("config", overrides=overrides)
        tracker = make_tracker(cfg.tracking, cfg.experiment_name)
        if not tracker.enabled:
            raise ConfigError("tracking=none: nothing is stored, so there is no dashboard")
        assert tracker.uri is not None
        db = tracker.sqlite_path
        if db is None:  # a tracking server serves its own dashboard
            if not server.healthy(tracker.uri):
                raise TrackingError(f"tracking.uri={tracker.uri}: no MLflow server answers")
            print(f"the tracking server serves its dashboard: {tracker.uri}")
            return
        if not db.is_absolute():
            raise ConfigError(f"tracking.uri: sqlite path must be absolute, got {tracker.uri}")
        try:
            store.prepare_sqlite(db)  # created or upgraded, as a run would
        except TrackingError:
            if not db.exists():
                raise
            store.check_sqlite(db)  # a store this user cannot write: served as it is
        if not server.port_free(host, int(port)):
            raise ConfigError(f"--port {port}: something already listens on {host}:{port}")
        from mlflow import MlflowClient

        address = f"http://{host}:{port}"
        print(f"MLflow dashboard of {db} (read-only) on {address}; Ctrl-C stops it")
        for line in dashboard.experiment_links(address, MlflowClient(tracker.uri)):
            print(line)
        dashboard.serve(db, host, int(port))

    _guard(entry)
