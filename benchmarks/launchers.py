"""Sweep throughput per launcher, and per-run tracking overhead: embedded store vs server.

- Jobs per minute for trivial jobs (5 SGD steps on a tiny least-squares problem) through the
  real CLI with the basic launcher, joblib with 2 workers (``hydra/launcher=parallel``) and a
  private local Ray instance (``hydra/launcher=ray_local``). Each is the slope between a sweep of
  ``--jobs`` jobs and one of a single job, so process start-up is excluded.
- Per-run cost of the same trivial run through the runner in this process, logging to the
  embedded sqlite store vs to a local ``mlflow server`` over HTTP, and with no tracking.

    python -m benchmarks.launchers [--jobs 40] [--runs 30]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import compose, write_result

TRIVIAL = ["problem=least_squares", "problem.n_samples=50", "problem.dim=5", "budget.max_steps=5"]
LAUNCHERS = {
    "basic": [],
    "joblib_2": ["hydra/launcher=parallel", "hydra.launcher.n_jobs=2"],
    "ray_local_2": ["hydra/launcher=ray_local", "hydra.launcher.ray.init.num_cpus=2"],
}


def sweep_seconds(launcher: list[str], jobs: int, workdir: Path) -> float:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(OPTBENCH_RUNS_DIR=str(workdir), OPTBENCH_PROGRESS="0", RAY_AUTH_MODE="disabled")
    program = Path(sys.executable).parent / "optbench"
    seeds = f"seed=range(0,{jobs})" if jobs > 1 else "seed=0"
    started = time.perf_counter()
    subprocess.run(
        [str(program), "-m", *launcher, *TRIVIAL, seeds, f"experiment_name=bench{jobs}"],
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def per_run_seconds(uri: str | None, runs: int) -> float:
    from optbench.platform.runner import execute
    from optbench.platform.tracking import make_tracker

    tracking = [f"tracking.uri={uri}"] if uri else ["tracking=none"]
    configs = [
        compose([*TRIVIAL, f"seed={i}", *tracking, "experiment_name=bench"]) for i in range(runs)
    ]
    tracker = make_tracker(configs[0].tracking, "bench")
    tracker.prepare()
    started = time.perf_counter()
    for cfg in configs:
        execute(cfg, tracker, name="bench", problem_name="p", algorithm_name="a")
    return (time.perf_counter() - started) / runs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="optbench-bench-"))
    os.environ["OPTBENCH_RUNS_DIR"] = str(tmp / "inproc")

    result: dict[str, float] = {}
    for name, launcher in LAUNCHERS.items():
        one = sweep_seconds(launcher, 1, tmp / name)
        many = sweep_seconds(launcher, args.jobs, tmp / name)
        result[f"{name}_jobs_per_min"] = 60 * (args.jobs - 1) / (many - one)
        result[f"{name}_startup_s"] = one

    from optbench.platform import server

    process, uri = server.start(tmp / "server.db", tmp / "artifacts")
    try:
        none = per_run_seconds(None, args.runs)
        embedded = per_run_seconds(f"sqlite:///{tmp}/embedded.db", args.runs)
        served = per_run_seconds(uri, args.runs)
    finally:
        server.stop(process)
    result.update(
        run_s_no_tracking=none,
        run_s_embedded_sqlite=embedded,
        run_s_tracking_server=served,
        tracking_overhead_s_embedded=embedded - none,
        tracking_overhead_s_server=served - none,
        server_over_embedded_overhead=(served - none) / (embedded - none),
    )
    write_result("launchers", {"jobs": args.jobs, "runs": args.runs, **result})


if __name__ == "__main__":
    main()
