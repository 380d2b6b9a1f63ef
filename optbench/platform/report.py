"""Reports: the logged runs of an experiment as comparison tables and plots, written to files.

``write_report`` reads the experiment's runs (``optbench.platform.results``), builds its table
(``optbench.platform.tables``) with the report's ``statistic`` of the metric (``final``: its last
evaluation; ``best``: the best of all its evaluations), draws its plots
(``optbench.platform.plots``) and writes Markdown, LaTeX, CSV and an HTML page (a jinja2
template) under ``runs/reports/<experiment>/``, also logged as artifacts of the latest sweep
parent run. Optional parts of the spec: ``also`` (more metrics at the chosen configurations),
``success`` (success counts per column; profiles' failures), ``expected`` (values with no
finished run are listed as missing, never dropped silently), ``details`` (a long per-cell table).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import OmegaConf

from optbench.platform import paths, results
from optbench.platform.errors import ConfigError
from optbench.platform.plots import draw
from optbench.platform.schema import spec_value
from optbench.platform.tables import (
    Table,
    also_table,
    build_table,
    details_table,
    missing_values,
    pivot,
    success_counts,
)
from optbench.platform.tracking import NullTracker

STATISTICS = ("final", "best")


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

    def describe(self) -> str:
        lines = [
            f"report of '{self.experiment}' ({self.n_runs} runs):",
            "",
            self.markdown,
            "",
            f"report:  {self.out_dir / 'index.html'}",
            "tables:  "
            + ", ".join(p.name for p in self.files if p.suffix in (".md", ".tex", ".csv")),
            f"mlflow:  {self.tracking_uri}"
            + (f" (parent run {self.parent_run_id})" if self.parent_run_id else ""),
        ]
        return "\n".join(lines)


def write_report(
    spec: Any, tracker: NullTracker, experiment: str, out_dir: Path | None = None
) -> ReportResult:
    """Build the experiment's tables and plots, write them, log them on the latest sweep run."""
    statistic = spec_value(spec, "statistic")
    also_metrics = list(spec_value(spec, "also") or [])
    frame = with_statistic(
        results.runs_frame(tracker),
        tracker,
        [spec_value(spec, "metric"), *also_metrics],
        statistic,
        spec_value(spec, "goal"),
    )
    table = build_table(frame, spec)
    success, expected = spec_value(spec, "success"), spec_value(spec, "expected")
    details = list(spec_value(spec, "details") or [])
    out_dir = out_dir or paths.runs_dir() / "reports" / experiment
    out_dir.mkdir(parents=True, exist_ok=True)
    title = f"{statistic} {table.metric} ({table.goal}imised"
    title += f"; best {', '.join(table.tune)} per cell" if table.tune else ""
    title += "; mean ± 95% CI over seeds)"

    files = []
    markdown = _markdown(pivot(table, ("**", "**")))
    also = [also_table(frame, table, m) for m in also_metrics]
    for other in also:
        grid = _markdown(pivot(other, ("**", "**")))
        markdown += f"\n\n{statistic} {other.metric} (mean ± 95% CI over seeds)\n\n{grid}"
        other.cells.to_csv(out_dir / f"table_{other.metric}.csv", index=False)
        files.append(out_dir / f"table_{other.metric}.csv")
    sections: list[tuple[str, str]] = []  # (heading, markdown) after the tables
    if success is not None:
        counts = success_counts(frame, table, success)
        sign = "<=" if spec_value(success, "goal") == "min" else ">="
        rule = f"{spec_value(success, 'metric')} {sign} {spec_value(success, 'threshold'):g}"
        sections.append((f"Solved (finished and {rule})", counts.to_markdown(index=False)))
        counts.to_csv(out_dir / "success.csv", index=False)
        files.append(out_dir / "success.csv")
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
    for name, text in (
        ("table.md", f"{title}\n\n{markdown}\n"),
        ("table.tex", pivot(table, ("\\textbf{", "}")).to_latex(escape=False)),
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

    html = _html(experiment, title, pivot(table, ("<b>", "</b>")), table, images, also, sections)
    (out_dir / "index.html").write_text(html)
    files.append(out_dir / "index.html")
    parent = results.latest_sweep(tracker)
    tracker.log_artifacts(parent, out_dir, "report")
    return ReportResult(
        experiment,
        out_dir,
        f"{title}\n\n{markdown}",
        files,
        len(frame),
        parent,
        tracker.uri,
    )


def _html(
    experiment: str,
    title: str,
    grid: pd.DataFrame,
    table: Table,
    images: list[Path],
    also: list[Table] | None = None,
    sections: list[tuple[str, str]] | None = None,
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
            (other.metric, Markup(pivot(other, ("<b>", "</b>")).to_html(escape=False)))
            for other in also or []
        ],
        chosen=chosen,
        sections=sections or [],
        images=[(image.stem, base64.b64encode(image.read_bytes()).decode()) for image in images],
    )
