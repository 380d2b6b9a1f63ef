"""The generic machinery of optbench: config schema, runner, tracking, results, sweeps, reports,
devices.

Nothing in this package knows a concrete problem or algorithm; it sees only the contracts in
``optbench.contracts``. Concrete classes are tied in by the ``_target_`` paths of the configs.
"""
