"""A real MLflow tracking server: a sweep logs to it; an unreachable one fails fast, in one line."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts

from optbench.platform.server import free_port
from tests.conftest import main_in_process


def test_sweep_against_a_tracking_server(
    mlflow_server: str,
    cli_env: dict[str, str],
    runs_dir: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = main_in_process(
        capfd,
        monkeypatch,
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


def test_unreachable_server_is_one_line(
    cli_env: dict[str, str], capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    result = main_in_process(
        capfd,
        monkeypatch,
        "tracking=server",
        f"tracking.uri={uri}",
        "problem=least_squares",
        env=cli_env,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and uri in lines[0] and lines[0].startswith("error:")
