"""Parallel and distributed launchers write every run and every metric point."""

from __future__ import annotations

from mlflow import MlflowClient

from tests.conftest import cli


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


def test_joblib_workers_lose_nothing(cli_env: dict[str, str], store: str) -> None:
    result = cli(
        "-m",
        "hydra/launcher=parallel",
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
