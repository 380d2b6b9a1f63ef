"""``python -m benchmarks``: run every benchmark with its default settings."""

from __future__ import annotations

from benchmarks import (
    inventory_simulator,
    launchers,
    metric_logging,
    mfac_step_cost,
    nlp_iteration_cost,
    nlp_sketch_solver,
    routing_throughput,
    runner_overhead,
    sor_kernel,
    sor_replay,
    sso_inner_cost,
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
    mfac_step_cost,
    sso_inner_cost,
):
    print(f"== {module.__name__}")
    module.main()
