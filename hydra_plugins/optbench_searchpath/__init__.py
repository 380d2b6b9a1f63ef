"""The current project's ``configs/`` ahead of optbench's built-in tree (Hydra loads search path
plugins only from ``hydra_plugins``)."""
