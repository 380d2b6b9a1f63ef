"""optbench's Hydra launchers (``hydra_plugins.optbench_launcher.launcher``)."""
