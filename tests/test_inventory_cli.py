"""The inventory family through the real ``optbench`` program: a run, a small sweep of the
experiment preset with its report, and bad settings as one-line errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from optbench.contracts.algorithm import Algorithm
from optbench.contracts.errors import ConfigError
from optbench.contracts.problem import Problem
from optbench.platform.build import build
from tests.conftest import compose, main_in_process

TINY = [
    "problem.train_samples=256",
    "problem.train_periods=30",
    "problem.train_warmup=10",
    "problem.dev_samples=128",
    "problem.dev_periods=40",
    "problem.dev_warmup=10",
    "problem.test_samples=256",
    "problem.test_periods=200",
    "problem.test_warmup=50",
    "device.threads=1",
]


def test_single_run_prints_the_gap(
    cli_env: dict[str, str], capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    result = main_in_process(
        capfd,
        monkeypatch,
        "problem=one_store_backlogged",
        "algorithm=hdpo_parametric",
        "budget.max_steps=3",
        "eval_every=1",
        "tracking=none",
        *TINY,
        env=cli_env,
    )
    assert result.returncode == 0, result.stderr
    lines = {
        line.split()[0]: line.split()[1]
        for line in result.stdout.splitlines()[2:]
        if line.startswith("  ")
    }
    assert {"test_cost", "dev_cost", "gap_pct", "gap_crn_pct"} <= set(lines)
    assert 0 < float(lines["test_cost"]) < 20 and float(lines["gap_pct"]) > -1
    # progress: the sample sizes at start-up, then the epochs (the first one at least)
    assert "train 256 x 30 periods (warm-up 10), dev 128 x 40 periods" in result.stdout
    assert "HDPO: 256 train samples in 1 minibatch(es)" in result.stdout
    assert "HDPO epoch 1: train cost" in result.stdout


def test_quick_preset_sweeps_and_reports_cost_and_gap(
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
        "experiment=hdpo_inventory",
        f"tracking.uri={store}",
        "problem=one_store_backlogged,one_store_lost_sales",
        "problem.store_lead_time=1",
        "algorithm=hdpo,reinforce",
        "seed=0",
        "budget.max_steps=2",
        "eval_every=1",
        *TINY,
        env=cli_env,
    )
    assert result.returncode == 0, result.stderr
    assert "4 jobs" in result.stdout and "4 finished" in result.stdout
    report = runs_dir / "reports" / "hdpo_inventory"
    gaps = pd.read_csv(report / "table.csv")
    costs = pd.read_csv(report / "table_test_cost.csv")
    assert len(gaps) == len(costs) == 4
    assert set(gaps["problem"]) == {"one_store_backlogged", "one_store_lost_sales"}
    runs = pd.read_csv(report / "runs.csv")
    for _, cell in costs.iterrows():
        mine = runs[(runs["problem"] == cell["problem"]) & (runs["algorithm"] == cell["algorithm"])]
        assert len(mine) == 1 and cell["mean"] == pytest.approx(mine["metrics.test_cost"].iloc[0])
    assert "final test_cost (mean ± 95% CI over 1 seed)" in result.stdout
    assert (report / "convergence_progress_best_dev_cost_vs_step.png").stat().st_size > 1000


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["problem.store_lead_time=-1"], "problem.store_lead_time: must be >= 0, got -1"),
        (["problem.underage_cost=0"], "problem.underage_cost: must be > 0, got 0.0"),
        (["problem.demand_law=gamma"], "problem.demand_law: unknown 'gamma'"),
        (
            ["problem=serial_4", "problem.upstream_lead_times=[3,-2,4]"],
            "problem.upstream_lead_times[1]: must be >= 0, got -2",
        ),
        (["problem.test_warmup=6000"], "problem.test_warmup: must be in [0, test_periods)"),
        (["+algorithm.policy.depth=3"], "algorithm.policy.depth: unknown key for VanillaMLP"),
        (["algorithm.policy.activation=gelu"], "algorithm.policy.activation: expected one of"),
        (
            ["algorithm=heuristic_search", "algorithm.policy.family=newsboy"],
            "algorithm.policy.family: expected one of",
        ),
    ],
)
def test_bad_settings_name_the_key(overrides: list[str], message: str) -> None:
    cfg = compose(["problem=one_store_backlogged", "algorithm=hdpo", *overrides])
    with pytest.raises(ConfigError) as info:
        build(cfg.problem, Problem, "problem")
        build(cfg.algorithm, Algorithm, "algorithm")
    assert str(info.value).startswith(message)


def test_a_bad_setting_is_one_line_on_the_command_line(
    cli_env: dict[str, str], capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    result = main_in_process(
        capfd,
        monkeypatch,
        "problem=one_store_lost_sales",
        "problem.store_lead_time=-2",
        "tracking=none",
        env=cli_env,
    )
    assert result.returncode == 2
    assert result.stderr == "error: problem.store_lead_time: must be >= 0, got -2\n"


PRESETS = [
    "hdpo_inventory",
    "hdpo_inventory_paper",
    "hdpo_inventory_lost_sales_paper",
    "hdpo_inventory_serial_paper",
    "hdpo_inventory_warehouse_paper",
]


@pytest.mark.parametrize("preset", PRESETS)
def test_every_job_of_every_preset_builds(preset: str) -> None:
    """Each preset's sweep composes and validates for every algorithm and every first value."""
    cfg = compose([f"experiment={preset}"], hydra=True)
    params = {k: str(v).split(",") for k, v in cfg.hydra.sweeper.params.items()}
    assert params["seed"] == ["0", "1", "2"]
    assert {cfg.report.metric, *cfg.report.also} >= {"gap_pct", "gap_crn_pct", "test_cost"}
    firsts = [f"{k}={v[0]}" for k, v in params.items() if k != "algorithm"]
    for algorithm in params["algorithm"]:
        job = compose([f"experiment={preset}", *firsts, f"algorithm={algorithm}"])
        assert job.experiment_name in ("hdpo_inventory", "hdpo_inventory_paper")
        build(job.problem, Problem, "problem")
        build(job.algorithm, Algorithm, "algorithm")
