"""Every experiment preset under configs/experiment composes, and every algorithm of its sweep
builds and accepts the problem at the first value of every other sweep key (so a preset that
is never run in the tests, e.g. a paper-scale one, still cannot ship with a typo)."""

from __future__ import annotations

import pytest

from optbench.contracts.algorithm import Algorithm
from optbench.contracts.problem import Problem
from optbench.platform import paths
from optbench.platform.build import build, check_compatible
from tests.conftest import compose

PRESETS = sorted(p.stem for p in (paths.config_dir() / "experiment").glob("*.yaml"))


def first_values(params: dict[str, str]) -> tuple[list[str], list[str]]:
    """Overrides at the first value of each plain comma list (Optuna search spaces and
    ``range(...)`` are left at the preset's default), and the algorithms swept."""
    firsts, algorithms = [], []
    for key, value in params.items():
        values = str(value).split(",")
        if key == "algorithm":
            algorithms = values
        elif "(" not in str(value):
            firsts.append(f"{key}={values[0]}")
    return firsts, algorithms


@pytest.mark.parametrize("preset", PRESETS)
def test_every_algorithm_of_every_preset_builds(preset: str) -> None:
    cfg = compose([f"experiment={preset}"], hydra=True)
    firsts, algorithms = first_values(dict(cfg.hydra.sweeper.get("params") or {}))
    for algorithm in algorithms or [None]:
        chosen = [f"algorithm={algorithm}"] if algorithm else []
        job = compose([f"experiment={preset}", *firsts, *chosen])
        problem = build(job.problem, Problem, "problem")
        solver = build(job.algorithm, Algorithm, "algorithm")
        check_compatible(problem, solver, preset, algorithm or "default")
