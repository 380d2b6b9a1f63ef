"""Progress on the terminal (rich): a sweep's jobs, and a long single run's steps.

Shown only when stdout is a terminal (or ``OPTBENCH_PROGRESS=1``); logs and CI output stay
plain. The sweep bar polls the job summaries in the sweep directory, so it counts jobs run by
any launcher (in this process, joblib or Ray workers, SLURM nodes).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


def enabled() -> bool:
    flag = os.environ.get("OPTBENCH_PROGRESS")
    return flag == "1" if flag is not None else sys.stdout.isatty()


def _progress(console: Console | None) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


class SweepProgress:
    """A bar of the sweep's finished jobs, with counts by status, refreshed from disk."""

    def __init__(
        self,
        sweep_dir: Path,
        total: int | None,
        console: Console | None = None,
        interval: float = 0.5,
    ) -> None:
        self.sweep_dir, self.total, self.interval = sweep_dir, total, interval
        self._progress = _progress(console)
        self._task = self._progress.add_task("sweep", total=total, detail="")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._statuses: dict[str, str] = {}  # job dir -> status, each summary read once

    def start(self) -> SweepProgress:
        self._progress.start()
        self._thread.start()
        return self

    def refresh(self) -> None:
        """Count the summaries written since the last refresh (running jobs have none yet)."""
        from optbench.platform.runner import SUMMARY_FILE, RunSummary

        if not self.sweep_dir.exists():
            return
        for file in self.sweep_dir.glob(f"*/{SUMMARY_FILE}"):
            if file.parent.name not in self._statuses:
                summary = RunSummary.from_json(file.read_text())
                self._statuses[file.parent.name] = summary.status.value
        counts = Counter(self._statuses.values())
        detail = " ".join(f"{k}={v}" for k, v in sorted(counts.items()))
        self._progress.update(self._task, completed=len(self._statuses), detail=detail)

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except Exception:  # a half-written summary: read it next time
                continue

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            self.refresh()
        finally:
            self._progress.stop()


class RunProgress:
    """A bar of one run's steps with its algorithm time and latest evaluation."""

    def __init__(
        self,
        total: int,
        metric: str | None = None,
        console: Console | None = None,
        min_interval: float = 0.1,
    ) -> None:
        self.metric, self.min_interval = metric, min_interval
        self._progress = _progress(console)
        self._task = self._progress.add_task("run", total=total, detail="")
        self._last = 0.0
        self._evaluation = ""

    def __enter__(self) -> RunProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def step(self, steps: int, clock: float) -> None:
        now = time.monotonic()
        if now - self._last >= self.min_interval:
            self._last = now
            detail = f"time={clock:.2f}s {self._evaluation}"
            self._progress.update(self._task, completed=steps, detail=detail)

    def evaluation(self, steps: int, metrics: Mapping[str, float]) -> None:
        keys = [self.metric] if self.metric in metrics else [k for k in metrics if "/" not in k][:2]
        self._evaluation = " ".join(f"{k}={metrics[k]:.4g}" for k in keys)
        self._last = 0.0
        self.step(steps, metrics.get("time_s", 0.0))
