"""The tracking store survives what users do to it: commands started at the same instant on an
empty runs directory, stores that cannot be written, a damaged or half-migrated store. Each fault
ends the command with exit code 2 and one ``error:`` line naming the path, and every run logged
before it is still there. The concurrent commands are real processes; the permission faults run
in one process as ``nobody`` when the tests run as root (root writes anywhere); the other faults
run through the entry point in this process (``main_in_process``)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from optbench.platform.store import COMPANIONS
from tests.conftest import BIN, ROOT, Outcome, assert_one_line, kill_group, main_in_process

TINY = ["problem=least_squares", "problem.n_samples=50", "problem.dim=5", "budget.max_steps=5"]
AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory another user can use (pytest's own tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="optbench-store-"))
    path.chmod(0o777)
    yield path
    for sub in path.rglob("*"):
        if sub.is_dir():
            sub.chmod(0o777)
    shutil.rmtree(path, ignore_errors=True)


def env_for(runs: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update({"OPTBENCH_RUNS_DIR": str(runs), "HOME": tempfile.gettempdir()})
    return env


def started_at_once(commands: list[list[str]], runs: Path) -> list[subprocess.Popen[str]]:
    """The real ``optbench`` program, once per command, all started before any is waited on
    (each in its own process group, all killed if the test fails while they run)."""
    processes = [
        subprocess.Popen(
            [str(BIN / "optbench"), *args],
            env=env_for(runs),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        for args in commands
    ]
    try:
        for process in processes:
            process.communicate(timeout=900)
    except BaseException:
        for process in processes:
            kill_group(process)
        raise
    return processes


def as_unprivileged(cases: list[tuple[list[str], Path]]) -> list[Outcome]:
    """``optbench ARGS`` for each case (its runs directory), all in one process run as
    ``nobody`` when the tests run as root (``tests.cli_cases``)."""
    payload = [{"args": args, "env": {"OPTBENCH_RUNS_DIR": str(runs)}} for args, runs in cases]
    prefix = AS_NOBODY if os.geteuid() == 0 else []
    env = env_for(Path(tempfile.gettempdir()))
    if prefix:  # nobody must be able to read the checkout (a clone under a 0700 directory is not)
        probe = subprocess.run(
            [*prefix, sys.executable, "-c", "import optbench, tests.cli_cases"],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=300,
        )
        if probe.returncode != 0:
            reason = (probe.stderr.strip().splitlines() or ["?"])[-1]
            pytest.skip(f"user nobody cannot import the checkout at {ROOT}: {reason}")
    done = subprocess.run(
        [*prefix, sys.executable, "-m", "tests.cli_cases", json.dumps(payload)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    return [Outcome(**r) for r in json.loads(done.stdout.strip().splitlines()[-1])]


def runs_in(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True) as connection:
        return sorted(connection.execute("select run_uuid, status from runs").fetchall())


def store_with_a_run(db: Path) -> str:
    """A store at ``db`` holding one finished run (logged in-process); returns its id."""
    from optbench.platform.tracking import MlflowTracker, RunStatus

    tracker = MlflowTracker(f"sqlite:///{db}", "before_the_fault")
    recorder = tracker.start_run("run", {"seed": "0"}, {}, "seed: 0\n", None, 1)
    recorder.evaluation(0, {"gap": 1.0})
    recorder.finish(RunStatus.finished, {})
    # closed: the write-ahead log is folded into the file, which nothing in this process
    # touches again
    tracker.client._tracking_client.store.engine.dispose()
    return str(recorder.run_id)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_commands_started_at_once_on_an_empty_runs_dir(
    shared_dir: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = shared_dir / "runs"
    processes = started_at_once([[*TINY, f"seed={seed}"] for seed in range(4)], runs)
    assert [p.returncode for p in processes] == [0] * 4, [p.stderr for p in processes]
    monkeypatch.setenv("OPTBENCH_RUNS_DIR", str(runs))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    fifth = main_in_process(capfd, monkeypatch, *TINY, "seed=4")
    assert fifth.returncode == 0, fifth.stderr
    assert [status for _, status in runs_in(runs / "mlflow.db")] == ["FINISHED"] * 5


def test_commands_started_at_once_against_a_tracking_server(
    mlflow_server: str,
    shared_dir: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    args = ["tracking=server", f"tracking.uri={mlflow_server}", "experiment_name=served_at_once"]
    runs = shared_dir / "runs"
    processes = started_at_once([[*TINY, *args, f"seed={seed}"] for seed in range(4)], runs)
    assert [p.returncode for p in processes] == [0] * 4, [p.stderr for p in processes]
    monkeypatch.setenv("OPTBENCH_RUNS_DIR", str(runs))
    fifth = main_in_process(capfd, monkeypatch, *TINY, *args, "seed=4")
    assert fifth.returncode == 0, fifth.stderr
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("served_at_once")
    runs_logged = client.search_runs([experiment.experiment_id])
    assert sorted(r.data.params["seed"] for r in runs_logged) == ["0", "1", "2", "3", "4"]
    assert {r.info.status for r in runs_logged} == {"FINISHED"}


def test_unwritable_stores_are_one_line_and_keep_what_was_logged(shared_dir: Path) -> None:
    # an existing directory the user cannot write, for the store
    locked = shared_dir / "locked"
    locked.mkdir()
    # a runs directory that cannot be written
    read_only_runs = shared_dir / "read_only_runs"
    read_only_runs.mkdir()
    # a store with one run, then made read-only
    read_only_db = shared_dir / "ro" / "runs" / "mlflow.db"
    read_only_db.parent.mkdir(parents=True)
    before = store_with_a_run(read_only_db)
    before_sha = sha(read_only_db)
    for path in (shared_dir, *shared_dir.rglob("*")):
        path.chmod(0o777 if path.is_dir() else 0o666)
    locked.chmod(0o555)
    read_only_runs.chmod(0o555)
    read_only_db.chmod(0o444)
    if os.geteuid() != 0:
        read_only_db.parent.chmod(0o555)  # a non-root owner could otherwise write the directory

    results = as_unprivileged(
        [
            ([*TINY, f"tracking.uri=sqlite:///{locked}/mlflow.db"], shared_dir / "a" / "runs"),
            ([*TINY, f"tracking.uri=sqlite:///{locked}/sub/mlflow.db"], shared_dir / "b"),
            (TINY, read_only_runs),
            ([*TINY, "seed=1"], read_only_db.parent),
        ]
    )
    assert_one_line(results[0], str(locked), "not writable")
    assert_one_line(results[1], str(locked), "cannot create the store's directory")
    assert_one_line(results[2], str(read_only_runs), "not writable", "OPTBENCH_RUNS_DIR")
    assert_one_line(results[3], str(read_only_db), "read-only")
    # what was logged before the fault is still there, untouched
    assert runs_in(read_only_db) == [(before, "FINISHED")] and sha(read_only_db) == before_sha


def test_damaged_and_half_migrated_stores(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # not an SQLite file: refused by a run and by a report
    damaged = tmp_path / "damaged" / "runs" / "mlflow.db"
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"\x00garbage" * 1000)
    monkeypatch.setenv("OPTBENCH_RUNS_DIR", str(damaged.parent))
    assert_one_line(main_in_process(capfd, monkeypatch, *TINY), str(damaged), "not an SQLite")
    report = main_in_process(
        capfd, monkeypatch, "experiment=logreg_schedules", program="optbench-report"
    )
    assert_one_line(report, str(damaged), "not an SQLite database")
    assert damaged.read_bytes() == b"\x00garbage" * 1000

    # half-migrated, with a run in it: refused, never touched
    half = tmp_path / "half" / "runs" / "mlflow.db"
    half.parent.mkdir(parents=True)
    kept = store_with_a_run(half)
    with sqlite3.connect(half) as connection:
        connection.execute("create table _alembic_tmp_tags as select * from tags")
    half_sha = sha(half)
    monkeypatch.setenv("OPTBENCH_RUNS_DIR", str(half.parent))
    result = main_in_process(capfd, monkeypatch, *TINY)
    assert_one_line(result, str(half), "half-migrated", "holds 1 runs", "left untouched", "mv ")
    assert runs_in(half) == [(kept, "FINISHED")] and sha(half) == half_sha

    # half-created (what two racing migrations left) and empty: moved aside, created again
    runs = tmp_path / "racing" / "runs"
    db = runs / "mlflow.db"
    from optbench.platform.tracking import MlflowTracker

    empty = MlflowTracker(f"sqlite:///{db}", "empty")
    empty.prepare()
    empty.client._tracking_client.store.engine.dispose()  # as when that process ended
    racer = sqlite3.connect(db)  # a process killed mid-migration: its write-ahead log stays
    racer.execute("create table _alembic_tmp_tags as select * from tags")
    racer.execute("drop table tags")
    racer.commit()
    assert db.with_name("mlflow.db-wal").exists()
    monkeypatch.setenv("OPTBENCH_RUNS_DIR", str(runs))
    result = main_in_process(capfd, monkeypatch, *TINY)
    racer.close()
    assert result.returncode == 0, result.stdout + result.stderr
    assert [status for _, status in runs_in(db)] == ["FINISHED"]
    (aside,) = (p for p in runs.glob("mlflow.db.broken-*") if not p.name.endswith(COMPANIONS))
    assert aside.with_name(aside.name + "-wal").exists()  # the log went aside with its file
    connection = sqlite3.connect(aside)
    tables = {r[0] for r in connection.execute("select name from sqlite_master")}
    connection.close()
    assert "_alembic_tmp_tags" in tables and "tags" not in tables


def test_a_store_mlflow_itself_is_creating_is_left_to_it(tmp_path: Path) -> None:
    """``mlflow ui`` (or any client of MLflow's own) opened on a new store while optbench starts:
    MLflow migrates the file for seconds without a lock; optbench waits for it instead of taking
    the half-made file for a broken one and moving it aside under that client (which then failed
    with ``disk I/O error``)."""
    from optbench.platform.store import inspect, prepare_sqlite

    db = tmp_path / "mlflow.db"
    creating = subprocess.Popen(
        [sys.executable, "-c", RAW_MLFLOW_CLIENT, f"sqlite:///{db}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    while not (db.exists() and db.stat().st_size) and creating.poll() is None:
        time.sleep(0.005)
    assert creating.poll() is None, "MLflow created the store before optbench could look at it"
    prepare_sqlite(db)
    out, _ = creating.communicate(timeout=120)
    assert creating.returncode == 0, out[-2000:]
    assert inspect(db).kind == "current"
    beside = sorted(p.name for p in tmp_path.iterdir() if "mlflow.db." in p.name)
    assert beside == ["mlflow.db.lock"]  # nothing moved aside


RAW_MLFLOW_CLIENT = """
import sys
from mlflow import MlflowClient
client = MlflowClient(sys.argv[1])
client.create_run(client.create_experiment("raw"))
"""


def test_an_older_store_is_backed_up_and_upgraded(tmp_path: Path) -> None:
    """A store at an older MLflow schema, holding a run: copied, then upgraded; the run stays."""
    from alembic import command
    from mlflow.store.db.utils import _get_alembic_config
    from mlflow.store.tracking.dbmodels.initial_models import Base as InitialBase
    from sqlalchemy import create_engine

    from optbench.platform import store

    db = tmp_path / "mlflow.db"
    engine = create_engine(f"sqlite:///{db}")
    InitialBase.metadata.create_all(engine)
    revisions = [r.revision for r in reversed(list(_script().walk_revisions()))]
    older = revisions[len(revisions) // 2]  # a schema half-way through MLflow's history
    config = _get_alembic_config(str(engine.url))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, older)
        connection.exec_driver_sql(
            "insert into experiments (experiment_id, name, lifecycle_stage) "
            "values (7, 'old', 'active')"
        )
        connection.exec_driver_sql(
            "insert into runs (run_uuid, experiment_id, status, lifecycle_stage, source_type, "
            "source_name, entry_point_name, user_id, start_time) "
            "values ('r1', 7, 'FINISHED', 'active', 'LOCAL', '', '', 'me', 0)"
        )
    engine.dispose()
    assert store.inspect(db).kind == "outdated"
    store.prepare_sqlite(db)
    assert store.inspect(db) == store.StoreState("current", 1, store.head_revision())
    assert (tmp_path / f"mlflow.db.backup-{older}").exists()
    assert runs_in(db) == [("r1", "FINISHED")]


def _script():
    from alembic.script import ScriptDirectory
    from mlflow.store.db.utils import _get_alembic_config

    return ScriptDirectory.from_config(_get_alembic_config("sqlite://"))


def _contents(db: Path) -> tuple[dict[str, frozenset[str]], list[tuple], list[tuple]]:
    """A store's schema (every table, index and trigger with the clauses of its SQL, as a set:
    MLflow's own migrations write a table's constraints in a different order from one creation
    to the next), its schema version and its experiments (id, name, artifact location, stage,
    workspace)."""
    connection = sqlite3.connect(db)
    try:
        schema = {
            name: frozenset(line.strip().rstrip(",") for line in (sql or "").splitlines())
            for name, sql in connection.execute("select name, sql from sqlite_master")
        }
        version = connection.execute("select version_num from alembic_version").fetchall()
        experiments = connection.execute(
            "select experiment_id, name, artifact_location, lifecycle_stage, workspace "
            "from experiments"
        ).fetchall()
    finally:
        connection.close()
    return schema, version, experiments


def test_a_store_made_from_the_template_is_the_store_mlflow_makes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new store is a copy of an empty template store, built once per machine; with no cache
    to keep the template in, MLflow migrates the store from scratch. Both give the same schema,
    schema version and default experiment (its artifacts beside its own store), and the copy
    takes runs. A store seeded for a tracking server is the template itself (the server adds its
    own default experiment)."""
    from mlflow import MlflowClient

    from optbench.platform import store

    (tmp_path / "not_a_dir").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "not_a_dir"))
    assert store.empty_store_template() is None
    by_mlflow = tmp_path / "scratch" / "mlflow.db"
    store.prepare_sqlite(by_mlflow)

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first, second = tmp_path / "a" / "mlflow.db", tmp_path / "b" / "mlflow.db"
    store.prepare_sqlite(first)  # builds the template, then copies it
    template = store.empty_store_template()
    assert template is not None and template.parent == tmp_path / "cache" / "optbench"
    assert _contents(template)[2] == []  # no experiment in the template itself
    store.prepare_sqlite(second)

    schema, version, (experiment,) = _contents(by_mlflow)
    assert version == [(store.head_revision(),)]
    assert experiment[:2] == (0, "Default")
    assert experiment[2] == f"{(by_mlflow.parent / 'artifacts').as_uri()}/0"
    for db in (first, second):
        assert store.inspect(db).kind == "current"
        copy_schema, copy_version, (copy_experiment,) = _contents(db)
        assert copy_schema == schema and copy_version == version
        location = f"{(db.parent / 'artifacts').as_uri()}/0"
        assert copy_experiment == (0, "Default", location, *experiment[3:])

    seeded = tmp_path / "served" / "mlflow.db"  # what an ``mlflow server`` is started on
    store.seed_from_template(seeded)
    assert _contents(seeded)[:2] == (schema, version) and _contents(seeded)[2] == []

    client = MlflowClient(f"sqlite:///{second}")
    run = client.create_run(client.create_experiment("x"))
    client.log_metric(run.info.run_id, "m", 1.5)
    assert client.get_run(run.info.run_id).data.metrics == {"m": 1.5}
