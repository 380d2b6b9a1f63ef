"""``python -m benchmarks``: run every benchmark with its default settings."""

from __future__ import annotations

from benchmarks import metric_logging, routing_throughput, runner_overhead

for module in (metric_logging, runner_overhead, routing_throughput):
    print(f"== {module.__name__}")
    module.main()
