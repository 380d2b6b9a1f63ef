"""Optuna tuning through the real CLI: search space, trials as MLflow child runs, failures told
as FAIL (never NaN), pruning, and a study resumed after SIGKILL."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow import MlflowClient

from optbench.contracts.errors import ConfigError
from optbench.platform.tuning import search_space, storage_for
from tests.conftest import BIN, ROOT, cli, main_in_process


def test_search_space_syntax() -> None:
    space, fixed = search_space(
        {"algorithm.lr": "tag(log, interval(0.001, 1.0))", "algorithm.schedule": "choice(a, b)"},
        ["algorithm.batch_size=range(8, 40, 8)", "seed=3", "algorithm.momentum=interval(0, 1)"],
    )
    lr = space["algorithm.lr"]
    assert isinstance(lr, optuna.distributions.FloatDistribution) and lr.log
    assert (lr.low, lr.high) == (0.001, 1.0)
    assert space["algorithm.schedule"].choices == ("a", "b")
    batch = space["algorithm.batch_size"]
    assert isinstance(batch, optuna.distributions.IntDistribution)
    assert (batch.low, batch.high, batch.step) == (8, 32, 8)  # range(8, 40, 8): 8, 16, 24, 32
    assert space["algorithm.momentum"] == optuna.distributions.FloatDistribution(0.0, 1.0)
    assert fixed == ["seed=3"]
    with pytest.raises(ConfigError, match="no search space"):
        search_space({}, ["seed=1"])


def runs_of(store: str, experiment: str) -> list:
    client = MlflowClient(store)
    exp = client.get_experiment_by_name(experiment)
    return [r for r in client.search_runs([exp.experiment_id], max_results=1000)]


def test_tune_logreg_trials_are_child_runs_and_best_is_the_best_run(
    cli_env: dict[str, str],
    store: str,
    runs_dir: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = main_in_process(
        capfd,
        monkeypatch,
        "-m",
        "experiment=tune_logreg",
        "hydra.sweeper.n_trials=7",
        "problem.dataset=heart_scale",
        "budget.max_steps=60",
        "eval_every=10",
        f"tracking.uri={store}",
        env=cli_env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    runs = runs_of(store, "tune_logreg")
    parent = [r for r in runs if r.data.tags["optbench.role"] == "sweep"]
    children = [r for r in runs if r.data.tags["optbench.role"] == "run"]
    assert len(parent) == 1 and len(children) == 7
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent[0].info.run_id}
    best = yaml.safe_load((runs_dir / "reports" / "tune_logreg" / "optuna_best.yaml").read_text())
    complete = [r for r in children if r.data.tags["optbench.status"] == "finished"]
    assert best["complete"] == len(complete)
    winner = min(complete, key=lambda r: r.data.metrics["gap"])
    assert best["value"] == pytest.approx(winner.data.metrics["gap"], rel=1e-12)
    assert best["params"]["algorithm.lr"] == pytest.approx(
        float(winner.data.params["algorithm.lr"])
    )
    study = optuna.load_study(study_name="tune_logreg", storage=storage_for("tune_logreg", None))
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert len(pruned) == sum(r.data.tags["optbench.status"] == "pruned" for r in children)


def test_failed_and_diverged_trials_are_told_as_fail(
    cli_env: dict[str, str],
    store: str,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = main_in_process(
        capfd,
        monkeypatch,
        "-m",
        "hydra/sweeper=optuna",
        "hydra.sweeper.n_trials=8",
        "hydra.sweeper.sampler=random",
        "problem=least_squares",
        "algorithm=fault_injection",
        "budget.max_steps=10",
        "algorithm.fail_at_step=choice(2, 1000)",
        "algorithm.nan_at_step=choice(3, 1000)",
        "algorithm.lr=interval(0.01, 0.2)",  # distinct configs: none is skipped as done
        "experiment_name=faulty_study",
        f"tracking.uri={store}",
        env=cli_env,
    )
    children = [r for r in runs_of(store, "faulty_study") if r.data.tags["optbench.role"] == "run"]
    bad = [r for r in children if r.data.tags["optbench.status"] in ("failed", "diverged")]
    assert len(children) == 8 and bad, result.stdout
    assert result.returncode == (
        1 if any(r.data.tags["optbench.status"] == "failed" for r in bad) else 0
    )
    study = optuna.load_study(study_name="faulty_study", storage=storage_for("faulty_study", None))
    states = [t.state for t in study.trials]
    assert states.count(optuna.trial.TrialState.FAIL) == len(bad)
    assert all(math.isfinite(t.value) for t in study.trials if t.value is not None)


def test_study_killed_with_sigkill_resumes(cli_env: dict[str, str], store: str) -> None:
    args = [
        "-m",
        "hydra/sweeper=optuna",
        "hydra.sweeper.n_trials=6",
        "problem=least_squares",
        "algorithm=fault_injection",
        "algorithm.sleep_s=0.05",
        "budget.max_steps=20",
        "algorithm.lr=interval(0.01, 0.2)",
        "experiment_name=killed_study",
        f"tracking.uri={store}",
    ]
    env = {**os.environ, **cli_env}
    env.pop("MLFLOW_TRACKING_URI", None)
    process = subprocess.Popen(
        [str(BIN / "optbench"), *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    storage = storage_for("killed_study", None)
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(0.3)
        try:
            trials = optuna.load_study(study_name="killed_study", storage=storage).trials
        except KeyError:
            continue
        if sum(t.state.is_finished() for t in trials) >= 2 and any(
            not t.state.is_finished() for t in trials
        ):
            break
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    interrupted = optuna.load_study(study_name="killed_study", storage=storage).trials
    assert 2 <= sum(t.state.is_finished() for t in interrupted) < 6

    resumed = cli(*args, env=cli_env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    trials = optuna.load_study(study_name="killed_study", storage=storage).trials
    assert sum(t.state.is_finished() for t in trials) == 6
    assert all(t.state.is_finished() for t in trials)
    runs = runs_of(store, "killed_study")
    assert len([r for r in runs if r.data.tags["optbench.role"] == "sweep"]) == 1
    children = [r for r in runs if r.data.tags["optbench.role"] == "run"]
    assert not [r for r in children if r.info.status == "RUNNING"]
    killed = [r for r in children if r.info.status == "KILLED"]
    finished = [r for r in children if r.info.status == "FINISHED"]
    assert len(finished) == sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert len(killed) <= 1
