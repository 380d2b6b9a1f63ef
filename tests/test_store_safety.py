"""The tracking store survives what users do to it: commands started at the same instant on an
empty runs directory, stores that cannot be written, a damaged or half-migrated store. Each fault
ends the real command with exit code 2 and one ``error:`` line naming the path, and every run
logged before it is still there. Permission faults run the command as ``nobody`` when the tests
run as root (root writes anywhere)."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import BIN, ROOT

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


def run(
    *args: str, runs: Path, program: str = "optbench", unprivileged: bool = False
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update({"OPTBENCH_RUNS_DIR": str(runs), "HOME": tempfile.gettempdir()})
    prefix = AS_NOBODY if unprivileged and os.geteuid() == 0 else []
    return subprocess.run(
        [*prefix, str(BIN / program), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )


def one_line(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


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
    return str(recorder.run_id)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_commands_started_at_once_on_an_empty_runs_dir(shared_dir: Path) -> None:
    runs = shared_dir / "runs"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["OPTBENCH_RUNS_DIR"] = str(runs)
    processes = [
        subprocess.Popen(
            [str(BIN / "optbench"), *TINY, f"seed={seed}"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in range(4)
    ]
    outputs = [p.communicate(timeout=600) for p in processes]
    assert [p.returncode for p in processes] == [0] * 4, outputs
    fifth = run(*TINY, "seed=4", runs=runs)
    assert fifth.returncode == 0, fifth.stderr
    assert [status for _, status in runs_in(runs / "mlflow.db")] == ["FINISHED"] * 5


def test_commands_started_at_once_against_a_tracking_server(
    mlflow_server: str, shared_dir: Path
) -> None:
    args = ["tracking=server", f"tracking.uri={mlflow_server}", "experiment_name=served_at_once"]
    runs = shared_dir / "runs"
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda s: run(*TINY, *args, f"seed={s}", runs=runs), range(4)))
    assert [r.returncode for r in results] == [0] * 4, [r.stderr for r in results]
    assert run(*TINY, *args, "seed=4", runs=runs).returncode == 0
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("served_at_once")
    runs_logged = client.search_runs([experiment.experiment_id])
    assert sorted(r.data.params["seed"] for r in runs_logged) == ["0", "1", "2", "3", "4"]
    assert {r.info.status for r in runs_logged} == {"FINISHED"}


def test_store_faults_are_one_line_and_keep_what_was_logged(shared_dir: Path) -> None:
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
    # not an SQLite file
    damaged = shared_dir / "damaged" / "runs" / "mlflow.db"
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"\x00garbage" * 1000)
    # half-migrated, with a run in it: never touched, refused
    half = shared_dir / "half" / "runs" / "mlflow.db"
    half.parent.mkdir(parents=True)
    kept = store_with_a_run(half)
    with sqlite3.connect(half) as connection:
        connection.execute("create table _alembic_tmp_tags as select * from tags")
    half_sha = sha(half)
    for path in (shared_dir, *shared_dir.rglob("*")):
        path.chmod(0o777 if path.is_dir() else 0o666)
    locked.chmod(0o555)
    read_only_runs.chmod(0o555)
    read_only_db.chmod(0o444)
    if os.geteuid() != 0:
        read_only_db.parent.chmod(0o555)  # a non-root owner could otherwise write the directory

    cases = [
        ((*TINY, f"tracking.uri=sqlite:///{locked}/mlflow.db"), shared_dir / "a" / "runs", True),
        (TINY, read_only_runs, True),
        ((*TINY, "seed=1"), read_only_db.parent, True),
        (TINY, damaged.parent, False),
        (TINY, half.parent, False),
    ]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda c: run(*c[0], runs=c[1], unprivileged=c[2]), cases))
        report = pool.submit(
            run, "experiment=logreg_schedules", runs=damaged.parent, program="optbench-report"
        )
    one_line(results[0], str(locked), "not writable")
    one_line(results[1], str(read_only_runs), "not writable", "OPTBENCH_RUNS_DIR")
    one_line(results[2], str(read_only_db), "read-only")
    one_line(results[3], str(damaged), "not an SQLite database")
    one_line(report.result(), str(damaged), "not an SQLite database")
    one_line(results[4], str(half), "half-migrated", "holds 1 runs", "left untouched", "mv ")
    # what was logged before each fault is still there, untouched
    assert runs_in(read_only_db) == [(before, "FINISHED")]
    assert runs_in(half) == [(kept, "FINISHED")] and sha(half) == half_sha


def test_a_half_created_store_without_runs_is_created_again(shared_dir: Path) -> None:
    from optbench.platform.tracking import MlflowTracker

    runs = shared_dir / "runs"
    db = runs / "mlflow.db"
    MlflowTracker(f"sqlite:///{db}", "empty").prepare()
    with sqlite3.connect(db) as connection:  # what two racing migrations leave behind
        connection.execute("create table _alembic_tmp_tags as select * from tags")
        connection.execute("drop table tags")
    result = run(*TINY, runs=runs)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [status for _, status in runs_in(db)] == ["FINISHED"]
    (aside,) = runs.glob("mlflow.db.broken-*")
    with sqlite3.connect(aside) as connection:
        tables = {r[0] for r in connection.execute("select name from sqlite_master")}
    assert "_alembic_tmp_tags" in tables and "tags" not in tables


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
