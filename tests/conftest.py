"""Shared fixtures: an isolated runs/ directory and sqlite store per test, config composition,
and a runner for the real ``optbench`` command-line programs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from omegaconf import DictConfig

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]


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
