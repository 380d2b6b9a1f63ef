"""``python -m benchmarks``: run every benchmark with its default settings."""

from __future__ import annotations

<<<<<<< HEAD
from benchmarks import launchers, metric_logging, runner_overhead, sor_kernel

for module in (metric_logging, runner_overhead, launchers, sor_kernel):
=======
from benchmarks import metric_logging, routing_throughput, runner_overhead

for module in (metric_logging, runner_overhead, routing_throughput):
>>>>>>> issue6
    print(f"== {module.__name__}")
    module.main()
