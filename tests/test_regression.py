"""Regression gates: a baseline written from a quick experiment passes; a worse run fails,
naming the cell, the old and new values and the tolerance."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from optbench.platform.regression import compare, compare_claims, make_baseline
from tests.conftest import ROOT, cli

SEARCH = f"hydra.searchpath=[file://{ROOT}/tests/configs]"


def table(values: list[float]) -> dict[str, pd.DataFrame]:
    frame = pd.DataFrame(
        {
            "problem.condition": [10, 100],
            "algorithm": ["sgd", "sgd"],
            "mean": values,
            "std": [0.1, 0.1],
            "n": [2, 2],
            "ci95": [0.5, 0.5],
        }
    )
    return {"__main__": frame}


def test_compare_directions_and_tolerance() -> None:
    baseline = make_baseline("x", table([1.0, 2.0]), goal="min", metric="gap", rtol=0.05)
    assert compare(baseline, table([1.04, 1.5])) == []  # within 5%, or better
    worse = compare(baseline, table([1.06, 2.0]))
    assert len(worse) == 1 and worse[0].cell == {"problem.condition": 10, "algorithm": "sgd"}
    assert worse[0].old == 1.0 and worse[0].new == 1.06 and abs(worse[0].bound - 1.05) < 1e-12
    baseline["goal"] = "max"
    assert len(compare(baseline, table([0.9, 2.5]))) == 1  # 0.9 < 0.95 regresses when maximising
    missing = compare(baseline, {"__main__": table([1.0, 2.0])["__main__"].iloc[:1]})
    assert len(missing) == 1 and missing[0].new is None


@pytest.mark.slow
def test_check_command_passes_then_flags_a_regression(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    folder = tmp_path / "baselines"
    env = {**cli_env, "PYTHONPATH": str(ROOT)}
    update = cli(
        "--update",
        "--baselines",
        str(folder),
        "--override",
        SEARCH,
        "test_grid",
        program="optbench-check",
        env=env,
    )
    assert update.returncode == 0, update.stdout + update.stderr
    file = folder / "test_grid.yaml"
    baseline = yaml.safe_load(file.read_text())
    assert len(baseline["metrics"]) == 4 and baseline["goal"] == "min"
    # pretend an earlier version was twice as good on one cell: the rerun must be flagged
    baseline["metrics"][0]["value"] /= 2
    file.write_text(yaml.safe_dump(baseline))
    check = cli("--baselines", str(folder), "--override", SEARCH, program="optbench-check", env=env)
    assert check.returncode == 1, check.stdout + check.stderr
    flagged = [line for line in check.stdout.splitlines() if line.startswith("REGRESSED")]
    assert len(flagged) == 1 and "test_grid: gap" in flagged[0] and "baseline" in flagged[0]
    assert "3 of 4 metrics within tolerance" in check.stdout
    # --update rewrites the values but keeps the tolerances chosen for the experiment
    baseline = yaml.safe_load(file.read_text())
    baseline["atol"], baseline["rtol"] = 0.25, 0.1
    file.write_text(yaml.safe_dump(baseline))
    again = cli(
        "--update",
        "--baselines",
        str(folder),
        "--override",
        SEARCH,
        "test_grid",
        program="optbench-check",
        env=env,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    rewritten = yaml.safe_load(file.read_text())
    assert (rewritten["atol"], rewritten["rtol"]) == (0.25, 0.1)
    assert rewritten["metrics"][0]["value"] == 2 * baseline["metrics"][0]["value"]


def test_absolute_tolerance() -> None:
    baseline = make_baseline("x", table([1e-10, 2e-9]), goal="min", metric="kkt", atol=1e-4)
    assert compare(baseline, table([9e-5, 1e-9])) == []  # still under the absolute tolerance
    assert len(compare(baseline, table([2e-4, 1e-9]))) == 1


def test_claims_flipped_from_reproduced_to_contradicted_are_flagged() -> None:
    def claims(verdicts: dict[str, str]) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "claim": list(verdicts),
                "verdict": list(verdicts.values()),
                "evidence": [f"evidence of {c}" for c in verdicts],
            }
        )

    old = claims({"a": "reproduced", "b": "reproduced", "c": "contradicted", "d": "reproduced"})
    baseline = make_baseline("x", table([1.0, 2.0]), goal="min", metric="gap", claims=old)
    assert baseline["claims"][2] == {"id": "c", "verdict": "contradicted"}
    assert compare_claims(baseline, old) == []
    # a: flips; b: only inconclusive now (noise, not a regression); c was never reproduced;
    # d: no longer decided at all
    new = claims({"a": "contradicted", "b": "inconclusive", "c": "reproduced"})
    flipped = compare_claims(baseline, new)
    assert [f.claim for f in flipped] == ["a", "d"]
    assert flipped[0].line() == ("x: claim a: baseline reproduced, now contradicted: evidence of a")
    assert "not decided" in flipped[1].line()
