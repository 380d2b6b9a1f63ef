"""Progress displays: job counting, and what the bars show."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from optbench.platform.progress import RunProgress, SweepProgress
from optbench.platform.runner import SUMMARY_FILE, RunSummary
from optbench.platform.sweep import count_jobs
from optbench.platform.tracking import RunStatus
from tests.conftest import compose


def test_count_jobs_of_a_grid_and_of_a_study() -> None:
    from omegaconf import read_write

    grid = compose(["experiment=logreg_schedules"], hydra=True)
    study = compose(["experiment=tune_logreg"], hydra=True)
    assert count_jobs(grid) == 3 * 4 * 4 * 8
    with read_write(grid.hydra.overrides):
        grid.hydra.overrides.task = ["seed=0,1,2", "algorithm.lr=1.0"]
    assert count_jobs(grid) == 3 * 4 * 1 * 3  # command-line lists replace the preset's
    assert count_jobs(study) == 30


def console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=150, color_system=None), out


def test_sweep_progress_counts_summaries_by_status(tmp_path: Path) -> None:
    for number, status in enumerate(["finished", "finished", "failed", "skipped"]):
        job = tmp_path / str(number)
        (job / ".hydra").mkdir(parents=True)
        summary = RunSummary(name=f"job{number}", status=RunStatus(status), config_hash="h")
        (job / SUMMARY_FILE).write_text(summary.to_json())
    (tmp_path / "4" / ".hydra").mkdir(parents=True)  # still running: no summary yet
    con, out = console()
    bar = SweepProgress(tmp_path, total=6, console=con, interval=0.05).start()
    bar.stop()
    text = out.getvalue()
    assert "4/6" in text and "failed=1 finished=2 skipped=1" in text


def test_run_progress_shows_steps_and_the_latest_evaluation() -> None:
    con, out = console()
    with RunProgress(total=100, metric="gap", console=con, min_interval=0.0) as bar:
        bar.evaluation(0, {"gap": 1.0, "time_s": 0.0})
        for step in range(1, 101):
            bar.step(step, step * 0.01)
        bar.evaluation(100, {"gap": 0.00123, "loss": 5.0, "time_s": 1.0})
    text = out.getvalue()
    assert "100/100" in text and "gap=0.00123" in text
