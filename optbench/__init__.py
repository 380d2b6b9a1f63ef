"""optbench: a declarative experiment-and-benchmark platform for optimization research."""

__version__ = "0.1.0"
