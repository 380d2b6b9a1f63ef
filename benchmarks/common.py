"""Helpers shared by the benchmarks: composing configs, timing, memory bandwidth, writing
results."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig


def compose(overrides: list[str]) -> DictConfig:
    """A composed optbench config (with its ``hydra`` node) for ``overrides``."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from optbench.platform import paths, schema

    schema.register()
    with initialize_config_dir(str(paths.config_dir()), version_base="1.3"):
        return hydra_compose("config", overrides=overrides)


def bare_run(cfg: DictConfig) -> None:
    """One run's work without the platform: build, set up, iterate, evaluate at step 0, every
    ``eval_every`` steps and at the last step (as the runner does); nothing tracked."""
    from optbench.contracts.algorithm import Algorithm
    from optbench.contracts.context import RunContext
    from optbench.contracts.problem import Problem
    from optbench.platform.build import build
    from optbench.platform.cache import DiskCache
    from optbench.platform.paths import cache_dir

    problem = build(cfg.problem, Problem, "problem")
    algorithm = build(cfg.algorithm, Algorithm, "algorithm")
    ctx = RunContext.create(cfg.seed, max_steps=cfg.budget.max_steps, cache=DiskCache(cache_dir()))
    problem.setup(ctx)
    steps = algorithm.run(problem, ctx)
    problem.evaluate(next(steps).solution)
    for step in range(1, cfg.budget.max_steps + 1):
        solution = next(steps).solution
        if step % cfg.eval_every == 0 or step == cfg.budget.max_steps:
            problem.evaluate(solution)


def write_result(name: str, result: dict[str, Any]) -> Path:
    """Print ``result`` and store it as JSON under the project's runs/benchmarks/ (with machine
    facts), whatever runs directory the benchmark itself used."""
    from optbench.platform.paths import project_root

    result = {
        "benchmark": name,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        **result,
    }
    out = project_root() / "runs" / "benchmarks" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return out


def best_time(fn: Callable[[], Any], repeats: int = 3, warmup: bool = False) -> float:
    """The shortest of ``repeats`` timed calls of ``fn`` (after one untimed call if ``warmup``)."""
    if warmup:
        fn()
    best = np.inf
    for _ in range(repeats):
        tick = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - tick)
    return best


def copy_bandwidth(megabytes: int = 256, repeats: int = 5) -> float:
    """Bytes per second of a large copy into a preallocated array (read + write counted)."""
    src = np.ones(megabytes * 2**20 // 8)
    dst = np.empty_like(src)
    return 2 * src.nbytes / best_time(lambda: np.copyto(dst, src), repeats)
