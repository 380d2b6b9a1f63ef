"""Oracle baselines for parameter_sequence problems: they read hindsight information through
the problem's oracle interface, which no online learner may use. Their config names start with
``oracle_`` so every report marks them.

- ``BestFixedOracle``: the grid omega whose total cost over the whole sequence is least (read
  from the problem's cost table), played at every instance.
- ``InstanceOptimalOracle``: each instance's own optimal omega (Young's formula
  ``1 + (beta / (1 + sqrt(1 - beta^2)))^2`` for SOR, a golden-section search for SSOR-PCG; see
  the problem), played at that instance.
Both still solve every instance through ``problem.solve``, so their costs are counted and timed
like any algorithm's.
"""

from __future__ import annotations

import numpy as np

from optbench.algorithms.relaxation import ParameterLearner
from optbench.contracts.context import RunContext
from optbench.contracts.parameter_sequence import ParameterSequenceProblem


class BestFixedOracle(ParameterLearner):
    """The best fixed omega in hindsight over the problem's ``oracle_grid`` (an oracle)."""

    oracle = True

    def start(self, problem: ParameterSequenceProblem, ctx: RunContext) -> None:
        totals = np.asarray(problem.cost_table()).sum(axis=0)
        self.omega = float(np.asarray(problem.oracle_grid)[int(np.argmin(totals))])

    def choose(self, t: int, context: float | None) -> float:
        return self.omega


class InstanceOptimalOracle(ParameterLearner):
    """Every instance's own optimal omega (an oracle)."""

    oracle = True

    def start(self, problem: ParameterSequenceProblem, ctx: RunContext) -> None:
        self.omegas = np.asarray(problem.instance_optimal_parameters(), dtype=float)

    def choose(self, t: int, context: float | None) -> float:
        return float(self.omegas[t])
