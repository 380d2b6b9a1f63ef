"""Two generic platform features: nested ``_target_`` nodes validated against their target's
signature (build.py), and ``report.also`` metrics reported for the chosen configurations
(report.py)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from optbench.contracts.algorithm import Algorithm
from optbench.contracts.errors import ConfigError
from optbench.platform.build import build
from optbench.platform.tables import also_table, build_table, pivot


class Part:
    def __init__(self, size: int, width: float = 1.0, mode: Literal["a", "b"] = "a") -> None:
        self.size, self.width, self.mode = size, width, mode


def make_part(size: int, scale: float = 2.0) -> tuple[int, float]:
    return size, scale


class Holder(Algorithm):
    accepts = frozenset()

    def __init__(self, part: Callable[..., Any] | Part, lr: float = 0.1) -> None:
        self.part, self.lr = part, lr

    def run(self, problem, ctx):  # pragma: no cover - never run
        yield from ()


def holder(part: dict[str, Any]):
    return OmegaConf.create(
        {
            "_target_": f"{__name__}.Holder",
            "part": {"_target_": f"{__name__}.{part.pop('_t')}", **part},
        }
    )


def test_nested_target_is_instantiated_and_coerced() -> None:
    built = build(holder({"_t": "Part", "size": 3, "width": 2}), Algorithm, "algorithm")
    assert isinstance(built.part, Part) and built.part.width == 2.0
    assert isinstance(built.part.width, float)


def test_nested_partial_may_leave_required_parameters_to_the_caller() -> None:
    built = build(holder({"_t": "Part", "_partial_": True, "width": 3}), Algorithm, "algorithm")
    assert isinstance(built.part, functools.partial)
    assert built.part(size=5).size == 5 and built.part(size=5).width == 3.0
    function = build(holder({"_t": "make_part", "_partial_": True, "scale": 4}), Algorithm, "a")
    assert function.part(size=1) == (1, 4.0)


@pytest.mark.parametrize(
    ("part", "message"),
    [
        ({"_t": "Part", "size": 3, "depth": 1}, "algorithm.part.depth: unknown key for Part"),
        ({"_t": "Part", "size": "x"}, "algorithm.part.size: expected int, got 'x'"),
        ({"_t": "Part", "size": 3, "mode": "c"}, "algorithm.part.mode: expected one of a, b"),
        ({"_t": "Part"}, "algorithm.part.size: required by Part but not set"),
        ({"_t": "make_part", "_partial_": True, "scal": 1}, "algorithm.part.scal: unknown key"),
        ({"_t": "Missing"}, "algorithm.part._target_: cannot import"),
    ],
)
def test_bad_nested_values_name_the_key(part: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        build(holder(part), Algorithm, "algorithm")
    assert str(info.value).startswith(message)


def runs() -> pd.DataFrame:
    rows = []
    for algorithm, lr, gaps, costs in (
        ("x", 0.1, [1.0, 2.0, 3.0], [10.0, 11.0, 12.0]),
        ("x", 1.0, [0.5, 0.6, 0.7], [20.0, 21.0, 25.0]),
        ("y", 0.1, [0.2, 0.2, math.nan], [5.0, 6.0, 7.0]),
    ):
        for seed, (gap, cost) in enumerate(zip(gaps, costs, strict=True)):
            status = "diverged" if math.isnan(gap) else "finished"
            rows.append(
                {
                    "problem": "p",
                    "algorithm": algorithm,
                    "algorithm.lr": lr,
                    "seed": seed,
                    "metrics.gap": gap,
                    "metrics.cost": cost,
                    "status": status,
                }
            )
    return pd.DataFrame(rows)


def test_also_metric_follows_the_chosen_configuration() -> None:
    spec = OmegaConf.create(
        {
            "metric": "gap",
            "goal": "min",
            "rows": ["problem"],
            "columns": ["algorithm"],
            "tune": ["algorithm.lr"],
            "plots": [],
        }
    )
    table = build_table(runs(), spec)
    extra = also_table(runs(), table, "cost").cells.set_index("algorithm")
    # x: lr 1.0 has the best gap, so the cost table shows lr 1.0's costs, not the lower ones
    assert extra.loc["x", "algorithm.lr"] == 1.0
    assert extra.loc["x", "mean"] == pytest.approx(np.mean([20.0, 21.0, 25.0]))
    # y: a diverged seed makes the cell diverged here as in the main table (not a mean over
    # the seeds that happened to survive)
    assert extra.loc["y", "n"] == 3 and extra.loc["y", "mean"] == math.inf
    grid = pivot(also_table(runs(), table, "cost"), ("**", "**"), ("*", "*"))
    # x has the best mean, but y was cheaper on 2 of the 3 seeds: not significantly best
    assert grid.loc["p", "x"] == "*22 ± 6.6*" and "diverged" in grid.loc["p", "y"]
    with pytest.raises(
        ConfigError, match=r"report\.also: no run logged 'nope' \(logged: cost, gap\)"
    ):
        also_table(runs(), table, "nope")
