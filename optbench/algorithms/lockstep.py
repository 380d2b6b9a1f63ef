"""Run a solver that drives its own loop (SciPy's ``minimize``) as an optbench generator.

``scipy.optimize.minimize`` runs to completion in one call; its per-iteration callback is turned
into one item per iteration by running the solver in a worker thread in lockstep with the
generator: the solver only advances inside the consumer's ``next()``, so the runner's clock,
budget and evaluations see one iteration at a time, and closing the generator stops the solver
(its callback raises ``StopIteration``, which SciPy >= 1.11 honours).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any


def lockstep(solve: Callable[[Callable[[Any], None]], Any]) -> Iterator[Any]:
    """Yield each callback argument of ``solve(callback)``, run in a worker thread that only
    advances while the consumer is inside ``next()``; returns the solver's result."""
    to_main: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
    to_worker: queue.Queue[str] = queue.Queue(maxsize=1)

    def callback(intermediate_result: Any) -> None:
        to_main.put(("step", intermediate_result))
        if to_worker.get() == "stop":
            raise StopIteration

    def work() -> None:
        try:
            to_main.put(("done", solve(callback)))
        except BaseException as exc:
            to_main.put(("error", exc))

    thread = threading.Thread(target=work, name="optbench-scipy", daemon=True)
    thread.start()
    finished = False
    try:
        while True:
            kind, payload = to_main.get()
            if kind == "done":
                finished = True
                return payload
            if kind == "error":
                finished = True
                raise payload
            yield payload
            to_worker.put("go")
    finally:
        if not finished:
            to_worker.put("stop")
            to_main.get()  # the solver's result after the stop
        thread.join(timeout=10)
