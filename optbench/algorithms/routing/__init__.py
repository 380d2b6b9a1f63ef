"""Mixture-of-experts load balancing (problems of kind ``routing_stream``)."""

from optbench.algorithms.routing.algorithms import (
    AlfLb,
    AuxLoss,
    CapacityDrop,
    GreedyTopK,
    OptimalAssignment,
)

__all__ = ["AlfLb", "AuxLoss", "CapacityDrop", "GreedyTopK", "OptimalAssignment"]
