"""Helpers shared by the benchmarks: composing configs and writing results."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

from omegaconf import DictConfig


def compose(overrides: list[str]) -> DictConfig:
    """A composed optbench config (with its ``hydra`` node) for ``overrides``."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from optbench.platform import paths, schema

    schema.register()
    with initialize_config_dir(str(paths.config_dir()), version_base="1.3"):
        return hydra_compose("config", overrides=overrides)


def write_result(name: str, result: dict[str, Any]) -> Path:
    """Print ``result`` and store it as JSON under the project's runs/benchmarks/ (with machine
    facts), whatever runs directory the benchmark itself used."""
    from optbench.platform.paths import project_root

    result = {
        "benchmark": name,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        **result,
    }
    out = project_root() / "runs" / "benchmarks" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return out
