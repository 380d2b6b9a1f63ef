"""Problems used only by the tests."""

from __future__ import annotations

from optbench.contracts.context import RunContext
from optbench.contracts.problem import Problem, ProblemKind


class NlpStub(Problem):
    """A problem of kind ``nlp`` with no oracles: only for the compatibility refusal."""

    kind = ProblemKind.NLP

    def setup(self, ctx: RunContext) -> None:
        pass

    def evaluate(self, solution: object) -> dict[str, float]:
        return {}
