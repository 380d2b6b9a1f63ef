"""A real MLflow tracking server: a sweep logs to it; an unreachable one fails fast, in one line."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts

from tests.conftest import BIN, cli


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


def test_sweep_against_a_tracking_server(
    mlflow_server: str, cli_env: dict[str, str], runs_dir: Path
) -> None:
    result = cli(
        "-m",
        "tracking=server",
        f"tracking.uri={mlflow_server}",
        "problem=least_squares",
        "seed=0,1,2",
        "budget.max_steps=40",
        "eval_every=10",
        "experiment_name=served",
        env=cli_env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    client = MlflowClient(mlflow_server)
    exp = client.get_experiment_by_name("served")
    runs = client.search_runs([exp.experiment_id], max_results=100)
    children = [r for r in runs if r.data.tags["optbench.role"] == "run"]
    assert len(children) == 3 and all(r.info.status == "FINISHED" for r in children)
    run = children[0].info.run_id
    assert sorted(m.step for m in client.get_metric_history(run, "gap")) == [0, 10, 20, 30, 40]
    progress = pd.read_csv(
        download_artifacts(run_id=run, artifact_path="progress.csv", tracking_uri=mlflow_server)
    )
    assert list(progress["step"]) == list(range(1, 41))
    # written locally first: every job's output dir holds its metrics
    local = list((runs_dir / "multirun").glob("served/*/*/metrics.csv"))
    assert len(local) == 3
    assert sorted(pd.read_csv(local[0])["step"]) == [0, 10, 20, 30, 40]


def test_unreachable_server_is_one_line(cli_env: dict[str, str]) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    result = cli("tracking=server", f"tracking.uri={uri}", "problem=least_squares", env=cli_env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and uri in lines[0] and lines[0].startswith("error:")
