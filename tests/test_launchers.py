"""Parallel and distributed launchers write every run and every metric point."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from tests.conftest import cli, main_in_process


def check_complete(store: str, experiment: str, runs: int, max_steps: int, eval_every: int) -> None:
    client = MlflowClient(store)
    exp = client.get_experiment_by_name(experiment)
    children = client.search_runs(
        [exp.experiment_id], "tags.`optbench.role` = 'run'", max_results=1000
    )
    assert len(children) == runs
    assert all(r.info.status == "FINISHED" for r in children)
    assert len({r.data.tags["optbench.config_hash"] for r in children}) == runs
    parents = {r.data.tags["mlflow.parentRunId"] for r in children}
    assert len(parents) == 1
    for run in children:
        gap = client.get_metric_history(run.info.run_id, "gap")
        assert sorted(m.step for m in gap) == list(range(0, max_steps + 1, eval_every))
        loss = client.get_metric_history(run.info.run_id, "progress/loss")
        assert sorted(m.step for m in loss) == list(range(1, max_steps + 1))


@pytest.mark.parametrize("launcher", ["parallel", "joblib"])
def test_local_workers_lose_nothing(cli_env: dict[str, str], store: str, launcher: str) -> None:
    """optbench's warm workers (``parallel``) and Hydra's joblib launcher."""
    result = cli(
        "-m",
        f"hydra/launcher={launcher}",
        "hydra.launcher.n_jobs=3",
        "problem=least_squares",
        "seed=range(0,9)",
        "budget.max_steps=90",
        "eval_every=10",
        "tracking.max_points_per_metric=1000",
        "experiment_name=parallel",
        f"tracking.uri={store}",
        env=cli_env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "9 finished" in result.stdout
    check_complete(store, "parallel", 9, 90, 10)


@pytest.mark.slow
def test_ray_cluster_workers(cli_env: dict[str, str], store: str) -> None:
    """A local Ray cluster on 127.0.0.1, started and stopped by the test."""
    import os
    import shutil
    import socket
    import subprocess
    import tempfile

    from tests.conftest import BIN

    pytest.importorskip("ray")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths are limited
    env = {**os.environ, **cli_env, "RAY_AUTH_MODE": "disabled"}
    start = subprocess.run(
        [
            str(BIN / "ray"),
            "start",
            "--head",
            "--node-ip-address",
            "127.0.0.1",
            "--port",
            str(port),
            "--temp-dir",
            temp,
            "--num-cpus",
            "2",
            "--include-dashboard",
            "false",
            "--disable-usage-stats",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert start.returncode == 0, start.stderr
    try:
        result = cli(
            "-m",
            "hydra/launcher=ray_cluster",
            f"hydra.launcher.ray.init.address=127.0.0.1:{port}",
            "problem=least_squares",
            "seed=0,1,2",
            "budget.max_steps=40",
            "eval_every=10",
            "experiment_name=ray",
            f"tracking.uri={store}",
            env={**cli_env, "RAY_AUTH_MODE": "disabled"},
        )
        assert result.returncode == 0, result.stdout + result.stderr
        check_complete(store, "ray", 3, 40, 10)
    finally:
        subprocess.run(
            [str(BIN / "ray"), "stop", "--force"], env=env, capture_output=True, timeout=120
        )
        shutil.rmtree(temp, ignore_errors=True)


def test_submitit_local_executor(cli_env: dict[str, str], store: str) -> None:
    pytest.importorskip("submitit")
    result = cli(
        "-m",
        "hydra/launcher=submitit_local_jobs",
        "problem=least_squares",
        "seed=0,1",
        "budget.max_steps=40",
        "eval_every=10",
        "experiment_name=submitit",
        f"tracking.uri={store}",
        env=cli_env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    check_complete(store, "submitit", 2, 40, 10)


def test_warm_workers_survive_a_dying_worker(cli_env: dict[str, str], store: str) -> None:
    """Three of six jobs kill their worker process: each is recorded as failed (its summary and
    its MLflow run, with the reason), a new worker takes over, and the three others finish
    with every metric point."""
    result = cli(
        "-m",
        "hydra/launcher=parallel",
        "hydra.launcher.n_jobs=2",
        "problem=least_squares",
        "algorithm=fault_injection",
        "algorithm.kill_at_step=null,3",
        "seed=0,1,2",
        "budget.max_steps=20",
        "eval_every=5",
        "experiment_name=dying",
        f"tracking.uri={store}",
        env=cli_env,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "sweep: 6 jobs" in result.stdout and "3 failed, 3 finished" in result.stdout
    assert result.stdout.count("its worker process was killed (SIGKILL)") == 3
    client = MlflowClient(store)
    exp = client.get_experiment_by_name("dying")
    runs = client.search_runs([exp.experiment_id], "tags.`optbench.role` = 'run'")
    killed = [r for r in runs if r.data.params["algorithm.kill_at_step"] == "3"]
    healthy = [r for r in runs if r.data.params["algorithm.kill_at_step"] == "None"]
    assert len(killed) == 3 and len(healthy) == 3
    assert all(r.info.status == "FAILED" for r in killed)
    assert all("worker process was killed" in r.data.tags["optbench.error"] for r in killed)
    assert all(r.info.status == "FINISHED" for r in healthy)
    for run in healthy:
        gap = client.get_metric_history(run.info.run_id, "gap")
        assert sorted(m.step for m in gap) == [0, 5, 10, 15, 20]


def test_each_job_saves_the_configs_hydras_own_launcher_saves(
    runs_dir: Path, store: str, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """optbench's in-process launcher sets Hydra's job config up without its copies and writes
    the YAML with libyaml; each job's ``.hydra/config.yaml``, ``overrides.yaml`` and
    ``hydra.yaml`` are still those Hydra's basic launcher writes (the texts, byte for byte, but
    for the sweep's time stamp and parent run, and which launcher ran)."""
    tiny = ["problem=least_squares", "problem.n_samples=50", "problem.dim=5", "budget.max_steps=5"]
    saved: dict[str, dict[str, str]] = {}
    for launcher in ("basic", "local"):
        outcome = main_in_process(
            capfd, monkeypatch, "-m", f"hydra/launcher={launcher}", *tiny, "seed=0,1",
            f"tracking.uri={store}", f"experiment_name=by_{launcher}", "force=true",
        )  # fmt: skip
        assert outcome.returncode == 0, outcome.stderr
        (sweep,) = (runs_dir / "multirun" / f"by_{launcher}").iterdir()
        texts = {}
        for file in sorted(sweep.glob("*/.hydra/*.yaml")):
            text = file.read_text().replace(str(sweep), "SWEEP").replace(f"by_{launcher}", "NAME")
            text = re.sub(r"\b[0-9a-f]{32}\b", "PARENT_RUN_ID", text)  # each sweep's own
            if file.name == "hydra.yaml":
                node = yaml.safe_load(text)["hydra"]
                assert node["runtime"]["choices"].pop("hydra/launcher") == launcher
                node["overrides"]["hydra"].remove(f"hydra/launcher={launcher}")
                node.pop("launcher")
                text = yaml.safe_dump(node)
            texts[str(file.relative_to(sweep))] = text
        saved[launcher] = texts
    assert sorted(saved["local"]) == [
        f"{job}/.hydra/{name}.yaml" for job in (0, 1) for name in ("config", "hydra", "overrides")
    ]
    assert saved["local"] == saved["basic"]
    assert "seed: 1" in saved["local"]["1/.hydra/config.yaml"]
