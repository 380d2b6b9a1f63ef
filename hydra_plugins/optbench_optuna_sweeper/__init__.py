"""optbench's Optuna sweeper (Hydra loads sweeper plugins only from ``hydra_plugins``)."""
