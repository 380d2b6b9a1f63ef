"""End to end through the real ``optbench`` and ``optbench-report`` programs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from scipy import stats

from optbench.platform.store import inspect
from tests.conftest import ROOT, assert_one_line, cli, main_in_process

SEARCH = f"hydra.searchpath=[file://{ROOT}/tests/configs]"


def experiment_runs(store: str, name: str) -> list:
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name(name)
    return client.search_runs([experiment.experiment_id], max_results=1000)


def test_sweep_nests_resumes_and_reports(
    cli_env: dict[str, str], store: str, runs_dir: Path
) -> None:
    args = ["-m", "experiment=test_grid", SEARCH, f"tracking.uri={store}"]
    first = cli(*args, env=cli_env)
    assert first.returncode == 0, first.stderr
    assert "8 jobs" in first.stdout and "8 finished" in first.stdout

    runs = experiment_runs(store, "test_grid")
    parents = [r for r in runs if r.data.tags.get("optbench.role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("optbench.role") == "run"]
    assert len(parents) == 1 and len(children) == 8
    parent = parents[0].info.run_id
    assert all(r.data.tags["mlflow.parentRunId"] == parent for r in children)
    assert all(r.info.status == "FINISHED" for r in runs)
    assert len({r.data.tags["optbench.config_hash"] for r in children}) == 8
    child = children[0].data
    assert child.params["budget.max_steps"] == "30" and "problem.condition" in child.params
    for tag in ("git_commit", "git_dirty", "seed", "device", "version.torch", "version.python"):
        assert f"optbench.{tag}" in child.tags

    again = cli(*args, env=cli_env)
    assert again.returncode == 0, again.stderr
    assert "8 skipped" in again.stdout
    assert len(experiment_runs(store, "test_grid")) == 9  # nothing new, same parent reopened

    # the report, checked against the runs' own final metrics
    report_dir = runs_dir / "reports" / "test_grid"
    table = pd.read_csv(report_dir / "table.csv")
    assert len(table) == 4 and set(table["n"]) == {2}
    for _, cell in table.iterrows():
        gaps = [
            r.data.metrics["gap"]
            for r in children
            if r.data.tags["optbench.algorithm"] == cell["algorithm"]
            and float(r.data.params["problem.condition"]) == cell["problem.condition"]
        ]
        assert cell["mean"] == pytest.approx(np.mean(gaps), rel=1e-12)
        half = stats.t.ppf(0.975, 1) * np.std(gaps, ddof=1) / math.sqrt(2)
        assert cell["ci95"] == pytest.approx(half, rel=1e-9)
    markdown = (report_dir / "table.md").read_text()
    assert "| adam" in markdown.replace("|:", "| ") or "adam" in markdown
    assert (report_dir / "convergence_gap_vs_step.png").stat().st_size > 1000
    html = (report_dir / "index.html").read_text()
    assert "data:image/png;base64" in html
    artifacts = [a.path for a in MlflowClient(store).list_artifacts(parent, "report")]
    assert "report/table.csv" in artifacts and "report/index.html" in artifacts

    # the report command alone gives the same table
    report = cli(
        "experiment=test_grid",
        SEARCH,
        f"tracking.uri={store}",
        env=cli_env,
        program="optbench-report",
    )
    assert report.returncode == 0, report.stderr
    assert pd.read_csv(report_dir / "table.csv").equals(table)


def test_failures_are_recorded_and_the_sweep_goes_on(cli_env: dict[str, str], store: str) -> None:
    result = cli(
        "-m",
        "problem=least_squares",
        "algorithm=fault_injection",
        "budget.max_steps=20",
        "algorithm.fail_at_step=null,3",
        "algorithm.nan_at_step=null,2",
        "experiment_name=faults",
        f"tracking.uri={store}",
        env=cli_env,
    )
    assert result.returncode == 1
    assert "4 jobs" in result.stdout
    assert (
        "1 failed" in result.stdout
        and "2 diverged" in result.stdout
        and "1 finished" in result.stdout
    )
    assert "InjectedFault: injected failure at step 3" in result.stdout
    runs = [r for r in experiment_runs(store, "faults") if r.data.tags["optbench.role"] == "run"]
    statuses = sorted(r.data.tags["optbench.status"] for r in runs)
    assert statuses == ["diverged", "diverged", "failed", "finished"]
    failed = next(r for r in runs if r.data.tags["optbench.status"] == "failed")
    assert failed.info.status == "FAILED" and "InjectedFault" in failed.data.tags["optbench.error"]


def test_a_sweep_counts_stalled_runs(cli_env: dict[str, str], store: str) -> None:
    result = cli(
        "-m",
        "problem=least_squares",
        "algorithm=fault_injection",
        "algorithm.freeze_at_step=null,3",
        "budget.max_steps=30",
        "budget.stall_steps=5",
        "experiment_name=stalls",
        f"tracking.uri={store}",
        env=cli_env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 jobs" in result.stdout and "1 finished, 1 stalled" in result.stdout
    assert "stalled: " in result.stdout
    assert "unchanged iterate and progress metrics" in result.stdout


@pytest.mark.parametrize(
    ("args", "needle", "console"),
    [
        (["algorithm=nope"], "algorithm/nope", True),
        (["seed=abc"], "seed", False),
        (["no_such_key=1"], "no_such_key", False),
        (["algorithm.lr=abc"], "algorithm.lr", False),
        (["algorithm.typo=1"], "algorithm.typo", False),
        (["problem.dataset=/no/such/file.svm"], "/no/such/file.svm", False),
        (["problem.dataset=BAD"], "line 2", True),
        (["device=cuda"], "device.type=cuda", False),
        (
            ["hydra.searchpath=[file://CFG]", "problem=malformed"],
            "malformed.yaml:3: malformed YAML",
            False,
        ),
        (
            ["problem=nlp_stub", SEARCH],
            "algorithm 'sgd' solves 'finite_sum' problems; 'nlp_stub' is 'nlp'",
            False,
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    args: list[str],
    needle: str,
    console: bool,
    cli_env: dict[str, str],
    tmp_path: Path,
    store: str,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``console``: through the installed console script in a subprocess; the other cases run
    its entry point in this process (the same code, without paying the imports again)."""
    import torch

    if "device=cuda" in args and torch.cuda.is_available():
        pytest.skip("CUDA is present")
    bad = tmp_path / "bad.svm"
    bad.write_text("+1 1:0.5\n-1 0:1\n")
    (tmp_path / "cfg" / "problem").mkdir(parents=True)
    (tmp_path / "cfg" / "problem" / "malformed.yaml").write_text("_target_: x\nn: [1, 2\n")
    args = [a.replace("BAD", str(bad)).replace("CFG", str(tmp_path / "cfg")) for a in args]
    args += ["budget.max_steps=3", f"tracking.uri={store}"]
    if console:
        result = cli(*args, env={**cli_env, "PYTHONPATH": str(ROOT)})
    else:
        result = main_in_process(capfd, monkeypatch, *args)
    assert_one_line(result, needle)


def test_logreg_schedules_experiment_smoke(
    cli_env: dict[str, str], store: str, runs_dir: Path
) -> None:
    """The paper preset at toy size: every schedule runs, refined after the run it reads."""
    result = cli(
        "-m",
        "experiment=logreg_schedules",
        "problem.dataset=heart_scale",
        "algorithm.lr=1.0",
        "seed=0",
        "budget.max_steps=40",
        "eval_every=20",
        f"tracking.uri={store}",
        env=cli_env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 finished" in result.stdout
    table = pd.read_csv(runs_dir / "reports" / "logreg_schedules" / "table.csv")
    assert sorted(table["algorithm.schedule"]) == ["cosine", "linear_decay", "refined"]
    assert (table["mean"] > 0).all() and (table["mean"] < 1).all()


def test_ctrl_c_ends_the_run_as_killed_and_keeps_its_metrics(
    cli_env: dict[str, str], store: str
) -> None:
    import os
    import signal
    import subprocess
    import time

    from tests.conftest import BIN

    env = {**os.environ, **cli_env}
    env.pop("MLFLOW_TRACKING_URI", None)
    process = subprocess.Popen(
        [
            str(BIN / "optbench"),
            "problem=least_squares",
            "algorithm=fault_injection",
            "algorithm.sleep_s=0.02",
            "budget.max_steps=100000",
            "eval_every=20",
            "experiment_name=interrupted",
            f"tracking.uri={store}",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as from a terminal: a shell that started pytest in the background ignores SIGINT
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    # the process creates the store: a client of MLflow's own opening it at the same moment
    # would migrate the same file (MLflow takes no lock), so it waits until the store is there
    database = Path(store.removeprefix("sqlite:///"))
    client = None
    run = None
    deadline = time.time() + 300
    while time.time() < deadline and run is None:
        time.sleep(0.5)
        if client is None:
            if inspect(database).kind != "current":
                continue
            client = MlflowClient(store)
        exp = client.get_experiment_by_name("interrupted")
        runs = client.search_runs([exp.experiment_id]) if exp else []
        if runs and len(client.get_metric_history(runs[0].info.run_id, "gap")) >= 2:
            run = runs[0]
    assert client is not None and run is not None
    time.sleep(1)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, out + err
    assert err.strip().splitlines()[-1].startswith("error: interrupted")
    assert "Traceback" not in err
    ended = client.get_run(run.info.run_id)
    assert ended.info.status == "KILLED" and ended.data.tags["optbench.status"] == "killed"
    gap = client.get_metric_history(run.info.run_id, "gap")
    assert len(gap) >= 2 and sorted(m.step for m in gap)[:2] == [0, 20]
