"""The MLflow dashboard (``optbench ui``, ``make ui``): the store the runs went to, opened on runs.

``optbench ui [--host H] [--port P] [overrides]`` composes the config as a run would (so
``OPTBENCH_RUNS_DIR``, ``MLFLOW_TRACKING_URI`` and ``tracking.uri=...`` point it where the runs
went), creates or upgrades an embedded store if it can write it, and serves it read-only with
``mlflow server --app-name optbench`` (``optbench.platform.dashboard_app``). A tracking server
already serves its own dashboard: its address is printed.

What a researcher sees first is set where MLflow 3.17 leaves room for it:

- MLflow 3.17 opens every experiment in the view its browser last chose, GenAI by default (the
  "Overview" page with empty traces charts), whatever the ``mlflow.experimentKind`` tag says,
  and opens its assistant panel on the first visit. The optbench app's page sets the browser's
  defaults (MLflow's own local-storage keys) to the model-training view and the assistant panel
  closed, only where the browser has no choice of its own yet;
- on the first visit of an optbench experiment, its runs table shows the experiment's key metric
  (``optbench.key_metric``: the report's metric, else the problem's headline) and its sweeps'
  parent runs unfolded; sweeps logged later are unfolded too unless folded by hand;
- runs are named ``<algorithm>@<problem> <overrides>`` with short keys (``run_name``).

Links printed by ``optbench ui`` open each experiment's runs table directly.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from optbench.platform.results import ROLE

#: the query string that opens an experiment in the model-training view
TRAINING_VIEW = "workflowType=machine_learning"

#: MLflow 3.17's browser settings (local storage, ``<key>_v<version>`` holding JSON) and the
#: values optbench sets when the browser has none: the training view, the assistant not opened.
BROWSER_DEFAULTS = {
    "mlflow.workflowType_v1": "machine_learning",
    "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": True,
    "mlflow.assistant.panelOpen_v1": False,
}
#: where MLflow 3.17 keeps an experiment page's state (columns, unfolded runs) in the browser
PAGE_STATE = "MLflowLocalStorage-1.1-ExperimentPage-{scope}-ReactComponentState"
#: the columns MLflow shows by default (source, models, dataset), kept after the key metric
DEFAULT_COLUMNS = ["attributes.`Source`", "attributes.`Models`", "attributes.`Dataset`"]


#: run before MLflow's page script: ``DATA`` is {"defaults": {key: value}, "pages": {key: state}}
BROWSER_JS = """(function () {
  try {
    var d = DATA, s = window.localStorage;
    for (var k in d.defaults) {
      if (s.getItem(k) === null) s.setItem(k, JSON.stringify(d.defaults[k]));
    }
    for (var p in d.pages) {
      var want = d.pages[p], have = s.getItem(p);
      if (have === null) { s.setItem(p, JSON.stringify(want)); continue; }
      var state = JSON.parse(have), open = state.runsExpanded || {}, changed = false;
      for (var r in want.runsExpanded) {
        if (!(r in open)) { open[r] = true; changed = true; }
      }
      if (changed) { state.runsExpanded = open; s.setItem(p, JSON.stringify(state)); }
    }
  } catch (e) {}
})();"""


def key_metric(cfg: Any) -> tuple[str, str] | None:
    """The metric an experiment is judged by: its report's ``metric`` and ``goal``, else the
    headline its problem class declares (``Problem.headline``); None when neither says."""
    report = cfg.get("report") if hasattr(cfg, "get") else None
    if report is not None and report.get("metric"):
        return str(report.metric), str(getattr(report.goal, "value", report.goal))
    target = cfg.problem.get("_target_") if hasattr(cfg.problem, "get") else None
    if not target:
        return None
    try:
        from hydra.utils import get_class

        headline = getattr(get_class(str(target)), "headline", None)
    except Exception:  # a bad _target_ is reported by the build step, not here
        return None
    return (str(headline[0]), str(headline[1])) if headline else None


def page_state(metric: str | None, parents: Iterable[str]) -> dict[str, Any]:
    """An experiment page's first state: the key metric as the first column, parents unfolded."""
    columns = ([f"metrics.`{metric}`"] if metric else []) + DEFAULT_COLUMNS
    return {"selectedColumns": columns, "runsExpanded": {run: True for run in parents}}


def browser_script(experiments: Mapping[str, dict[str, Any]]) -> str:
    """The script run before MLflow's own: set the browser defaults where none is set, and for
    each experiment (id -> page state) its page state on the first visit, else unfold the
    parents not seen before."""
    data = json.dumps(
        {
            "defaults": BROWSER_DEFAULTS,
            "pages": {PAGE_STATE.format(scope=json.dumps([i])): s for i, s in experiments.items()},
        }
    )
    return BROWSER_JS.replace("DATA", data.replace("</", "<\\/"))


#: the environment variable through which a sweep tells its jobs which keys it sweeps
SWEPT_KEYS_ENV = "OPTBENCH_SWEPT_KEYS"


def run_name(
    algorithm: str,
    problem: str,
    overrides: Sequence[str],
    exclude: Iterable[str],
    only: Collection[str] | None = None,
) -> str:
    """``<algorithm>@<problem>`` and the job's own overrides with the last part of each key
    (``lr=0.1 dataset=a9a seed=0``; the full key where two would read the same). ``only``: the
    keys to show (a sweep's job: the swept keys and the seed), else every override but the
    ``exclude`` keys and ``experiment_name`` (the experiment itself)."""
    skip = {*exclude, "problem", "algorithm", "experiment_name"}
    pairs = []
    for override in overrides:
        key, sep, value = override.partition("=")
        key = key.lstrip("+~")
        if sep and key not in skip and (only is None or key in only):
            pairs.append((key, value))
    short = [key.rsplit(".", 1)[-1] for key, _ in pairs]
    shown = [
        f"{s if short.count(s) == 1 else key}={value}"
        for s, (key, value) in zip(short, pairs, strict=True)
    ]
    return " ".join([f"{algorithm}@{problem}", *shown])


def experiment_links(uri: str, client: Any) -> list[str]:
    """One line per experiment with runs: its name and the link to its runs table."""
    lines = []
    for experiment in client.search_experiments(order_by=["name ASC"]):
        if experiment.name == "Default" and not client.search_runs(
            [experiment.experiment_id], max_results=1
        ):
            continue
        link = f"{uri}/#/experiments/{experiment.experiment_id}/runs?{TRAINING_VIEW}"
        lines.append(f"  {experiment.name}: {link}")
    return lines


def sweep_parents(client: Any, experiment_id: str) -> list[str]:
    """The run ids of the experiment's sweep parents."""
    runs = client.search_runs(
        [experiment_id], filter_string=f"tags.`{ROLE}` = 'sweep'", max_results=1000
    )
    return [run.info.run_id for run in runs]


def serve(db: Path, host: str, port: int) -> None:
    """Become ``mlflow server`` with the optbench app over the sqlite store ``db``, read-only
    (this process is replaced: Ctrl-C and signals reach the server itself)."""
    program = str(Path(sys.executable).parent / "mlflow")
    command = [
        program,
        "server",
        "--app-name",
        "optbench",
        "--backend-store-uri",
        f"sqlite:///file:{db}?mode=ro&uri=true",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(program, command, {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})


def ui_command(uri: str | None) -> str:
    """The command that serves the store at ``uri``: ``optbench ui``, with ``tracking.uri=...``
    when a plain ``optbench ui`` in this environment would serve another store."""
    from optbench.platform import paths

    default = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{paths.runs_dir()}/mlflow.db"
    if uri is None or uri == default:
        return "optbench ui"
    return f"optbench ui tracking.uri={uri}"
