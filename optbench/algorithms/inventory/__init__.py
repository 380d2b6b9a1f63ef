"""Policy optimisation for inventory networks (kind ``inventory``): HDPO, REINFORCE and search
over heuristics, with the neural policy architectures of the ``configs/policy`` group."""

from optbench.algorithms.inventory.hdpo import HDPO
from optbench.algorithms.inventory.heuristic_search import HeuristicSearch
from optbench.algorithms.inventory.reinforce import Reinforce

__all__ = ["HDPO", "HeuristicSearch", "Reinforce"]
