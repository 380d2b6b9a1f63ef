"""A small mixture-of-experts character-level language model (kind ``routing_stream``)."""

from optbench.problems.moe_lm.problem import MoELanguageModelProblem

__all__ = ["MoELanguageModelProblem"]
