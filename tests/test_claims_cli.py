"""Claims end to end, through the real command-line programs, on closed-form least squares:
one Newton step solves a quadratic, 30 SGD steps do not (tests/configs/experiment/test_claims).

The sweep's report holds the analytically known verdicts (claims.csv, claims.md, the HTML page
opening on them, tags on the parent run); a baseline keeps them; ``optbench-check claims`` fails
once a perturbation flips them (with no step, Newton and SGD both stay at x0 and tie exactly);
``optbench-report`` takes the sweep's overrides; a malformed claim is one line, exit 2."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
import yaml

from optbench.platform import results
from optbench.platform.regression import make_baseline, read_claims, read_tables
from optbench.platform.reproduction import INDEX_BEGIN, INDEX_END
from optbench.platform.tracking import MlflowTracker
from tests.conftest import ROOT, Outcome, cli, main_in_process

SEARCH = f"hydra.searchpath=[file://{ROOT}/tests/configs]"
EXPECTED = {
    "newton_beats_sgd": "reproduced",
    "sgd_beats_newton": "contradicted",
    "newton_reaches_optimum": "reproduced",
    "newton_ranks_first": "reproduced",
}


@pytest.mark.slow
def test_claims_end_to_end(
    cli_env: dict[str, str],
    runs_dir: Path,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sweep = cli("-m", "experiment=test_claims", SEARCH, env=cli_env)
    assert sweep.returncode == 0, sweep.stdout + sweep.stderr
    report = runs_dir / "reports" / "test_claims"
    claims = pd.read_csv(report / "claims.csv").set_index("claim")
    assert claims["verdict"].to_dict() == EXPECTED
    # 6 pairs, every one favouring Newton: the exact one-sided signed-rank p is 2**-6
    evidence = claims.loc["newton_beats_sgd", "evidence"]
    assert "p=0.016" in evidence and "Wilcoxon signed-rank, 6 seeds" in evidence
    assert "| newton_beats_sgd: Newton reaches a smaller gap" in (report / "claims.md").read_text()
    assert "claims:" in sweep.stdout and "contradicted" in sweep.stdout
    html = (report / "index.html").read_text()
    assert html.index("<h2>Claims</h2>") < html.index("<h2>Table</h2>") < html.index("<img")
    tracker = MlflowTracker(f"sqlite:///{runs_dir}/mlflow.db", "test_claims")
    parent = tracker.client.get_run(results.latest_sweep(tracker))
    tags = {k: v for k, v in parent.data.tags.items() if k.startswith("claim.")}
    assert tags == {f"claim.{k}.verdict": v for k, v in EXPECTED.items()}
    # the significantly best cell is bold, and the table says over how many seeds
    table = (report / "table.md").read_text()
    assert "over 6 seeds" in table and "| **" in table

    # the baseline keeps the verdicts; with no step the Newton claims flip and the gate fails
    folder = tmp_path / "baselines"
    folder.mkdir()
    baseline = make_baseline(
        "test_claims", read_tables(report), "min", "gap", claims=read_claims(report)
    )
    (folder / "test_claims.yaml").write_text(yaml.safe_dump(baseline))
    env = {**cli_env, "PYTHONPATH": str(ROOT)}
    check = cli(
        "--baselines",
        str(folder),
        "--override",
        SEARCH,
        "--override",
        "budget.max_steps=0",
        "claims",
        "test_claims",
        program="optbench-check",
        env=env,
    )
    assert check.returncode == 1, check.stdout + check.stderr
    flipped = sorted(line for line in check.stdout.splitlines() if line.startswith("FLIPPED"))
    assert [line.split()[3] for line in flipped] == [
        "newton_beats_sgd:",
        "newton_ranks_first:",
        "newton_reaches_optimum:",
    ]
    assert all("baseline reproduced, now contradicted" in line for line in flipped)
    assert "test_claims: 0 of 3 reproduced claims not contradicted" in check.stdout

    # the reports below run in this process (the same entry point as the program)
    def report_command(*args: str, env: dict[str, str] = cli_env) -> Outcome:
        return main_in_process(capfd, monkeypatch, *args, program="optbench-report", env=env)

    # the report takes the sweep's overrides: 3 seeds are too few for the signed-rank test
    three = report_command("experiment=test_claims", SEARCH, "seed=0,1,2")
    assert three.returncode == 0, three.stderr
    claims = pd.read_csv(report / "claims.csv").set_index("claim")
    assert claims.loc["newton_beats_sgd", "verdict"] == "inconclusive"
    assert "paired t, 3 seeds" in claims.loc["newton_beats_sgd", "evidence"]
    assert claims.loc["newton_beats_sgd", "seeds_needed"] > 3

    # a malformed claim: one line naming it, exit 2
    for override, message in (
        ("report.claims.0.kind=better", "report.claims[0].kind: Invalid value 'better'"),
        ("report.claims.0.a={algorithm:nope}", "no chosen run has algorithm=nope"),
        ("report.claims.0.metric=nope", "newton_beats_sgd: metric 'nope': no run logged"),
    ):
        bad = report_command("experiment=test_claims", SEARCH, override)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
        assert bad.stderr.startswith("error: ") and message in bad.stderr, bad.stderr

    # the reproduction record, generated into a project root of its own
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(ROOT / "configs", root / "configs")
    (root / "README.md").write_text(f"## Reproductions\n\n{INDEX_BEGIN}\n{INDEX_END}\n")
    record = report_command(
        "--record", "experiment=test_claims", SEARCH, env={**cli_env, "OPTBENCH_ROOT": str(root)}
    )
    assert record.returncode == 0, record.stderr
    text = (root / "docs" / "reproductions" / "test_claims.md").read_text()
    assert "## Verdicts: 4 claims: 3 reproduced, 1 contradicted" in text
    assert (
        root / "docs" / "reproductions" / "test_claims" / "convergence_gap_vs_step.png"
    ).exists()
    assert "optbench -m experiment=test_claims" in text
    readme = (root / "README.md").read_text()
    assert "[`test_claims`](docs/reproductions/test_claims.md)" in readme


def test_sweep_without_report_block_gets_the_default_report(
    cli_env: dict[str, str], runs_dir: Path
) -> None:
    sweep = cli(
        "-m",
        "problem=least_squares",
        "algorithm=newton,sgd",
        "problem.condition=10,100",
        "budget.max_steps=5",
        "eval_every=5",
        "experiment_name=adhoc",
        env=cli_env,
    )
    assert sweep.returncode == 0, sweep.stdout + sweep.stderr
    cells = pd.read_csv(runs_dir / "reports" / "adhoc" / "table.csv")
    # rows: the swept problem key; columns: the swept algorithm; metric: the headline (gap)
    assert sorted(cells.columns[:2]) == ["algorithm", "problem.condition"] and len(cells) == 4
    assert "final gap (minimised" in sweep.stdout
