"""Shared fixtures: an isolated runs/ directory and sqlite store per test, config composition,
and a runner for the real ``optbench`` command-line programs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
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


def compose(overrides: list[str]) -> DictConfig:
    """The composed optbench config for ``overrides`` (Hydra's compose API)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from optbench.platform import paths, schema

    schema.register()
    with initialize_config_dir(str(paths.config_dir()), version_base="1.3"):
        return hydra_compose("config", overrides=overrides)


def cli(
    *args: str, env: dict[str, str] | None = None, program: str = "optbench", timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run an optbench console script; return the completed process (text output)."""
    full_env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    full_env.update(env or {})
    return subprocess.run(
        [str(BIN / program), *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=ROOT,
    )


@pytest.fixture
def cli_env(runs_dir: Path) -> Iterator[dict[str, str]]:
    yield {"OPTBENCH_RUNS_DIR": str(runs_dir)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    """``mlflow server`` on a free port over a fresh sqlite store; stopped by its PID."""
    port = free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    process = subprocess.Popen(
        [
            str(BIN / "mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{tmp_path}/server.db",
            "--artifacts-destination",
            str(tmp_path / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2):
                break
        except OSError:
            if time.time() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("the MLflow server did not start")
            time.sleep(0.5)
    try:
        yield uri
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
