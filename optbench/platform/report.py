"""Reports: the logged runs of an experiment as comparison tables and plots, written to files.

``write_report`` reads the experiment's runs (``optbench.platform.results``), builds its table
(``optbench.platform.tables``) with the report's ``statistic`` of the metric (``final``: its last
evaluation; ``best``: the best of all its evaluations), draws its plots
(``optbench.platform.plots``) and writes Markdown, LaTeX, CSV and an HTML page (a jinja2
template) under ``runs/reports/<experiment>/``, also logged as artifacts of the latest sweep
parent run. Optional parts of the spec: ``also`` (more metrics at the chosen configurations),
``success`` (success counts per column; profiles' failures), ``expected`` (values with no
finished run are listed as missing, never dropped silently), ``details`` (a long per-cell table),
``claims`` (the paper's claims, decided on the chosen runs: ``optbench.platform.claims``; the
verdicts open the HTML page and are tagged ``claim.<id>.verdict`` on the sweep's parent run).

``default_spec`` is the report of a sweep without a ``report:`` block: its swept problem keys as
rows, its swept algorithm keys as columns, the problem's declared ``headline`` metric.
"""

from __future__ import annotations

import base64
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd
from omegaconf import OmegaConf

from optbench.platform import paths, results
from optbench.platform.claims import (
    ClaimResult,
    claims_markdown,
    decide_claims,
    parse_claims,
    verdict_tags,
    write_claims,
)
from optbench.platform.errors import ConfigError
from optbench.platform.plots import draw
from optbench.platform.schema import PlotSpec, ReportSpec, spec_value
from optbench.platform.tables import (
    Table,
    also_table,
    build_table,
    chosen_runs,
    common_n,
    details_table,
    missing_values,
    pivot,
    status_counts,
    success_counts,
    success_mask,
)
from optbench.platform.tracking import NullTracker

STATISTICS = ("final", "best")
#: how a cell's mark is shown, per format: (significantly best, not distinguishable from it)
STYLES = {
    "md": (("**", "**"), ("*", "*")),
    "tex": (("\\textbf{", "}"), ("\\textit{", "}")),
    "html": (("<b>", "</b>"), ("<i>", "</i>")),
}
LEGEND = (
    "bold: significantly best in its row; italic: not distinguishable from the row's best "
    "(paired over seeds, Holm, alpha 0.05)"
)


def _markdown(grid: pd.DataFrame) -> str:
    """A grid as a Markdown table, one column per row key (not a tuple per row)."""
    if isinstance(grid.index, pd.MultiIndex):
        return grid.reset_index().to_markdown(index=False)
    return grid.to_markdown()


def with_statistic(
    frame: pd.DataFrame, store: NullTracker, metrics: list[str], statistic: str, goal: str
) -> pd.DataFrame:
    """The runs with each of ``metrics`` replaced by its ``statistic`` over the run's logged
    evaluations: ``final`` (the last, as stored) or ``best`` (min or max by ``goal``)."""
    if statistic not in STATISTICS:
        raise ConfigError(f"report.statistic: '{statistic}' (known: {', '.join(STATISTICS)})")
    if statistic == "final" or frame.empty:
        return frame
    frame = frame.copy()
    for metric in metrics:
        column = f"{results.METRIC}{metric}"
        if column in frame:
            best = results.best_values(store, frame["run_id"], metric, goal)
            frame[column] = frame["run_id"].map(best)
    return frame


# -- 4. files -----------------------------------------------------------------------------------
@dataclass
class ReportResult:
    experiment: str
    out_dir: Path
    markdown: str
    files: list[Path]
    n_runs: int
    parent_run_id: str | None
    tracking_uri: str | None
    claims: list[ClaimResult] = field(default_factory=list)

    def describe(self) -> str:
        lines = [
            f"report of '{self.experiment}' ({self.n_runs} runs):",
            "",
            self.markdown,
            "",
        ]
        if self.claims:
            lines += ["claims:", "", claims_markdown(self.claims), ""]
        lines += [
            f"report:  {self.out_dir / 'index.html'}",
            "tables:  "
            + ", ".join(p.name for p in self.files if p.suffix in (".md", ".tex", ".csv")),
            f"mlflow:  {self.tracking_uri}"
            + (f" (parent run {self.parent_run_id})" if self.parent_run_id else ""),
        ]
        return "\n".join(lines)


def select_runs(
    frame: pd.DataFrame,
    only: Mapping[str, Sequence[Any]] | None = None,
    run_ids: Collection[str] | None = None,
) -> pd.DataFrame:
    """The runs among ``run_ids`` (when given) whose config keys take one of the values listed
    in ``only`` (keys that are not config columns of the runs, such as ``tracking.uri``, are
    ignored); values compare as text, as params are stored."""
    if frame.empty:
        return frame
    keep = pd.Series(True, index=frame.index)
    if run_ids is not None:
        keep &= frame["run_id"].isin(set(run_ids))
    params = set(results.param_columns(frame))
    for key, values in (only or {}).items():
        if key in params:
            wanted = {_text(v) for v in values}
            keep &= frame[key].map(_text).isin(wanted)
    return frame[keep].reset_index(drop=True)


def _text(value: Any) -> str:
    """A config value as text, numbers in one spelling (``1`` and ``1.0`` agree)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return repr(int(number)) if number.is_integer() else repr(number)


def headline(frame: pd.DataFrame) -> tuple[str, str] | None:
    """The headline metric and goal the runs' problem classes declare (``Problem.headline``);
    None when none does or they disagree."""
    from hydra.utils import get_class

    column = "problem._target_"
    if frame.empty or column not in frame:
        return None
    found = set()
    for target in frame[column].dropna().unique():
        try:
            found.add(getattr(get_class(str(target)), "headline", None))
        except Exception:  # a class no longer importable declares nothing
            found.add(None)
    return found.pop() if len(found) == 1 else None


def default_spec(frame: pd.DataFrame, swept: Sequence[str], metric: str | None = None) -> Any:
    """The report of a sweep without a ``report:`` block: rows are its swept problem keys,
    columns its swept algorithm keys (the ``problem`` / ``algorithm`` config names when nothing
    of theirs was swept but they differ between runs), the metric the problem's declared
    headline (unless ``metric`` is given), and a convergence plot of it. A ``ConfigError`` when
    there is no metric to report."""
    goal = "min"
    if metric is None:
        declared = headline(frame)
        if declared is None:
            targets = sorted(map(str, frame.get("problem._target_", pd.Series()).unique()))
            raise ConfigError(
                "report: no report: block, and the runs' problems declare no single headline "
                f"metric ({', '.join(targets) or 'no runs'}); pass report.metric=..."
            )
        metric, goal = declared

    def group(name: str) -> list[str]:
        keys = [k for k in swept if k == name or k.startswith(f"{name}.")]
        if not keys and name in frame and frame[name].nunique() > 1:
            keys = [name]
        return keys

    spec = OmegaConf.structured(ReportSpec)
    spec.metric, spec.goal = metric, goal
    spec.rows, spec.columns = group("problem"), group("algorithm")
    spec.plots = [OmegaConf.structured(PlotSpec(metric=metric, x="step"))]
    return spec


def with_changes(spec: Any, changes: Mapping[str, Any]) -> Any:
    """A typed copy of ``spec`` (None: the defaults) with ``changes`` (dotted key -> value)
    applied; a wrong key or type is a ``ConfigError`` naming ``report.<key>``."""
    from omegaconf.errors import OmegaConfBaseException

    typed = OmegaConf.structured(ReportSpec)
    try:
        if spec is not None:
            typed = OmegaConf.merge(typed, spec)
        for key, value in changes.items():
            OmegaConf.update(typed, key, value, merge=True)
        if OmegaConf.is_missing(typed, "metric"):
            raise ConfigError("report.metric: not set")
    except OmegaConfBaseException as exc:
        message = " ".join(str(exc).splitlines()[0].split())
        raise ConfigError(f"report.{getattr(exc, 'full_key', '') or ''}: {message}") from None
    return typed


def write_report(
    spec: Any,
    tracker: NullTracker,
    experiment: str,
    out_dir: Path | None = None,
    only: Mapping[str, Sequence[Any]] | None = None,
    run_ids: Collection[str] | None = None,
    swept: Sequence[str] = (),
    changes: Mapping[str, Any] | None = None,
    declared: Mapping[str, Sequence[Any]] | None = None,
) -> ReportResult:
    """Build the experiment's tables, claims and plots, write them, log them on the latest sweep
    run (with the claims' verdicts as tags). ``only`` / ``run_ids`` restrict the runs
    (``select_runs``); without a ``spec``, the ``default_spec`` of the ``swept`` keys;
    ``changes`` (dotted key -> value) override keys of the spec. ``declared``: the values the
    experiment's own sweep takes; those ``only`` leaves out leave their claims undecided."""
    if spec is not None:  # a wrong key fails before anything is read
        spec = with_changes(spec, changes or {})
    runs = select_runs(results.runs_frame(tracker), only, run_ids)
    if spec is None:
        spec = with_changes(default_spec(runs, swept, (changes or {}).get("metric")), changes or {})
    statistic, goal = spec_value(spec, "statistic"), spec_value(spec, "goal")
    also_metrics = list(spec_value(spec, "also") or [])
    claim_specs = spec_value(spec, "claims") or []
    parsed = parse_claims(claim_specs, spec_value(spec, "metric"), goal)
    frame = with_statistic(
        runs, tracker, [spec_value(spec, "metric"), *also_metrics], statistic, goal
    )
    for metric, claim_goal in {(c.metric, c.goal) for c in parsed}:
        if metric not in (spec_value(spec, "metric"), *also_metrics):  # the claim's own metric
            frame = with_statistic(frame, tracker, [metric], statistic, claim_goal)
    table = build_table(frame, spec)
    chosen = chosen_runs(frame, table)
    success = spec_value(spec, "success")
    claims = decide_claims(
        chosen,
        claim_specs,
        rows=table.rows,
        columns=table.columns,
        metric=table.metric,
        goal=table.goal,
        series=lambda run_ids, metric: _series(tracker, run_ids, metric),
        left_out={
            key: set(map(str, values)) - set(map(str, (only or {}).get(key, values)))
            for key, values in (declared or {}).items()
        },
        solved=None if success is None else success_mask(chosen, success),
    )
    expected = spec_value(spec, "expected")
    details = list(spec_value(spec, "details") or [])
    out_dir = out_dir or paths.runs_dir() / "reports" / experiment
    out_dir.mkdir(parents=True, exist_ok=True)
    seeds = common_n(table)
    over = (
        f"over {seeds} seed{'s' * (seeds != 1)}"
        if seeds
        else "over seeds, n per cell where it differs"
    )
    title = f"{statistic} {table.metric} ({table.goal}imised"
    title += f"; best {', '.join(table.tune)} per cell" if table.tune else ""
    title += f"; mean ± 95% CI {over})"
    if any(mark for mark in table.cells["mark"]):
        table.notes.append(LEGEND)

    files = []
    markdown = _markdown(pivot(table, *STYLES["md"]))
    also = [also_table(frame, table, m) for m in also_metrics]
    for other in also:
        grid = _markdown(pivot(other, *STYLES["md"]))
        markdown += f"\n\n{statistic} {other.metric} (mean ± 95% CI {over})\n\n{grid}"
        path = out_dir / f"table_{quote(other.metric, safe='')}.csv"  # oracle/samples: %2F
        other.cells.to_csv(path, index=False)
        files.append(path)
    sections: list[tuple[str, str]] = []  # (heading, markdown) after the tables
    if success is not None:
        counts = success_counts(frame, table, success)
        sign = "<=" if spec_value(success, "goal") == "min" else ">="
        rule = f"{spec_value(success, 'metric')} {sign} {spec_value(success, 'threshold'):g}"
        sections.append((f"Solved (finished and {rule})", counts.to_markdown(index=False)))
        counts.to_csv(out_dir / "success.csv", index=False)
        files.append(out_dir / "success.csv")
    statuses = status_counts(frame, table)
    if len(statuses):
        sections.append(("Runs by status", statuses.to_markdown(index=False)))
    if expected:
        missing = missing_values(frame, expected)
        lines = [
            f"- {key}: {len(values)} of {len(expected[key])} expected have no finished run: "
            + ", ".join(map(str, values))
            for key, values in missing.items()
        ] or ["- none: every expected value has a finished run"]
        sections.append(("Missing", "\n".join(lines)))
    if details or success is not None:
        long = details_table(frame, table, details, success)
        long.to_csv(out_dir / "details.csv", index=False)
        (out_dir / "details.md").write_text(long.to_markdown(index=False) + "\n")
        files += [out_dir / "details.csv", out_dir / "details.md"]
    markdown += "".join(f"\n\n{heading}\n\n{text}" for heading, text in sections)
    markdown += "".join(f"\n\n{note}" for note in table.notes)
    if claims:
        files += write_claims(claims, out_dir)
    for name, text in (
        ("table.md", f"{title}\n\n{markdown}\n"),
        ("table.tex", pivot(table, *STYLES["tex"]).to_latex(escape=False)),
    ):
        (out_dir / name).write_text(text)
        files.append(out_dir / name)
    for name, data in (
        ("table.csv", table.cells),
        ("configs.csv", table.all_configs),
        ("runs.csv", frame),
    ):
        data.to_csv(out_dir / name, index=False)
        files.append(out_dir / name)

    images = []
    for plot in spec.plots:
        path = draw(tracker, frame, table, plot, success, out_dir)
        images.append(path)
        files.append(path)

    spec_file = out_dir / "report.yaml"  # the spec this report was built from
    spec_file.write_text(OmegaConf.to_yaml(OmegaConf.create(spec), resolve=True))
    files.append(spec_file)

    html = _html(
        experiment, title, pivot(table, *STYLES["html"]), table, images, also, sections, claims
    )
    (out_dir / "index.html").write_text(html)
    files.append(out_dir / "index.html")
    parent = results.latest_sweep(tracker)
    if claims:
        tracker.set_tags(parent, verdict_tags(claims))
    tracker.log_artifacts(parent, out_dir, "report")
    return ReportResult(
        experiment,
        out_dir,
        f"{title}\n\n{markdown}",
        files,
        len(frame),
        parent,
        tracker.uri,
        claims,
    )


def _series(store: NullTracker, run_ids: list[str], metric: str) -> pd.DataFrame:
    """The evaluation series of ``metric`` of each run as a long frame (run_id, step, value)."""
    parts = [
        pd.DataFrame({"run_id": run_id, "step": values.index, "value": values.to_numpy()})
        for run_id in run_ids
        for values in [results.series(store, run_id, metric)]
    ]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _html(
    experiment: str,
    title: str,
    grid: pd.DataFrame,
    table: Table,
    images: list[Path],
    also: list[Table] | None = None,
    sections: list[tuple[str, str]] | None = None,
    claims: list[ClaimResult] | None = None,
) -> str:
    """The report page, rendered from ``templates/report.html.j2`` (jinja2, autoescaped; the
    tables are pandas HTML, marked safe)."""
    from jinja2 import Environment, PackageLoader, select_autoescape
    from markupsafe import Markup

    env = Environment(
        loader=PackageLoader("optbench.platform", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
    )
    chosen = None
    if table.tune:
        keys = table.rows + table.columns + table.tune + ["n"]
        chosen = Markup(table.cells[keys].to_html(index=False))
    return env.get_template("report.html.j2").render(
        experiment=experiment,
        title=title,
        table=Markup(grid.to_html(escape=False)),
        notes=table.notes,
        also=[
            (other.metric, Markup(pivot(other, *STYLES["html"]).to_html(escape=False)))
            for other in also or []
        ],
        claims=[
            {
                "id": c.id,
                "text": c.claim.text,
                "source": c.claim.source,
                "verdict": c.verdict,
                "evidence": c.evidence,
            }
            for c in claims or []
        ],
        chosen=chosen,
        sections=sections or [],
        images=[(image.stem, base64.b64encode(image.read_bytes()).decode()) for image in images],
    )
