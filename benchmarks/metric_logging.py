"""Metric logging throughput: points per second through the run recorder vs raw MLflow.

- ``raw_log_batch``: a bare loop of ``MlflowClient.log_batch`` calls (1000 points each) into a
  sqlite store: what MLflow itself sustains.
- ``recorder_all_points``: the run recorder with every step's metrics sent to MLflow
  (``max_points_per_metric`` = steps): the recorder's own overhead over raw ``log_batch``.
- ``recorder_default``: the recorder as runs use it: every step's metrics kept in the
  ``progress.csv`` artifact, ``max_points_per_metric`` of them per key sent to MLflow.
  Points/s counts every point recorded and kept.

    python -m benchmarks.metric_logging [--steps 20000] [--keys 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.common import write_result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--keys", type=int, default=3)
    args = parser.parse_args()

    from mlflow.entities import Metric

    from optbench.platform.tracking import MlflowTracker, RunStatus, progress_stride

    tmp = Path(tempfile.mkdtemp(prefix="optbench-bench-"))
    tracker = MlflowTracker(f"sqlite:///{tmp}/mlflow.db", "bench", None, max_points=100)
    tracker.prepare()
    client = tracker.client
    points = args.steps * args.keys
    keys = [f"m{k}" for k in range(args.keys)]

    run_id = client.create_run(tracker.experiment_id).info.run_id
    now = int(time.time() * 1000)
    started = time.perf_counter()
    batch = []
    for step in range(args.steps):
        batch.extend(Metric(k, float(step), now, step) for k in keys)
        if len(batch) >= 1000:
            client.log_batch(run_id, metrics=batch)
            batch = []
    client.log_batch(run_id, metrics=batch)
    raw = points / (time.perf_counter() - started)

    def through_recorder(max_points: int) -> float:
        recorder = tracker.start_run(
            "bench", {}, {}, "", None, progress_stride(args.steps, max_points)
        )
        started = time.perf_counter()
        for step in range(1, args.steps + 1):
            recorder.progress(step, 0.0, {k: float(step) for k in keys})
        recorder.finish(RunStatus.finished, {})
        return points / (time.perf_counter() - started)

    write_result(
        "metric_logging",
        {
            "steps": args.steps,
            "keys": args.keys,
            "raw_log_batch_points_per_s": raw,
            "recorder_all_points_per_s": through_recorder(args.steps),
            "recorder_default_points_per_s": through_recorder(100),
            "recorder_default_points_sent_to_mlflow": args.keys * min(args.steps, 100),
        },
    )


if __name__ == "__main__":
    main()
