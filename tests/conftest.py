"""Shared fixtures: an isolated runs/ directory and sqlite store per test, config composition,
and a runner for the real ``optbench`` command-line programs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from omegaconf import DictConfig

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest tests first: those marked ``slow``, then the end-to-end ones (they start the
    command-line programs: the ``cli_env`` fixture), then the rest in file order. On pytest-xdist
    workers the long tests then start at once and the short ones fill in beside them, instead
    of a long test starting last and ending the session alone (stable sort: the order within
    each group is kept)."""

    def group(item: pytest.Item) -> int:
        if item.get_closest_marker("slow") is not None:
            return 0
        return 1 if "cli_env" in getattr(item, "fixturenames", ()) else 2

    items.sort(key=group)


@pytest.fixture
def runs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """OPTBENCH_RUNS_DIR pointed at a temporary directory (outputs, caches, default store)."""
    path = tmp_path / "runs"
    monkeypatch.setenv("OPTBENCH_RUNS_DIR", str(path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return path


@pytest.fixture
def store(tmp_path: Path) -> str:
    """A fresh sqlite MLflow tracking URI in a temporary directory."""
    return f"sqlite:///{tmp_path}/mlflow.db"


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One reference-optimum cache for the session (f* is computed once per data set)."""
    return tmp_path_factory.mktemp("cache")


def compose(overrides: list[str], hydra: bool = False) -> DictConfig:
    """The composed optbench config for ``overrides`` (Hydra's compose API); ``hydra``: with
    the ``hydra`` node (the sweep grid, the overrides)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from optbench.platform import paths, schema

    schema.register()
    with initialize_config_dir(str(paths.config_dir()), version_base="1.3"):
        return hydra_compose("config", overrides=overrides, return_hydra_config=hydra)


def cli(
    *args: str, env: dict[str, str] | None = None, program: str = "optbench", timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run an optbench console script; return the completed process (text output). The script
    runs in its own process group: on a timeout the whole group (its launcher's workers too) is
    killed before ``TimeoutExpired`` propagates, so no job outlives a failed test."""
    full_env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    full_env.update(env or {})
    with subprocess.Popen(
        [str(BIN / program), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
        cwd=ROOT,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except BaseException:
            kill_group(process)
            raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL a process started with ``start_new_session`` and everything in its group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@pytest.fixture
def cli_env(runs_dir: Path) -> Iterator[dict[str, str]]:
    yield {"OPTBENCH_RUNS_DIR": str(runs_dir)}


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    """A real ``mlflow server`` on a free port over a fresh sqlite store; stopped by its PID."""
    from optbench.platform import server

    process, uri = server.start(tmp_path / "server.db", tmp_path / "artifacts")
    try:
        yield uri
    finally:
        server.stop(process)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """torch on one intra-op thread during a test: small batched tensors are overhead-bound, and
    a second thread only contends on a shared 2-core machine. Modules opt in with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@dataclass(frozen=True)
class Outcome:
    """What a command-line entry point did: its exit code and what it wrote."""

    returncode: int
    stdout: str
    stderr: str


def main_in_process(
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    *args: str,
    program: str = "optbench",
    env: dict[str, str] | None = None,
) -> Outcome:
    """``optbench ARGS`` (or ``optbench-report``) run by its entry point in this process: the
    same code as the console script without a process start (imports are paid once per test
    session). Output is captured at the file-descriptor level, so MLflow's and SQLAlchemy's
    logs count too; an exception escaping the entry point fails the test as a traceback would.
    ``env``: variables set for the rest of the test (as ``cli``'s, without MLFLOW_TRACKING_URI)."""
    from optbench.platform import cli

    if env is not None:
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
    monkeypatch.setattr(sys, "argv", [program, *args])
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")  # the entry point sets it; restored afterwards
    capfd.readouterr()
    entry = cli.main if program == "optbench" else cli.report_main
    try:
        entry()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out, err = capfd.readouterr()
    return Outcome(code, out, err)


def assert_one_line(result: Outcome | subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit code 2, exactly one ``error: ...`` line on stderr containing every needle, no
    traceback anywhere; returns the line."""
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]
