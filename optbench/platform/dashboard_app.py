"""The MLflow server app behind ``optbench ui``: MLflow's own, with a page that opens on runs.

Registered as the MLflow app plugin ``optbench`` (entry point group ``mlflow.app``), so
``mlflow server --app-name optbench`` serves it; importing this module builds MLflow's server.
Every MLflow route is MLflow's; only the page itself (``/``) is served here: MLflow's
``index.html`` with one script before MLflow's own that sets the browser defaults and each
optbench experiment's first page state (``optbench.platform.dashboard``), read from the store
on every page load.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import mlflow.server
from mlflow import MlflowClient
from mlflow.server.fastapi_app import app
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from optbench.platform.dashboard import browser_script, page_state, sweep_parents
from optbench.platform.tracking import KEY_METRIC

INDEX = Path(mlflow.server.__file__).parent / "js" / "build" / "index.html"


def experiment_states(client: Any) -> dict[str, dict[str, Any]]:
    """Each optbench experiment's first page state, by experiment id."""
    states = {}
    for experiment in client.search_experiments():
        metric = experiment.tags.get(KEY_METRIC)
        parents = sweep_parents(client, experiment.experiment_id)
        if metric or parents:
            states[experiment.experiment_id] = page_state(metric, parents)
    return states


def index(request: Request) -> HTMLResponse:
    page = INDEX.read_text()
    try:
        client = MlflowClient(os.environ[mlflow.server.BACKEND_STORE_URI_ENV_VAR])
        script = browser_script(experiment_states(client))
    except Exception:  # the page must open even if the store cannot be read here
        script = browser_script({})
    return HTMLResponse(page.replace("<head>", f"<head><script>{script}</script>", 1))


app.router.routes.insert(0, Route("/", index, methods=["GET"]))

__all__ = ["app"]
