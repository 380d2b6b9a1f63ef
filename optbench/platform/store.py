"""The embedded MLflow store (a sqlite file): created, upgraded and checked before MLflow opens it.

MLflow creates the tables of a new sqlite store, and migrates an old one, the first time a client
opens it, without any lock: two commands started at once on an empty runs directory can leave the
store half-migrated for good (``table _alembic_tmp_tags already exists`` on every later run).
And a directory or file it cannot write makes MLflow retry for minutes and print pages of logs.
``prepare_sqlite(path)`` runs before any MLflow client touches the file:

- the directory must be creatable and writable, the file readable and writable (sqlite writes its
  journal beside the file); else one ``TrackingError`` line naming the path;
- everything below happens under an exclusive lock on ``<db>.lock``, so one process at a time
  creates or upgrades a store;
- a new store is built in a temporary file (tables, migrations, MLflow's default experiment) and
  renamed into place: no process ever sees a half-created store. The tables come from a copy of
  an empty store at this MLflow's schema, built once per machine and MLflow version in the user's
  cache (``$XDG_CACHE_HOME/optbench``; migrating a new store from scratch costs 1.5-4.6 s here,
  the copy 0.03 s); MLflow then adds its default experiment to the copy as to a store it made.
  Where that cache cannot be written the store is migrated from scratch, as MLflow does;
- a store at an older schema is copied to ``<db>.backup-<revision>`` and upgraded; if the upgrade
  fails the copy is put back;
- a store left half-migrated by an interrupted migration (``_alembic_tmp_*`` tables, a schema
  version MLflow does not know, missing tables) that holds no run is moved aside to
  ``<db>.broken-<time>`` (with its write-ahead log) and created again; one that holds runs is
  refused with one line saying how to recover (it is never touched);
- a file that is not an SQLite database is refused with one line;
- a file that is not a current store is judged only once it and its journal have been still for
  ``STILL_S`` seconds: a client of MLflow's own (``mlflow ui`` opened on the path first) may be
  creating it right then, and moving its half-made store aside would fail that client.

``check_sqlite(path)`` is the read-only part (for ``optbench ui`` on a store it cannot write).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from optbench.platform.errors import TrackingError

log = logging.getLogger(__name__)

SQLITE_HEADER = b"SQLite format 3\x00"


@dataclass(frozen=True)
class StoreState:
    """What a sqlite file holds: ``kind`` is ``new`` (no file, empty, or no table), ``current``,
    ``outdated`` (an older schema MLflow can upgrade) or ``broken`` (``reason`` says why)."""

    kind: str
    runs: int = 0
    revision: str | None = None
    reason: str = ""


@functools.cache
def head_revision() -> str:
    """The schema revision this MLflow writes."""
    from mlflow.store.db.utils import _get_latest_schema_revision

    return str(_get_latest_schema_revision())


@functools.cache
def known_revisions() -> frozenset[str]:
    """Every schema revision this MLflow can upgrade from."""
    from alembic.script import ScriptDirectory
    from mlflow.store.db.utils import _get_alembic_config

    script = ScriptDirectory.from_config(_get_alembic_config("sqlite://"))
    return frozenset(rev.revision for rev in script.walk_revisions())


def _expected_tables() -> set[str]:
    from mlflow.store.db.base_sql_model import Base

    return set(Base.metadata.tables)


def inspect(path: Path) -> StoreState:
    """The state of the store in ``path`` (read-only; raises ``TrackingError`` for a file that
    is not an SQLite database or cannot be read)."""
    if not path.exists() or path.stat().st_size == 0:
        return StoreState("new")
    if path.is_dir():
        raise TrackingError(f"{path}: is a directory, not an MLflow store")
    try:
        with open(path, "rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise TrackingError(f"{path}: cannot read the MLflow store ({exc.strerror})") from None
    if header != SQLITE_HEADER:
        raise TrackingError(
            f"{path}: not an SQLite database (damaged?); move it aside "
            f"(mv {path} {path}.damaged) to start a new store"
        )
    try:
        connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            tables = {r[0] for r in connection.execute("select name from sqlite_master")}
            revision = None
            if "alembic_version" in tables:
                row = connection.execute("select version_num from alembic_version").fetchone()
                revision = row[0] if row else None
            runs = (
                connection.execute("select count(*) from runs").fetchone()[0]
                if "runs" in tables
                else 0
            )
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        raise TrackingError(f"{path}: damaged MLflow store ({exc})") from None
    if not tables:
        return StoreState("new")
    leftovers = sorted(t for t in tables if t.startswith("_alembic_tmp_"))
    if leftovers:
        reason = f"table {leftovers[0]} left by an interrupted schema migration"
        return StoreState("broken", runs, revision, reason)
    if revision is None:
        return StoreState("broken", runs, revision, "no schema version (creation interrupted)")
    if revision == head_revision():
        missing = _expected_tables() - tables
        if missing:
            return StoreState("broken", runs, revision, f"table {sorted(missing)[0]} missing")
        return StoreState("current", runs, revision)
    if revision not in known_revisions():
        reason = f"schema revision {revision} is unknown to this MLflow (a newer one wrote it?)"
        return StoreState("broken", runs, revision, reason)
    return StoreState("outdated", runs, revision)


def _check_writable(path: Path) -> None:
    """The directory of ``path`` exists (created if needed) and can be written, and so can
    ``path`` if it exists; else one line naming what is not writable."""
    hint = "set OPTBENCH_RUNS_DIR or tracking.uri to a writable place"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrackingError(
            f"{path.parent}: cannot create the store's directory ({exc.strerror}); {hint}"
        ) from None
    if not path.parent.is_dir():
        raise TrackingError(f"{path.parent}: not a directory; {hint}")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise TrackingError(f"{path.parent}: directory is not writable; {hint}")
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise TrackingError(f"{path}: the MLflow store is read-only; {hint}")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``<path>.lock``, across processes (released when the block ends)."""
    lock = path.with_name(path.name + ".lock")
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _quiet() -> None:
    """MLflow and alembic log every migration step at INFO: keep them to warnings."""
    for name in ("alembic", "mlflow"):
        logging.getLogger(name).setLevel(logging.WARNING)


#: the files SQLite keeps beside a database (write-ahead log, its index, rollback journal)
COMPANIONS = ("-wal", "-shm", "-journal")


def _companions(path: Path) -> dict[str, Path]:
    """Suffix -> the companion file of the database ``path`` (whether it exists or not)."""
    return {suffix: path.with_name(path.name + suffix) for suffix in COMPANIONS}


def _move_companions(path: Path, aside: Path) -> None:
    """Move the companion files of ``path`` that exist to those of ``aside``."""
    targets = _companions(aside)
    for suffix, companion in _companions(path).items():
        if companion.exists():
            os.replace(companion, targets[suffix])


def _move_aside(path: Path, aside: Path) -> None:
    """Move the database ``path`` and its companion files to ``aside`` (a write-ahead log left
    beside a new file of the same name would be replayed into it)."""
    os.replace(path, aside)
    _move_companions(path, aside)


def _create(path: Path) -> None:
    """A complete new store at ``path``: built in a temporary file, then renamed into place
    (companion files of an earlier store of that name, left by a killed process, are first
    moved to ``<db>.stale-<time>-wal`` etc.: SQLite would replay a stale write-ahead log into
    the new file)."""
    _quiet()
    _move_companions(path, path.with_name(f"{path.name}.stale-{time.strftime('%Y%m%d-%H%M%S')}"))
    with _built_in_place(path) as temporary:
        template = empty_store_template()
        if template is not None:
            shutil.copyfile(template, temporary)
        _open_with_mlflow(temporary, path.parent / "artifacts")


@contextlib.contextmanager
def _built_in_place(path: Path) -> Iterator[Path]:
    """A temporary file beside ``path`` to build a store in: renamed to ``path`` when the block
    ends without an error, removed otherwise (no process ever sees a half-built store)."""
    temporary = path.with_name(f"{path.name}.creating-{os.getpid()}")
    temporary.unlink(missing_ok=True)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _open_with_mlflow(file: Path, artifact_root: Path) -> None:
    """MLflow's own opening of the store in ``file``: it creates and migrates the tables when
    there are none and adds its default experiment when there is none; then it lets go of it."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    uri = f"sqlite:///{file}"
    store = SqlAlchemyStore(uri, artifact_root.as_uri())
    store._dispose_engine()
    SqlAlchemyStore._engine_map.pop(uri, None)


def template_dir() -> Path:
    """Where the empty-store template is kept: ``$XDG_CACHE_HOME/optbench`` (``~/.cache``)."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "optbench"


def empty_store_template() -> Path | None:
    """An empty store (tables and schema version, no experiment) at this MLflow's schema, built
    once per machine and MLflow version; None where it cannot be built or read (then each new
    store is migrated from scratch)."""
    import mlflow

    path = template_dir() / f"mlflow-{mlflow.__version__}-{head_revision()}-empty.db"
    try:
        if inspect(path).kind == "current":
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(path):
            if inspect(path).kind != "current":
                _build_template(path)
        return path if inspect(path).kind == "current" else None
    except (OSError, TrackingError, sqlite3.Error) as exc:
        log.debug("no empty-store template in %s: %s", path.parent, exc)
        return None


def seed_from_template(path: Path) -> None:
    """Put a copy of the empty-store template at ``path`` when there is no store there (an
    ``mlflow server`` started on it then finds its tables and only adds its default experiment,
    with its own artifact root); nothing happens without a template."""
    _check_writable(path)
    with _locked(path):
        if path.exists():
            return
        template = empty_store_template()
        if template is None:
            return
        with _built_in_place(path) as temporary:
            shutil.copyfile(template, temporary)


def _build_template(path: Path) -> None:
    """MLflow's own creation of a store (tables and every migration) in a temporary file, its
    default experiment removed (each copy gets its own, with its own artifact location)."""
    with _built_in_place(path) as temporary:
        _open_with_mlflow(temporary, path.parent / "artifacts")
        connection = sqlite3.connect(temporary)
        try:
            with connection:
                connection.execute("delete from experiment_tags")
                connection.execute("delete from experiments")
        finally:
            connection.close()


def _upgrade(path: Path, revision: str) -> None:
    """Upgrade the store at ``path`` to this MLflow's schema, keeping a copy of it first."""
    from mlflow.store.db.utils import _upgrade_db
    from sqlalchemy import create_engine

    _quiet()
    backup = path.with_name(f"{path.name}.backup-{revision}")
    shutil.copy2(path, backup)
    engine = create_engine(f"sqlite:///{path}")
    try:
        _upgrade_db(engine)
    except Exception as exc:
        engine.dispose()
        shutil.copy2(backup, path)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrackingError(
            f"{path}: upgrading the store from schema {revision} failed ({first}); "
            f"it is unchanged (a copy is in {backup})"
        ) from None
    engine.dispose()


#: a store file (or its journal) written less than this many seconds ago may be in the middle of
#: its creation by a client of MLflow's own (which takes no lock): it is judged when it is still
STILL_S = 3.0


def _modified(file: Path) -> float:
    """When ``file`` was last written; 0 when there is none (a journal comes and goes)."""
    try:
        return file.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _wait_until_still(path: Path, limit_s: float = 120.0) -> None:
    """Wait until neither ``path`` nor its companion files have changed for ``STILL_S`` seconds
    (at most ``limit_s``): a store another program is creating is not new or broken, it is busy."""
    files = [path, *_companions(path).values()]
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        newest = max(_modified(f) for f in files)
        idle = time.time() - newest
        if idle >= STILL_S:
            return
        time.sleep(max(STILL_S - idle, 0.05))


def prepare_sqlite(path: Path) -> None:
    """Make ``path`` a complete, current, writable MLflow store (see the module docstring)."""
    _check_writable(path)
    state = inspect(path)
    if state.kind == "current":
        return
    try:
        with _locked(path):
            state = inspect(path)  # another process may have done it while we waited
            if state.kind != "current" and path.exists():
                _wait_until_still(path)  # or a program of MLflow's own may be doing it
                state = inspect(path)
            if state.kind == "new":
                _create(path)
            elif state.kind == "outdated":
                assert state.revision is not None
                _upgrade(path, state.revision)
            elif state.kind == "broken":
                if state.runs:
                    backups = sorted(path.parent.glob(f"{path.name}.backup-*"))
                    how = (
                        f"restore the copy made before the upgrade (cp {backups[-1]} {path})"
                        if backups
                        else f"move it aside (mv {path} {path}.broken) to start a new store; "
                        "its runs stay readable with sqlite3"
                    )
                    raise TrackingError(
                        f"{path}: the store is half-migrated ({state.reason}) and holds "
                        f"{state.runs} runs; it was left untouched: {how}"
                    )
                aside = path.with_name(f"{path.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
                _move_aside(path, aside)
                _create(path)
    except OSError as exc:
        raise TrackingError(f"{path}: cannot prepare the MLflow store ({exc})") from None


def check_sqlite(path: Path) -> None:
    """A store that can only be read: it must exist and be complete and current."""
    if not path.exists():
        raise TrackingError(f"{path}: no MLflow store here (no run was logged to it)")
    if not os.access(path, os.R_OK):
        raise TrackingError(f"{path}: the MLflow store is not readable")
    state = inspect(path)
    if state.kind != "current":
        raise TrackingError(
            f"{path}: the store is {state.kind}{f' ({state.reason})' if state.reason else ''} "
            "and cannot be written here to fix it; run optbench where it is writable"
        )
