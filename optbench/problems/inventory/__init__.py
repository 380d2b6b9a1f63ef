"""Inventory networks (kind ``inventory``): Alvo, Russo and Kanoria, "Deep Reinforcement Learning
for Inventory Networks: Toward Reliable Policy Optimization" (2023-25)."""

from optbench.problems.inventory.problem import InventoryNetwork

__all__ = ["InventoryNetwork"]
