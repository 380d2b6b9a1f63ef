"""The runner in process: budgets, evaluation cadence, statuses, resume, reproducibility, and the
refined schedule reading another run's history."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts

from optbench.algorithms.schedules import make_schedule
from optbench.contracts.errors import ConfigError
from optbench.platform.runner import RunSummary, execute
from optbench.platform.tracking import RunStatus, make_tracker
from tests.conftest import compose


def run(store: str, *overrides: str, reraise: bool = False) -> RunSummary:
    cfg = compose([f"tracking.uri={store}", "experiment_name=test", *overrides])
    tracker = make_tracker(cfg.tracking, cfg.experiment_name)
    tracker.prepare()
    return execute(cfg, tracker, name="test", problem_name="p", algorithm_name="a", reraise=reraise)


def history(store: str, run_id: str, key: str) -> dict[int, float]:
    return {m.step: m.value for m in MlflowClient(store).get_metric_history(run_id, key)}


def test_newton_solves_least_squares_to_its_closed_form_optimum(runs_dir: Path, store: str) -> None:
    s = run(store, "problem=least_squares", "problem.condition=100", "algorithm=newton")
    assert s.status is RunStatus.finished and s.stop_reason == "converged"
    assert s.steps <= 3
    assert abs(s.metrics["gap"]) < 1e-12 and s.metrics["dist"] < 1e-8


def test_lbfgs_reaches_the_reference_optimum_of_logistic_regression(
    runs_dir: Path, store: str
) -> None:
    s = run(
        store,
        "problem.dataset=heart_scale",
        "algorithm=lbfgs",
        "budget.max_steps=200",
        "algorithm.tolerance_grad=1e-8",
        "eval_every=10",
    )
    assert s.stop_reason == "converged"
    assert 0 <= s.metrics["gap"] < 1e-12
    assert s.metrics["grad_norm"] < 1e-8


def test_a_run_that_stops_moving_ends_as_stalled(runs_dir: Path, store: str) -> None:
    """Issue 13: a method whose iterate and progress metrics stop changing ends as ``stalled``
    after ``budget.stall_steps`` repeated steps, not as ``finished (max_steps)``."""
    base = ["problem=least_squares", "algorithm=fault_injection", "budget.max_steps=200"]
    stalled = run(store, *base, "algorithm.freeze_at_step=5", "budget.stall_steps=10")
    assert stalled.status is RunStatus.stalled
    assert stalled.stop_reason == "unchanged iterate and progress metrics (10 steps)"
    # step 5 repeats step 4's iterate with a new loss; steps 6..16 repeat step 5 exactly
    assert stalled.steps == 5 + 1 + 10
    assert MlflowClient(store).get_run(stalled.run_id).info.status == "FINISHED"
    off = run(store, *base, "algorithm.freeze_at_step=5", "budget.stall_steps=null")
    assert off.status is RunStatus.finished and off.steps == 200
    moving = run(store, *base, "budget.stall_steps=1")
    assert moving.status is RunStatus.finished and moving.steps == 200


def test_evaluation_cadence_and_progress_history(runs_dir: Path, store: str) -> None:
    s = run(store, "problem=least_squares", "budget.max_steps=20", "eval_every=7")
    assert sorted(history(store, s.run_id, "gap")) == [0, 7, 14, 20]
    times = history(store, s.run_id, "time_s")
    assert list(times.values()) == sorted(times.values())
    progress = pd.read_csv(
        download_artifacts(run_id=s.run_id, artifact_path="progress.csv", tracking_uri=store)
    )
    assert list(progress["step"]) == list(range(1, 21))
    assert {"loss", "grad_norm", "lr"} <= set(progress.columns)
    counts = history(store, s.run_id, "oracle/samples")
    assert counts[20] == 20 * 32  # 20 minibatches of 32 samples


def test_failure_divergence_timeout_and_target(runs_dir: Path, store: str) -> None:
    base = ["problem=least_squares", "algorithm=fault_injection", "budget.max_steps=50"]
    failed = run(store, *base, "algorithm.fail_at_step=3")
    assert failed.status is RunStatus.failed and "InjectedFault" in failed.error
    client = MlflowClient(store)
    assert client.get_run(failed.run_id).info.status == "FAILED"
    trace = Path(
        download_artifacts(run_id=failed.run_id, artifact_path="traceback.txt", tracking_uri=store)
    ).read_text()
    assert "injected failure at step 3" in trace

    diverged = run(store, *base, "algorithm.nan_at_step=2")
    assert diverged.status is RunStatus.diverged and diverged.steps == 2
    assert client.get_run(diverged.run_id).data.tags["optbench.status"] == "diverged"

    slow = run(store, *base, "algorithm.sleep_s=0.05", "budget.time_limit_s=0.12")
    assert slow.status is RunStatus.timed_out and 2 <= slow.steps <= 4

    target = run(
        store,
        "problem=least_squares",
        "budget.max_steps=5000",
        "budget.target={metric: gap, value: 1e-3}",
        "eval_every=5",
        "algorithm.lr=0.2",
    )
    assert target.stop_reason == "target" and target.metrics["gap"] <= 1e-3
    assert target.steps < 5000 and target.steps % 5 == 0


def test_resume_skips_finished_and_force_reruns(runs_dir: Path, store: str) -> None:
    first = run(store, "problem=least_squares", "budget.max_steps=5")
    again = run(store, "problem=least_squares", "budget.max_steps=5")
    assert again.status is RunStatus.skipped and again.run_id == first.run_id
    forced = run(store, "problem=least_squares", "budget.max_steps=5", "force=true")
    assert forced.status is RunStatus.finished and forced.run_id != first.run_id
    # a failed run is rerun
    bad = run(
        store, "problem=least_squares", "algorithm=fault_injection", "algorithm.fail_at_step=1"
    )
    rerun = run(
        store, "problem=least_squares", "algorithm=fault_injection", "algorithm.fail_at_step=1"
    )
    assert rerun.status is RunStatus.failed and rerun.run_id != bad.run_id


def test_same_config_and_seed_give_identical_metrics(runs_dir: Path, store: str) -> None:
    args = ["problem.dataset=ionosphere_scale", "budget.max_steps=60", "eval_every=20", "seed=4"]
    a = run(store, *args)
    b = run(store, *args, "force=true")
    c = run(store, *args[:-1], "seed=5")
    keys = [k for k in MlflowClient(store).get_run(a.run_id).data.metrics if "time" not in k]
    assert "gap" in keys and "progress/grad_norm" in keys
    for key in keys:
        assert history(store, a.run_id, key) == history(store, b.run_id, key), key
    assert history(store, a.run_id, "gap") != history(store, c.run_id, "gap")


def test_a_run_without_a_thread_count_does_not_inherit_the_previous_runs(
    runs_dir: Path, store: str
) -> None:
    """In a sweep run in one process, a job with ``device.threads=null`` runs with the process's
    own thread count (what torch reports in a fresh interpreter), not the one an earlier job
    set: the same config gives the same numbers whatever ran before it."""
    import torch

    fresh = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
        capture_output=True,
        text=True,
        check=True,
    )
    args = ["problem=least_squares", "budget.max_steps=2"]
    run(store, *args, "device.threads=3")
    assert torch.get_num_threads() == 3
    run(store, *args, "seed=1")
    assert torch.get_num_threads() == int(fresh.stdout)


def test_refined_schedule_reads_the_linear_decay_run(runs_dir: Path, store: str) -> None:
    args = ["problem.dataset=heart_scale", "budget.max_steps=120", "algorithm.lr=0.5", "seed=1"]
    missing = run(store, *args, "algorithm.schedule=refined")
    assert missing.status is RunStatus.failed and missing.run_id is None  # no run is opened
    assert "algorithm.schedule=linear_decay" in missing.error
    with pytest.raises(ConfigError):
        run(store, *args, "algorithm.schedule=refined", reraise=True)

    source = run(store, *args, "algorithm.schedule=linear_decay")
    refined = run(store, *args, "algorithm.schedule=refined")
    assert refined.status is RunStatus.finished

    def progress(run_id: str) -> pd.DataFrame:
        return pd.read_csv(
            download_artifacts(run_id=run_id, artifact_path="progress.csv", tracking_uri=store)
        )

    expected = 0.5 * make_schedule(
        "refined", 120, grad_norms=progress(source.run_id)["grad_norm"].to_numpy()
    )
    np.testing.assert_allclose(progress(refined.run_id)["lr"], expected, rtol=1e-12)


def test_a_hung_step_is_cut_at_the_time_limit(runs_dir: Path, store: str) -> None:
    import time

    started = time.perf_counter()
    s = run(
        store,
        "problem=least_squares",
        "algorithm=fault_injection",
        "algorithm.sleep_s=30",
        "budget.time_limit_s=0.5",
        "budget.max_steps=5",
    )
    assert time.perf_counter() - started < 15
    assert s.status is RunStatus.timed_out and "cut" in s.stop_reason
    assert s.steps == 0 and 0.5 <= s.time_s < 2.0


def test_a_sweep_runs_the_runs_an_input_reads_first() -> None:
    from optbench.platform.sweep import expand_grid, job_stages

    jobs = expand_grid(
        {"algorithm.schedule": "refined,cosine,linear_decay", "algorithm.lr": "0.3,1.0"},
        [
            "problem.dataset=heart_scale",
            "algorithm.refine_best_over=[algorithm.lr]",
            "algorithm.refine_metric=gap",
        ],
    )
    assert len(jobs) == 6
    configs = [compose(job) for job in jobs]
    stages = job_stages(configs)
    schedule = [[configs[i].algorithm.schedule for i in stage] for stage in stages]
    # the refined runs (first in the grid) read the best linear-decay run over every lr
    assert schedule == [["cosine", "cosine", "linear_decay", "linear_decay"], ["refined"] * 2]
    # without best_over each refined run reads the linear-decay run of its own lr only
    plain = [compose([*job[:2], "problem.dataset=heart_scale"]) for job in jobs]
    assert [len(s) for s in job_stages(plain)] == [4, 2]


def test_local_metric_files_are_what_pandas_writes(tmp_path: Path) -> None:
    """``write_csv`` (a run's local ``metrics.csv``/``progress.csv``) writes the text pandas
    writes for the same rows: columns in order of first appearance, missing values and NaN as
    empty fields, floats in shortest round-trip form, infinities as ``inf``."""
    import pandas as pd

    from optbench.platform.tracking import write_csv

    rows = [
        {"step": 0, "loss": 0.1, "gap": 1e-17},
        {"step": 1, "loss": float("nan"), "time_s": 1 / 3, "oracle/grad_evals": 5.0},
        {"step": 2, "loss": float("inf"), "gap": -float("inf"), "time_s": 123456789.125},
        {"step": 3, "loss": 2.0**-40, "gap": -0.0, "time_s": 1e22},
    ]
    write_csv(tmp_path / "ours.csv", rows)
    pd.DataFrame(rows).to_csv(tmp_path / "pandas.csv", index=False)
    ours = (tmp_path / "ours.csv").read_text()
    assert ours == (tmp_path / "pandas.csv").read_text()
    assert ours.splitlines()[0] == "step,loss,gap,time_s,oracle/grad_evals"
    back = pd.read_csv(tmp_path / "ours.csv")
    assert back["time_s"][1] == 1 / 3
    assert back["loss"].isna().tolist() == [False, True, False, False]


def test_the_first_optimizer_of_a_process_is_paid_for_before_the_clock() -> None:
    """torch imports ``torch._dynamo`` (1.2 s here) when a process builds its first
    ``torch.optim`` optimizer; in a fresh interpreter, an algorithm that builds one in ``run``
    imports it in ``warm_up`` (which the runner calls before the clock starts), not when it is
    constructed (a sweep constructs algorithms to read their inputs) nor, for one that builds
    no optimizer, at all."""
    code = (
        "import sys, torch\n"
        "from optbench.algorithms.first_order import SGD\n"
        "from optbench.algorithms.fault_injection import FaultInjection\n"
        "from optbench.problems.least_squares import LeastSquares\n"
        "seen = lambda: print('torch._dynamo' in sys.modules)\n"
        "sgd = SGD(lr=0.1); seen()\n"
        "FaultInjection().warm_up(LeastSquares()); seen()\n"
        "sgd.warm_up(LeastSquares()); seen()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False", "True"]
