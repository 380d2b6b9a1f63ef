"""The nlp family end to end through the real ``optbench`` program: the three AdaSketch
reproductions at toy size, their suite lists against the vendored suite file, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from optbench.contracts.context import default_data_dir
from optbench.problems.nlp.suites import load_suite
from tests.conftest import ROOT, main_in_process


def test_cutest_presets_match_the_vendored_suite() -> None:
    entries = load_suite("adasketch47", default_data_dir())
    paper = OmegaConf.load(ROOT / "configs/experiment/adasketch_cutest_paper.yaml")
    swept = str(paper.hydra.sweeper.params["problem.name"]).split(",")
    assert swept == [e.name for e in entries if e.loadable]  # all 41, in the suite's order
    assert list(paper.report.expected["problem.name"]) == [e.name for e in entries]
    quick = OmegaConf.load(ROOT / "configs/experiment/adasketch_cutest.yaml")
    subset = str(quick.hydra.sweeper.params["problem.name"]).split(",")
    assert set(subset) <= set(swept)
    missing = {e.name for e in entries if not e.loadable}
    assert set(quick.report.expected["problem.name"]) == set(subset) | missing


def test_cutest_suite_sweep_reports_success_missing_and_profiles(
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
        "experiment=adasketch_cutest",
        "problem.name=HS7,BT2",
        "algorithm=adasketch,sqp_newton",
        "seed=0",
        "budget.max_steps=100",
        f"tracking.uri={store}",
        env=cli_env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 jobs" in result.stdout and "4 finished" in result.stdout
    report = runs_dir / "reports" / "adasketch_cutest"
    counts = pd.read_csv(report / "success.csv").set_index("algorithm")
    assert counts.loc["adasketch", "solved"] == 2 and counts.loc["sqp_newton", "solved"] == 2
    details = pd.read_csv(report / "details.csv")
    assert (details["kkt"] <= 1e-4).all()
    assert details["stop_reason"].isin(["converged", "target"]).all()
    bt2 = details[details["problem.name"] == "BT2"]
    assert (abs(bt2["f"] - bt2["describe.f_star"]) <= 1e-4).all()  # LO SOLTN 0.0325682
    table = (report / "table.md").read_text()
    for name in ("SINVALNE", "TRIGON1NE", "HIMMELBE", "MOREBVNE", "DENSCHNCNE", "BA-L1"):
        assert name in table.split("Missing", 1)[1]
    assert "Solved (finished and kkt <= 0.0001)" in result.stdout
    for image in ("performance_profile_steps", "performance_profile_oracle_evaluations"):
        assert (report / f"{image}.png").stat().st_size > 1000


def test_pde_preset_runs_and_reports_scaling(
    cli_env: dict[str, str],
    store: str,
    runs_dir: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pde = main_in_process(
        capfd,
        monkeypatch,
        "-m",
        "experiment=adasketch_pde",
        "problem.N=2,3",
        "algorithm=sqp_newton,scipy_trust_constr",
        f"tracking.uri={store}",
        env=cli_env,
    )
    assert pde.returncode == 0, pde.stdout + pde.stderr
    details = pd.read_csv(runs_dir / "reports" / "adasketch_pde" / "details.csv")
    assert len(details) == 4 and (details["gap"] < 1e-3).all()
    newton = details[details["algorithm"] == "sqp_newton"]
    assert (newton["steps"] == 1).all()  # a QP: one exact Newton step
    assert (runs_dir / "reports" / "adasketch_pde" / "scaling_steps_vs_problem.N.png").exists()


def test_logreg_preset_composes_and_its_seed_draws_the_constraints(runs_dir: Path) -> None:
    from optbench.platform.runner import execute
    from optbench.platform.tracking import make_tracker
    from tests.conftest import compose

    finals = []
    for seed in (0, 1):
        cfg = compose(
            [
                "experiment=adasketch_logreg",
                "problem.dataset=sonar_scale",
                "algorithm=sqp_newton",
                f"seed={seed}",
                "tracking=none",
            ]
        )
        assert cfg.budget.target.metric == "kkt" and cfg.eval_every == 1
        tracker = make_tracker(cfg.tracking, cfg.experiment_name)
        summary = execute(
            cfg, tracker, name="t", problem_name="constrained_logreg", algorithm_name="sqp_newton"
        )
        assert summary.status.value == "finished" and summary.metrics["kkt"] <= 1e-4
        finals.append(summary.metrics["f"])
    assert finals[0] != finals[1]  # another seed, another A and b


def test_bad_nlp_input_is_one_line_through_the_cli(
    cli_env: dict[str, str],
    store: str,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The refusal path end to end (the other refusals are tested in-process)."""
    result = main_in_process(
        capfd,
        monkeypatch,
        "problem=cutest",
        "problem.name=HS21",
        "algorithm=adasketch",
        f"tracking.uri={store}",
        env=cli_env,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: problem.name: HS21 has 1 inequality")
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        (["algorithm=sgd"], "algorithm 'sgd' solves 'finite_sum' problems; 'cutest' is 'nlp'"),
        (["algorithm=adasketch", "algorithm.beta=0.9"], "algorithm.beta: must be in (0, 0.5)"),
        (["algorithm=adasketch", "problem.backend=pycutest"], "pip install pycutest"),
    ],
)
def test_bad_nlp_configs_name_the_key(overrides: list[str], needle: str, runs_dir: Path) -> None:
    from optbench.platform.errors import OptbenchError
    from optbench.platform.runner import execute
    from optbench.platform.tracking import make_tracker
    from tests.conftest import compose

    cfg = compose(["problem=cutest", *overrides, "tracking=none"])
    tracker = make_tracker(cfg.tracking, cfg.experiment_name)
    with pytest.raises(OptbenchError) as error:
        algorithm = overrides[0].split("=")[1]
        execute(
            cfg, tracker, name="t", problem_name="cutest", algorithm_name=algorithm, reraise=True
        )
    assert needle in str(error.value) and "\n" not in str(error.value)
