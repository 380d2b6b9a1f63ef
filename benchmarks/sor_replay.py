"""Replaying a learner on the hindsight cost table vs solving every instance.

On a shifted-Laplacian sequence (the paper's 10 x 10 grid, high variance) of ``--instances``
systems, the same learner and seed run twice: solving each instance with the omega it plays
(``replay=false``), and reading the count from the cost table (``replay=true``; the counts are
the same, a test checks it). Reported per instance: the table's cost (20 solves, built once per
sequence and seed and shared by every learner), and the learner's loop with and without replay,
whose ratio is the saving on every run after the table exists.

    python -m benchmarks.sor_replay [--instances 2000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.common import write_result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=2000)
    args = parser.parse_args()

    from optbench.algorithms.relaxation import ChebCB, TsallisINF
    from optbench.contracts.context import RunContext
    from optbench.platform.cache import DiskCache
    from optbench.problems.sor_sequence.shifted_laplacian import ShiftedLaplacian

    T = args.instances
    with tempfile.TemporaryDirectory() as tmp:

        def problem(replay: bool) -> tuple[ShiftedLaplacian, RunContext]:
            p = ShiftedLaplacian(n_instances=T, replay=replay)
            ctx = RunContext.create(0, max_steps=T, cache=DiskCache(Path(tmp)))
            p.setup(ctx)
            return p, ctx

        p, _ = problem(False)
        tick = time.perf_counter()
        p.cost_table()
        table_s = time.perf_counter() - tick
        rows = {}
        for name, make in (("tsallis_inf", TsallisINF), ("chebcb", ChebCB)):
            seconds = {}
            for replay in (False, True):
                p, ctx = problem(replay)
                p.cost_table()  # loaded from the cache: not part of the loop
                tick = time.perf_counter()
                for _ in make().run(p, ctx):
                    pass
                seconds[replay] = time.perf_counter() - tick
            rows[name] = {
                "solve_s_per_instance": seconds[False] / T,
                "replay_s_per_instance": seconds[True] / T,
                "replay_speedup": seconds[False] / seconds[True],
            }
    write_result(
        "sor_replay",
        {"instances": T, "table_s_per_instance": table_s / T, "learners": rows},
    )


if __name__ == "__main__":
    main()
