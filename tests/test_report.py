"""Report tables: tuned selection, seed statistics, divergence handling, and unnoticed keys."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from scipy import stats

from optbench.contracts.errors import ConfigError
from optbench.platform.tables import build_table, pivot, status_counts

SPEC = OmegaConf.create(
    {
        "metric": "gap",
        "goal": "min",
        "rows": ["problem.dataset"],
        "columns": ["algorithm.schedule"],
        "tune": ["algorithm.lr"],
        "statistic": "final",
        "plots": [],
    }
)


def frame(extra: dict[str, list[object]] | None = None) -> pd.DataFrame:
    rows = []

    def add(schedule: str, lr: float, gaps: list[float], statuses: list[str] | None = None) -> None:
        for seed, gap in enumerate(gaps):
            status = statuses[seed] if statuses else "finished"
            rows.append(
                {
                    "problem.dataset": "A",
                    "algorithm.schedule": schedule,
                    "algorithm.lr": lr,
                    "seed": seed,
                    "metrics.gap": gap,
                    "status": status,
                }
            )

    add("s1", 0.1, [1.0, 2.0, 3.0])
    add("s1", 1.0, [0.5, 0.7, 0.9])
    add("s2", 0.1, [0.3, 0.3, 0.3])
    add("s2", 1.0, [0.01, math.nan, 0.01], ["finished", "diverged", "finished"])
    data = pd.DataFrame(rows)
    for key, values in (extra or {}).items():
        data[key] = values
    data["run_id"] = [f"r{i}" for i in range(len(data))]
    data["mlflow_status"] = "FINISHED"
    data["config_hash"] = data["run_id"]
    data["start_time"] = range(len(data))
    return data


def test_best_learning_rate_per_cell_with_t_interval() -> None:
    table = build_table(frame(), SPEC)
    cells = table.cells.set_index("algorithm.schedule")
    assert cells.loc["s1", "algorithm.lr"] == 1.0
    assert cells.loc["s1", "mean"] == pytest.approx(0.7)
    half = stats.t.ppf(0.975, 2) * np.std([0.5, 0.7, 0.9], ddof=1) / math.sqrt(3)
    assert cells.loc["s1", "ci95"] == pytest.approx(half)
    # lr=1.0 has a diverged seed: never chosen although its finite seeds are better
    assert cells.loc["s2", "algorithm.lr"] == 0.1
    assert cells.loc["s2", "mean"] == pytest.approx(0.3) and cells.loc["s2", "n"] == 3
    grid = pivot(table, ("**", "**"))
    assert grid.loc["A", "s2"].startswith("**0.3") and not grid.loc["A", "s1"].startswith("**")


def test_key_that_separates_runs_of_one_cell_is_added_to_rows() -> None:
    small, large = (
        frame({"algorithm.batch_size": [8] * 12}),
        frame({"algorithm.batch_size": [16] * 12}),
    )
    large["config_hash"] = large["run_id"] = [f"q{i}" for i in range(12)]
    table = build_table(pd.concat([small, large], ignore_index=True), SPEC)
    assert "algorithm.batch_size" in table.rows and table.notes
    # a key that only differs between cells (not within one) is left alone
    same = frame({"algorithm.momentum": [0.0] * 6 + [0.9] * 6})
    assert "algorithm.momentum" not in build_table(same, SPEC).rows


def test_also_table_reports_another_metric_at_the_chosen_configurations() -> None:
    from optbench.platform.tables import also_table

    data = frame()
    data["metrics.time"] = np.arange(len(data), dtype=float)
    table = build_table(data, SPEC)
    extra = also_table(data, table, "time")
    # s1 chose lr=1.0 (rows 3..5: times 3, 4, 5); s2 chose lr=0.1 (rows 6..8: times 6, 7, 8)
    means = dict(zip(extra.cells["algorithm.schedule"], extra.cells["mean"], strict=True))
    assert means == {"s1": 4.0, "s2": 7.0}
    assert extra.metric == "time" and (extra.cells["n"] == 3).all()


def test_statistic_best_takes_the_best_evaluation_of_each_run(runs_dir: Path, store: str) -> None:
    """``statistic: best`` reports, per run, the best of its logged evaluations (read back from
    the store independently here), ``final`` the last one; they differ on a noisy run."""
    from mlflow import MlflowClient

    from optbench.platform.report import write_report
    from optbench.platform.runner import execute
    from optbench.platform.tracking import make_tracker
    from tests.conftest import compose

    overrides = [
        f"tracking.uri={store}",
        "experiment_name=best",
        "problem.dataset=heart_scale",
        "algorithm.lr=30",  # constant and large: the gap jumps around
        "budget.max_steps=60",
        "eval_every=5",
    ]
    cfg = compose(overrides)
    tracker = make_tracker(cfg.tracking, cfg.experiment_name)
    tracker.prepare()
    summaries = [
        execute(
            compose([*overrides, f"seed={seed}"]),
            tracker,
            name="r",
            problem_name="logreg",
            algorithm_name="sgd",
        )
        for seed in (0, 1)
    ]
    client = MlflowClient(store)
    best = [min(m.value for m in client.get_metric_history(s.run_id, "gap")) for s in summaries]
    final = [s.metrics["gap"] for s in summaries]
    assert np.mean(best) < np.mean(final)
    spec = OmegaConf.create({**OmegaConf.to_container(SPEC), "rows": [], "columns": [], "tune": []})
    for statistic, expected in (("best", best), ("final", final)):
        spec.statistic = statistic
        result = write_report(spec, tracker, "best", runs_dir / statistic)
        cells = pd.read_csv(result.out_dir / "table.csv")
        assert cells["mean"].iloc[0] == pytest.approx(np.mean(expected), rel=1e-12)
        assert (result.out_dir / "index.html").read_text().startswith("<!doctype html>")
    # another metric whose name holds a slash: its table file is percent-encoded and read back
    from optbench.platform.regression import read_tables

    spec.statistic, spec.also = "final", ["progress/loss"]
    result = write_report(spec, tracker, "best", runs_dir / "slash")
    last = [
        max(client.get_metric_history(s.run_id, "progress/loss"), key=lambda m: m.step).value
        for s in summaries
    ]
    tables = read_tables(result.out_dir)
    assert tables["progress/loss"]["mean"].iloc[0] == pytest.approx(np.mean(last), rel=1e-12)
    spec.statistic = "median"
    with pytest.raises(ConfigError, match=r"report\.statistic"):
        write_report(spec, tracker, "best", runs_dir / "median")


def test_runs_are_counted_by_status_per_column() -> None:
    data = frame()
    data.loc[data.index[0], "status"] = "stalled"
    counts = status_counts(data, build_table(data, SPEC)).set_index("algorithm.schedule")
    assert counts.loc["s1", "stalled"] == 1 and counts.loc["s1", "finished"] == 5
    assert counts.loc["s2", "diverged"] == 1 and counts.loc["s2", "stalled"] == 0
