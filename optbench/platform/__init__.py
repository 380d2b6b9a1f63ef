"""The generic machinery of optbench: config schema, runner, tracking, sweeps, reports, devices.

Nothing in this package knows a concrete problem or algorithm; it sees only the contracts in
``optbench.problems.base`` and ``optbench.algorithms.base``. Concrete classes are tied in by the
``_target_`` paths of the configs.
"""
