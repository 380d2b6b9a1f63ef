"""``python -m benchmarks``: run every benchmark with its default settings."""

from __future__ import annotations

from benchmarks import metric_logging, nlp_iteration_cost, nlp_sketch_solver, runner_overhead

for module in (metric_logging, runner_overhead, nlp_iteration_cost, nlp_sketch_solver):
    print(f"== {module.__name__}")
    module.main()
