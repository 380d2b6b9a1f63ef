"""optbench's grid sweeper (Hydra loads sweeper plugins only from ``hydra_plugins``)."""
