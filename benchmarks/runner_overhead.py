"""Runner overhead per run: a sweep of runs through the runner vs the same work in a bare loop.

The bare loop builds the problem and algorithm, iterates the generator for ``max_steps`` steps
and evaluates every ``eval_every`` steps, with no tracking. The runner path calls
``optbench.platform.runner.execute`` on the same composed configs, logging into a fresh sqlite
MLflow store (run creation, params, tags, config artifact, batched metrics, progress artifact,
resume lookup). Steps are calibrated so one bare run takes about ``--seconds`` seconds.
Overhead per run = (runner time - bare time) / runs; reported in seconds and as a percentage
of the bare run. Separately, the per-job cost of Hydra's multirun machinery (composing each
job's config twice, output dirs, logging) is measured through the real CLI.

    python -m benchmarks.runner_overhead [--runs 50] [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import bare_run, compose, write_result

PROBLEM = ["problem=least_squares", "algorithm=sgd", "algorithm.lr=0.05", "eval_every=1000"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()

    from optbench.platform.runner import execute
    from optbench.platform.tracking import make_tracker

    tmp = Path(tempfile.mkdtemp(prefix="optbench-bench-"))
    os.environ["OPTBENCH_RUNS_DIR"] = str(tmp / "runs")
    uri = f"sqlite:///{tmp}/mlflow.db"

    # calibrate: steps for a ~args.seconds bare run
    probe = compose([*PROBLEM, "budget.max_steps=2000", "tracking=none"])
    bare_run(probe)
    started = time.perf_counter()
    bare_run(probe)
    per_step = (time.perf_counter() - started) / 2000
    steps = max(100, int(args.seconds / per_step))

    configs = [
        compose(
            [
                *PROBLEM,
                f"budget.max_steps={steps}",
                f"seed={i}",
                f"tracking.uri={uri}",
                "experiment_name=bench",
            ]
        )
        for i in range(args.runs)
    ]
    started = time.perf_counter()
    for cfg in configs:
        bare_run(cfg)
    bare = time.perf_counter() - started

    tracker = make_tracker(configs[0].tracking, "bench")
    tracker.prepare()
    started = time.perf_counter()
    for cfg in configs:
        execute(cfg, tracker, name="bench", problem_name="least_squares", algorithm_name="sgd")
    runner = time.perf_counter() - started

    # the same sweep through the CLI: Hydra's per-job machinery (trivial jobs, 10 steps each)
    cli = Path(sys.executable).parent / "optbench"
    env = {**os.environ, "OPTBENCH_RUNS_DIR": str(tmp / "cli")}
    seeds = ",".join(str(i) for i in range(args.runs))
    timings = {}
    for label, sweep in (("one_job", "seed=0"), ("sweep", f"seed={seeds}")):
        started = time.perf_counter()
        subprocess.run(
            [
                str(cli),
                "-m",
                *PROBLEM,
                "budget.max_steps=10",
                sweep,
                f"tracking.uri=sqlite:///{tmp}/cli.db",
            ],
            env=env,
            check=True,
            capture_output=True,
        )
        timings[label] = time.perf_counter() - started
    hydra_per_job = (timings["sweep"] - timings["one_job"]) / (args.runs - 1)

    per_run = (runner - bare) / args.runs
    write_result(
        "runner_overhead",
        {
            "runs": args.runs,
            "steps_per_run": steps,
            "bare_s_per_run": bare / args.runs,
            "runner_s_per_run": runner / args.runs,
            "overhead_s_per_run": per_run,
            "overhead_pct_of_bare_run": 100 * per_run / (bare / args.runs),
            "ratio_runner_over_bare": runner / bare,
            "cli_multirun_s_per_trivial_job": hydra_per_job,
            "cli_single_job_process_s": timings["one_job"],
        },
    )


if __name__ == "__main__":
    main()
