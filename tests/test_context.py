"""The run context: independent random streams for the problem and the algorithm, and the cache
every run shares (atomic, computed once across processes, a damaged entry recomputed)."""

from __future__ import annotations

import multiprocessing
import pickle
import time
from pathlib import Path

import numpy as np
import torch

from optbench.algorithms.first_order import SGD
from optbench.contracts.context import RandomStream, RunContext
from optbench.platform.cache import DiskCache
from optbench.problems.least_squares import LeastSquares


def test_streams_are_reproducible_and_independent() -> None:
    a, b = RunContext.create(7), RunContext.create(7)
    assert np.array_equal(a.problem_random.numpy.random(5), b.problem_random.numpy.random(5))
    assert torch.equal(
        torch.rand(5, generator=a.algorithm_random.torch),
        torch.rand(5, generator=b.algorithm_random.torch),
    )
    c = RunContext.create(7)
    assert not np.array_equal(c.problem_random.numpy.random(5), c.algorithm_random.numpy.random(5))
    assert not np.array_equal(
        RunContext.create(8).problem_random.numpy.random(5),
        RunContext.create(7).problem_random.numpy.random(5),
    )
    # a named child is the same stream whatever was drawn from its parent before
    parent = RandomStream.root(3, "problem", torch.device("cpu"))
    first = parent.child("test").numpy.random(3)
    parent.numpy.random(100)
    assert np.array_equal(parent.child("test").numpy.random(3), first)
    assert parent.child("test").integer_seed() == parent.child("test").integer_seed()
    assert parent.child("test").integer_seed() != parent.child("train").integer_seed()


class NoisyLeastSquares(LeastSquares):
    """Least squares whose set-up also draws ``extra`` numbers from the problem's stream."""

    def __init__(self, extra: int, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.extra = extra

    def setup(self, ctx: RunContext) -> None:
        ctx.problem_random.numpy.random(self.extra)
        torch.rand(self.extra, generator=ctx.problem_random.torch)
        super().setup(ctx)


def sgd_path(extra: int, shared_stream: bool = False) -> list[torch.Tensor]:
    ctx = RunContext.create(11, max_steps=30)
    if shared_stream:  # the old convention: one stream for problem and algorithm
        ctx.algorithm_random = ctx.problem_random
    problem = NoisyLeastSquares(extra, n_samples=64, dim=4)
    problem.setup(ctx)
    steps = SGD(lr=0.1, batch_size=4).run(problem, ctx)
    return [next(steps).solution.clone() for _ in range(30)]


def test_a_draw_added_to_a_problem_setup_leaves_the_algorithm_draws_alone() -> None:
    base, more = sgd_path(0), sgd_path(17)
    assert all(torch.equal(x, y) for x, y in zip(base, more, strict=True))
    # with one shared stream the same extra draws move every minibatch (the old behaviour)
    shared, shared_more = sgd_path(0, True), sgd_path(17, True)
    assert not all(torch.equal(x, y) for x, y in zip(shared, shared_more, strict=True))


def test_cache_computes_once_and_recomputes_a_damaged_entry(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path)
    calls: list[int] = []

    def compute() -> dict[str, np.ndarray]:
        calls.append(1)
        return {"values": np.arange(4.0)}

    key = {"data": "abc", "l2": 1e-4}
    first = cache.get_or_compute("space", key, compute)
    again = DiskCache(tmp_path).get_or_compute("space", key, compute)
    assert len(calls) == 1 and np.array_equal(first["values"], again["values"])
    assert cache.get_or_compute("space", {**key, "l2": 0.0}, compute) is not None
    assert len(calls) == 2  # another key is another entry
    entry = cache.path("space", key)
    entry.write_bytes(pickle.dumps(first)[:10])  # truncated by a crash of another process
    assert np.array_equal(cache.get_or_compute("space", key, compute)["values"], np.arange(4.0))
    assert len(calls) == 3 and pickle.loads(entry.read_bytes())["values"].size == 4


def _slow_compute(log: str) -> float:
    with open(log, "a") as handle:
        handle.write("computed\n")
    time.sleep(0.5)
    return 42.0


def _worker(root: str, log: str) -> float:
    return DiskCache(Path(root)).get_or_compute("slow", "key", lambda: _slow_compute(log))


def test_parallel_jobs_compute_a_shared_entry_once(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    context = multiprocessing.get_context("fork")
    with context.Pool(4) as pool:
        values = pool.starmap(_worker, [(str(tmp_path / "cache"), str(log))] * 4)
    assert values == [42.0] * 4
    assert log.read_text().count("computed") == 1


def test_files_are_built_once_and_moved_into_place(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path)
    built: list[Path] = []

    def build(path: Path) -> None:
        built.append(path)
        path.write_text("library")

    first = cache.get_or_build("kernels", {"source": "v1"}, build, suffix=".so")
    second = cache.get_or_build("kernels", {"source": "v1"}, build, suffix=".so")
    assert first == second and first.read_text() == "library" and len(built) == 1
    assert built[0] != first and not built[0].exists()  # built beside it, then renamed
