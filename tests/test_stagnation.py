"""Stagnation detection: fingerprints of iterates and the count of repeated steps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from optbench.platform.stagnation import StagnationWatch, fingerprint


@dataclass
class Iterate:
    x: np.ndarray
    lam: np.ndarray | None


@pytest.mark.parametrize(
    ("same", "other"),
    [
        (torch.tensor([1.0, 2.0], dtype=torch.float64), torch.tensor([1.0, 2.0 + 1e-15])),
        (torch.tensor([1.0, 2.0], dtype=torch.float64), torch.tensor([1.0, 2.0])),
        (torch.zeros(2, 3), torch.zeros(3, 2)),
        (np.array([0.5, -1.0]), np.array([0.5, -1.0 + 1e-16])),
        (Iterate(np.ones(2), None), Iterate(np.ones(2), np.zeros(1))),
        ({"a": 1.0, "b": [2, 3]}, {"a": 1.0, "b": [2, 4]}),
        (0.25, 0.25000000000000006),
    ],
)
def test_fingerprints_tell_equal_from_unequal(same: object, other: object) -> None:
    copy = same.clone() if isinstance(same, torch.Tensor) else same
    assert fingerprint(same) == fingerprint(copy)
    assert fingerprint(same) != fingerprint(other)


def test_a_module_is_fingerprinted_by_its_parameters() -> None:
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    before = fingerprint(net)
    assert fingerprint(net) == before
    with torch.no_grad():
        net.bias[0] += 1.0
    assert fingerprint(net) != before


def test_an_unknown_type_has_no_fingerprint() -> None:
    assert fingerprint(object()) is None
    assert fingerprint([1.0, object()]) is None


def test_watch_reports_after_the_given_number_of_repeated_steps() -> None:
    watch = StagnationWatch(steps=3)
    x = torch.tensor([1.0, 2.0])
    moving = [watch.observe(x * (1 + k), {"loss": float(k)}) for k in range(5)]
    assert not any(moving)
    frozen = [watch.observe(x.clone(), {"loss": 7.0}) for _ in range(6)]
    # step 1 of the freeze changed the metrics, step 2 records the fingerprint, steps 3-5 repeat
    assert frozen == [False, False, False, False, True, True]


def test_watch_resets_on_any_change_and_ignores_unknown_iterates() -> None:
    watch = StagnationWatch(steps=2)
    x = np.zeros(3)
    assert not watch.observe(x, {"loss": 1.0})
    assert not watch.observe(x, {"loss": 1.0})
    assert not watch.observe(x, {"loss": 1.0})
    assert not watch.observe(x + 1, {"loss": 1.0})  # the iterate moved, the metrics did not
    assert not watch.observe(x + 1, {"loss": 1.0})
    assert watch.observe(x + 1, {"loss": 1.0})
    blind = StagnationWatch(steps=1)
    assert not any(blind.observe(object(), {}) for _ in range(5))
    off = StagnationWatch(steps=None)
    assert not any(off.observe(x, {"loss": 1.0}) for _ in range(5))
