"""``python -m benchmarks``: run every benchmark with its default settings."""

from __future__ import annotations

from benchmarks import (
    inventory_simulator,
    launchers,
    metric_logging,
    nlp_iteration_cost,
    nlp_sketch_solver,
    routing_throughput,
    runner_overhead,
    sor_kernel,
    sor_replay,
)

for module in (
    metric_logging,
    runner_overhead,
    launchers,
    sor_kernel,
    sor_replay,
    routing_throughput,
    inventory_simulator,
    nlp_iteration_cost,
    nlp_sketch_solver,
):
    print(f"== {module.__name__}")
    module.main()
