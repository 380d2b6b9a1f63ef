"""Sweep throughput and per-job platform overhead, per launcher; start-up times.

- ``per_job``: the per-job cost of a sweep of trivial jobs (5 SGD steps on a tiny least-squares
  problem) through the real CLI with the default launcher and the embedded sqlite store: the
  slope between a sweep of ``--jobs`` jobs and one of a single job (process start-up excluded),
  in wall time and in CPU time (the children's user + system time: less sensitive to other
  processes on a shared machine). The same runs in a bare loop in this process (build, set up,
  iterate, evaluate; nothing tracked, no config composed) give the baseline; the difference is
  optbench's overhead per job, and 60 / slope the jobs per minute.
- ``throughput``: trivial jobs per minute inside a sweep (the store's run end times: start-up
  excluded) with optbench's in-process launcher (the default),
  Hydra's basic launcher, joblib with 2 workers and optbench's warm workers (2), and optionally
  Ray (``--ray``); and jobs of about 0.5 s (``--long-s``): 2 warm workers vs the in-process
  launcher, for jobs that wait (sleeping steps: the launcher's own parallelism, whatever the
  machine's load) and for jobs that compute (SGD steps; needs two idle cores).
- ``startup``: ``optbench --help``, a config error and ``--cfg job`` (wall time, and whether
  torch, mlflow or pandas were imported), and the time from starting a single run to its
  tracked run opening (right before its first step), against the floor under it: a fresh
  interpreter that only imports torch and takes one torch.optim SGD step, and one that only
  imports MLflow.
- per-run cost with the embedded store vs a tracking server vs no tracking, in this process.

Every figure is a median of ``--repeats`` measurements. The machine's load average is recorded.

    python -m benchmarks.launchers [--jobs 100] [--runs 30] [--repeats 3] [--ray]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import bare_run, compose, write_result

TRIVIAL = ["problem=least_squares", "problem.n_samples=50", "problem.dim=5", "budget.max_steps=5"]
LAUNCHERS = {
    "local": [],
    "hydra_basic": ["hydra/launcher=basic"],
    "joblib_2": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    "workers_2": ["hydra/launcher=parallel", "hydra.launcher.n_jobs=2"],
}
RAY = {"ray_local_2": ["hydra/launcher=ray_local", "hydra.launcher.ray.init.num_cpus=2"]}
HEAVY = ("torch", "mlflow", "pandas")


def _env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(OPTBENCH_RUNS_DIR=str(workdir), OPTBENCH_PROGRESS="0", RAY_AUTH_MODE="disabled")
    return env


def _timed(args: list[str], env: dict[str, str], check: bool = True) -> tuple[float, float]:
    """Wall and CPU seconds (the child's user + system) of a command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(args, env=env, check=check, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def sweep_seconds(
    launcher: list[str], jobs: int, workdir: Path, job: list[str] = TRIVIAL
) -> tuple[float, float]:
    program = Path(sys.executable).parent / "optbench"
    seeds = f"seed=range(0,{jobs})" if jobs > 1 else "seed=0"
    name = f"experiment_name=bench{jobs}_{time.monotonic_ns()}"
    return _timed([str(program), "-m", *launcher, *job, seeds, name], _env(workdir))


def per_job(launcher: list[str], jobs: int, workdir: Path, job: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds per job: the slope between a sweep of ``jobs`` and one of one."""
    one = sweep_seconds(launcher, 1, workdir, job)
    many = sweep_seconds(launcher, jobs, workdir, job)
    return (many[0] - one[0]) / (jobs - 1), (many[1] - one[1]) / (jobs - 1)


def sweep_rate(launcher: list[str], jobs: int, workdir: Path, job: list[str]) -> float:
    """Seconds per job inside a sweep of ``jobs`` jobs: the span from the first run's end to
    the last one's in the store, over ``jobs - 1`` (process and worker start-up excluded, which
    the slope of ``per_job`` cannot separate from the jobs when workers start in parallel)."""
    from mlflow import MlflowClient

    program = Path(sys.executable).parent / "optbench"
    name = f"rate{jobs}_{time.monotonic_ns()}"
    args = [str(program), "-m", *launcher, *job, f"seed=range(0,{jobs})", f"experiment_name={name}"]
    subprocess.run(args, env=_env(workdir), check=True, capture_output=True)
    client = MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    experiment = client.get_experiment_by_name(name)
    runs = client.search_runs(
        [experiment.experiment_id], "tags.`optbench.role` = 'run'", max_results=jobs + 10
    )
    ends = sorted(run.info.end_time for run in runs)
    return (ends[-1] - ends[0]) / 1000 / (len(ends) - 1)


def bare_seconds(runs: int, job: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds per run of the same runs in a bare loop in this process."""
    configs = [compose([*job, f"seed={i}", "tracking=none"]) for i in range(runs)]

    bare_run(configs[0])  # imports and first-call costs
    wall, cpu = time.perf_counter(), time.process_time()
    for cfg in configs:
        bare_run(cfg)
    return (time.perf_counter() - wall) / runs, (time.process_time() - cpu) / runs


def startup(workdir: Path) -> dict[str, float | str]:
    """Wall seconds of help, a config error and --cfg job; what they imported; seconds from
    the start of a single run to its tracked run's opening (its first step follows)."""
    env = _env(workdir)
    probe = (
        "import sys, runpy; sys.argv = ['optbench'] + sys.argv[1:]\n"
        "try:\n    runpy.run_module('optbench.platform.cli', run_name='x').get('main')()\n"
        "except SystemExit: pass\n"
        f"print('HEAVY', [m for m in {HEAVY!r} if m in sys.modules], file=sys.stderr)\n"
    )
    program = Path(sys.executable).parent / "optbench"
    out: dict[str, float | str] = {}
    for label, args in (
        ("help", ["--help"]),
        ("config_error", ["seed=abc"]),
        ("cfg_job", ["--cfg", "job", "problem=logreg"]),
    ):
        out[f"{label}_s"] = _timed([str(program), *args], env, check=False)[0]
        done = subprocess.run(
            [sys.executable, "-c", probe, *args], env=env, capture_output=True, text=True
        )
        heavy = [ln for ln in done.stderr.splitlines() if ln.startswith("HEAVY")]
        out[f"{label}_imports"] = heavy[-1].removeprefix("HEAVY ") if heavy else "?"
    from mlflow import MlflowClient

    uri = f"sqlite:///{workdir}/startup.db"
    started = time.time()
    subprocess.run(
        [str(program), *TRIVIAL, f"tracking.uri={uri}", "experiment_name=startup"],
        env=env,
        check=True,
        capture_output=True,
    )
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("startup")
    run = client.search_runs([experiment.experiment_id])[0]
    out["single_run_to_first_step_s"] = run.info.start_time / 1000 - started
    # the floor under it: a fresh interpreter that only imports torch and takes one step of
    # torch.optim's SGD (which imports torch._dynamo), and one that only imports MLflow
    first_step = (
        "import torch\np = torch.zeros(5, requires_grad=True)\n"
        "o = torch.optim.SGD([p], lr=0.1)\n(p * p).sum().backward()\no.step()\n"
    )
    out["floor_torch_sgd_first_step_s"] = _timed([sys.executable, "-c", first_step], env)[0]
    out["floor_mlflow_import_s"] = _timed(
        [sys.executable, "-c", "from mlflow import MlflowClient"], env
    )[0]
    return out


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


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--long-jobs", type=int, default=12)
    parser.add_argument("--long-s", type=float, default=0.5)
    parser.add_argument("--ray", action="store_true", help="also the local Ray launcher")
    parser.add_argument(
        "--only", nargs="*", default=None, help="per_job throughput long startup store"
    )
    args = parser.parse_args()
    parts = set(args.only or ["per_job", "throughput", "long", "startup", "store"])
    tmp = Path(tempfile.mkdtemp(prefix="optbench-bench-"))
    os.environ["OPTBENCH_RUNS_DIR"] = str(tmp / "inproc")
    result: dict[str, float | str] = {"load_before": " ".join(os.getloadavg().__str__().split())}

    if "per_job" in parts:
        bare = [bare_seconds(args.runs, TRIVIAL) for _ in range(args.repeats)]
        cli = [per_job([], args.jobs, tmp / "per_job", TRIVIAL) for _ in range(args.repeats)]
        bare_wall, bare_cpu = median([b[0] for b in bare]), median([b[1] for b in bare])
        job_wall, job_cpu = median([c[0] for c in cli]), median([c[1] for c in cli])
        result.update(
            bare_run_wall_s=bare_wall,
            bare_run_cpu_s=bare_cpu,
            sweep_job_wall_s=job_wall,
            sweep_job_cpu_s=job_cpu,
            overhead_per_job_wall_s=job_wall - bare_wall,
            overhead_per_job_cpu_s=job_cpu - bare_cpu,
            jobs_per_minute_wall=60 / job_wall,
            jobs_per_minute_cpu=60 / job_cpu,
            sweep_over_bare_wall=job_wall / bare_wall,
        )
    if "throughput" in parts:
        launchers = {**LAUNCHERS, **(RAY if args.ray else {})}
        for name, launcher in launchers.items():
            walls = [
                sweep_rate(launcher, args.jobs // 2, tmp / name, TRIVIAL)
                for _ in range(args.repeats)
            ]
            result[f"{name}_trivial_jobs_per_min"] = 60 / median(walls)
    if "long" in parts:
        steps = 10
        waiting = [
            *TRIVIAL[:3],
            "algorithm=fault_injection",
            f"algorithm.sleep_s={args.long_s / steps}",
            f"budget.max_steps={steps}",
        ]
        computing = [
            *TRIVIAL[:3],
            f"budget.max_steps={calibrate(args.long_s)}",
            "eval_every=100000",
        ]
        for label, job in (("sleeping", waiting), ("computing", computing)):
            local = median(
                [sweep_rate([], args.long_jobs, tmp / "l", job) for _ in range(args.repeats)]
            )
            workers = median(
                [
                    sweep_rate(LAUNCHERS["workers_2"], args.long_jobs, tmp / "w", job)
                    for _ in range(args.repeats)
                ]
            )
            result[f"long_{label}_local_s_per_job"] = local
            result[f"long_{label}_workers2_s_per_job"] = workers
            result[f"long_{label}_workers2_speedup"] = local / workers
    if "startup" in parts:
        runs = [startup(tmp / f"startup{i}") for i in range(args.repeats)]
        for key in runs[0]:
            values = [r[key] for r in runs]
            result[key] = median(values) if isinstance(values[0], float) else values[-1]
    if "store" in parts:
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
        )
    result["load_after"] = " ".join(os.getloadavg().__str__().split())
    write_result(
        "launchers", {"jobs": args.jobs, "runs": args.runs, "repeats": args.repeats, **result}
    )


def calibrate(seconds: float) -> int:
    """SGD steps on the trivial problem that take about ``seconds`` in a bare loop here."""
    wall, _ = bare_seconds(3, [*TRIVIAL[:3], "budget.max_steps=2000", "eval_every=100000"])
    return max(10, int(seconds / (wall / 2000)))


if __name__ == "__main__":
    main()
