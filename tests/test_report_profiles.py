"""Report pieces for solver suites: performance and data profiles against hand-computed values,
success counts, missing expected values, the per-cell details table."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from optbench.platform.plots import data_profile, instance_costs, performance_profile
from optbench.platform.tables import (
    build_table,
    details_table,
    missing_values,
    success_counts,
    success_mask,
)

SPEC = OmegaConf.create(
    {
        "metric": "kkt",
        "goal": "min",
        "rows": ["problem.name"],
        "columns": ["algorithm"],
        "tune": [],
        "statistic": "final",
        "plots": [],
    }
)
SUCCESS = OmegaConf.create({"metric": "kkt", "threshold": 1e-4, "goal": "min"})


def suite_frame() -> pd.DataFrame:
    """Three problems x two solvers; solver b failed P3 (kkt too large) and never ran P4."""
    rows = [
        ("P1", "a", 1e-6, 10, "finished", "converged", 2.0),
        ("P1", "b", 1e-5, 20, "finished", "converged", 2.0),
        ("P2", "a", 1e-5, 40, "finished", "converged", 3.0),
        ("P2", "b", 1e-5, 40, "finished", "target", 3.0),
        ("P3", "a", 1e-7, 5, "finished", "converged", 4.0),
        ("P3", "b", 1.0, 99, "finished", "algorithm stopped: singular Jacobian", 4.0),
        ("P4", "a", np.nan, 7, "diverged", "non-finite evaluation metric", 5.0),
    ]
    frame = pd.DataFrame(
        rows,
        columns=[
            "problem.name",
            "algorithm",
            "metrics.kkt",
            "steps",
            "status",
            "stop_reason",
            "describe.n",
        ],
    )
    frame["seed"] = 0
    frame["run_id"] = [f"r{i}" for i in range(len(frame))]
    frame["mlflow_status"] = "FINISHED"
    frame["config_hash"] = frame["run_id"]
    frame["start_time"] = range(len(frame))
    return frame


def test_performance_profile_matches_hand_computation() -> None:
    costs = pd.DataFrame({"A": [1.0, 2.0, math.inf], "B": [2.0, 2.0, 4.0]})
    taus, rho = performance_profile(costs)
    # ratios A: 1, 1, inf; B: 2, 1, 1  ->  log2: A 0, 0, inf; B 1, 0, 0
    np.testing.assert_array_equal(taus, [0.0, 1.0])
    np.testing.assert_allclose(rho["A"], [2 / 3, 2 / 3])
    np.testing.assert_allclose(rho["B"], [2 / 3, 1.0])
    zero = pd.DataFrame({"A": [0.0], "B": [3.0]})  # zero cost: ratio 1 for the zero, inf else
    _, rho = performance_profile(zero)
    assert rho["A"].iloc[0] == 1.0 and rho["B"].iloc[-1] == 0.0


def test_data_profile_counts_instances_solved_within_a_cost() -> None:
    costs = pd.DataFrame({"A": [1.0, 3.0, math.inf], "B": [2.0, 2.0, 2.0]})
    alphas, share = data_profile(costs)
    np.testing.assert_array_equal(alphas, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(share["A"], [1 / 3, 1 / 3, 2 / 3])
    np.testing.assert_allclose(share["B"], [0.0, 1.0, 1.0])


def test_instance_costs_count_failures_and_missing_runs_as_infinite() -> None:
    frame = suite_frame()
    costs = instance_costs(
        frame, "steps", success_mask(frame, SUCCESS), ["algorithm"], ["problem.name"]
    )
    assert costs.loc["P1 | 0", "a"] == 10 and costs.loc["P1 | 0", "b"] == 20
    assert costs.loc["P3 | 0", "b"] == math.inf  # kkt 1.0: not solved
    assert costs.loc["P4 | 0", "a"] == math.inf  # diverged
    assert costs.loc["P4 | 0", "b"] == math.inf  # never ran
    _, rho = performance_profile(costs)
    assert rho["a"].iloc[0] == pytest.approx(3 / 4)  # best on P1, P2 (tie), P3
    assert rho["b"].iloc[-1] == pytest.approx(2 / 4)


def test_success_counts_missing_values_and_details() -> None:
    frame = suite_frame()
    assert success_mask(frame, SUCCESS).tolist() == [True, True, True, True, True, False, False]
    table = build_table(frame, SPEC)
    # outcome columns and problem facts vary within cells but are not configuration
    assert table.rows == ["problem.name"] and not table.notes
    counts = success_counts(frame, table, SUCCESS).set_index("algorithm")
    assert counts.loc["a", "solved"] == 3 and counts.loc["a", "runs"] == 4
    assert counts.loc["b", "solved"] == 2 and counts.loc["b", "runs"] == 3
    expected = {"problem.name": ["P1", "P2", "P3", "P4", "P5", "P6"]}
    assert missing_values(frame, expected) == {"problem.name": ["P5", "P6"]}
    assert missing_values(frame, {"problem.name": ["P1"]}) == {}
    details = details_table(frame, table, ["steps", "stop_reason", "describe.n"], SUCCESS)
    line = details.set_index(["problem.name", "algorithm"]).loc[("P3", "b")]
    assert line["steps"] == 99 and line["solved"] == 0 and line["runs"] == 1
    assert line["stop_reason"] == "algorithm stopped: singular Jacobian"
    assert line["describe.n"] == 4.0
