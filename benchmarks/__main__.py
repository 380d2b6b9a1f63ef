"""``python -m benchmarks``: run every benchmark with its default settings."""

from __future__ import annotations

from benchmarks import inventory_simulator, metric_logging, runner_overhead

for module in (metric_logging, runner_overhead, inventory_simulator):
    print(f"== {module.__name__}")
    module.main()
