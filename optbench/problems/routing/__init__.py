"""Mixture-of-experts routing on a synthetic stream of router scores (kind ``routing_stream``)."""

from optbench.problems.routing.problem import RoutingStream

__all__ = ["RoutingStream"]
