"""Config validation: keys and types checked against the class signature, before anything runs."""

from __future__ import annotations

from typing import Literal

import pytest
from omegaconf import OmegaConf

from optbench.algorithms.first_order import SGD
from optbench.contracts.algorithm import Algorithm
from optbench.contracts.errors import CompatibilityError, ConfigError
from optbench.contracts.problem import Problem, ProblemKind
from optbench.platform.build import build, check_compatible, coerce, validate_arguments


def node(**values: object):
    return OmegaConf.create({"_target_": "optbench.algorithms.first_order.SGD", **values})


def test_builds_with_int_coerced_to_float() -> None:
    sgd = build(node(lr=1, momentum=0.5, batch_size=8), Algorithm, "algorithm")
    assert isinstance(sgd, SGD) and sgd.lr == 1.0 and isinstance(sgd.lr, float)
    assert sgd.momentum == 0.5 and sgd.batch_size == 8  # keys of the base class reach it


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"lr": "abc"}, "algorithm.lr: expected float, got 'abc'"),
        ({"batch_size": 1.5}, "algorithm.batch_size: expected int, got 1.5"),
        ({"nesterov": "yes"}, "algorithm.nesterov: expected bool"),
        ({"typo": 1}, "algorithm.typo: unknown key for SGD"),
        ({"lr": -1}, "algorithm.lr: must be > 0"),
        ({"milestones": ["a"]}, "algorithm.milestones[0]: expected float, got 'a'"),
        ({"milestones": "a"}, "algorithm.milestones: expected list[float] | None, got 'a'"),
        ({"lr": float("nan")}, "algorithm.lr: must be a finite number, got nan"),
        ({"gamma": float("-inf")}, "algorithm.gamma: must be a finite number, got -inf"),
        ({"milestones": [0.5, float("inf")]}, "algorithm.milestones[1]: must be a finite number"),
    ],
)
def test_bad_values_name_the_key(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        build(node(**values), Algorithm, "algorithm")
    assert message in str(info.value)


def test_target_errors() -> None:
    with pytest.raises(ConfigError, match=r"cannot import 'no\.such\.Thing'"):
        build(OmegaConf.create({"_target_": "no.such.Thing"}), Algorithm, "algorithm")
    with pytest.raises(ConfigError, match="is not a Problem"):
        build(node(), Problem, "problem")


def test_coerce_optional_literal_and_required() -> None:
    assert coerce(None, int | None, "k") is None
    assert coerce(3, float | None, "k") == 3.0
    assert coerce("a", Literal["a", "b"], "k") == "a"
    with pytest.raises(ConfigError, match="expected one of a, b"):
        coerce("c", Literal["a", "b"], "k")

    class Needs:
        def __init__(self, x: int) -> None:
            self.x = x

    with pytest.raises(ConfigError, match=r"k\.x: required"):
        validate_arguments(Needs, {}, "k")


class _Nlp(Problem):
    kind = ProblemKind.NLP

    def setup(self, ctx):
        pass

    def evaluate(self, solution):
        return {}


def test_incompatible_pair_is_refused() -> None:
    with pytest.raises(CompatibilityError) as info:
        check_compatible(_Nlp(), SGD(), "cutest", "sgd")
    assert str(info.value) == "algorithm 'sgd' solves 'finite_sum' problems; 'cutest' is 'nlp'"
