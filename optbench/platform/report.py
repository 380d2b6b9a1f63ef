"""Reports: the logged runs of an experiment as comparison tables and plots.

1. ``load_runs``: every run of the experiment read back from the tracking store into a tidy
   pandas frame, one row per run: config params (dotted keys, numbers coerced), the problem and
   algorithm config names (``problem``, ``algorithm``), final metrics (``metrics.<name>``: the
   value at the last logged step), status tags, the run's ``steps`` and ``stop_reason``, and the
   problem's ``describe()`` facts (``describe.<name>``). Failed and killed runs
   are dropped; of runs with the same config hash the latest counts.
2. ``aggregate``: the ``statistic`` of the report metric per configuration, over seeds: mean,
   std, 95% t-interval half-width, n. A diverged run counts as the worst possible value, so a
   configuration with one diverged seed is never chosen as the best.
3. ``build_table``: per cell (``rows`` x ``columns``), the configuration of the ``tune`` keys
   with the best mean. A config key that still differs between runs of one cell and seed is
   added to the rows, so no two different configurations are ever averaged together.
4. ``write_report``: Markdown, LaTeX, CSV and an HTML page (tables + embedded PNG plots) under
   ``runs/reports/<experiment>/``, also logged as artifacts of the latest sweep parent run.
   Optional parts of the spec: ``success`` (success counts per column; profiles' failures),
   ``expected`` (values with no finished run are listed as missing, never dropped silently),
   ``details`` (a long per-cell table of more values), plots of every kind in ``plots.py``.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import OmegaConf
from scipy import stats

from optbench.platform import paths
from optbench.platform.errors import ConfigError
from optbench.platform.schema import spec_value
from optbench.platform.tracking import TAG, MlflowTracker, Tracker

METRIC = "metrics."
DESCRIBE = "describe."
SEED = "seed"
#: run columns that are outcomes, not configuration.
OUTCOMES = ("steps", "stop_reason")


# -- 1. runs -> tidy frame ----------------------------------------------------------------------
def load_runs(tracker: Tracker) -> pd.DataFrame:
    """One row per finished run of the tracker's experiment (latest per config hash)."""
    assert isinstance(tracker, MlflowTracker)
    rows: list[dict[str, Any]] = []
    token = None
    while True:
        page = tracker.client.search_runs(
            [tracker.experiment_id],
            filter_string=f"tags.`{TAG}role` = 'run'",
            max_results=5000,
            page_token=token,
        )
        for run in page:
            row: dict[str, Any] = dict(run.data.params)
            row.update({f"{METRIC}{k}": v for k, v in run.data.metrics.items()})
            tags = run.data.tags
            row.update(
                problem=tags.get(f"{TAG}problem", ""),
                algorithm=tags.get(f"{TAG}algorithm", ""),
                run_id=run.info.run_id,
                mlflow_status=run.info.status,
                status=tags.get(f"{TAG}status", ""),
                config_hash=tags.get(f"{TAG}config_hash", run.info.run_id),
                start_time=run.info.start_time,
                steps=tags.get(f"{TAG}steps"),
                stop_reason=tags.get(f"{TAG}stop_reason", ""),
            )
            row.update(
                {
                    DESCRIBE + key[len("problem.") :]: value
                    for key, value in tags.items()
                    if key.startswith("problem.")
                }
            )
            rows.append(row)
        token = page.token
        if not token:
            break
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame = frame[frame["mlflow_status"] == "FINISHED"]
    frame = frame.sort_values("start_time").drop_duplicates("config_hash", keep="last")
    for column in frame.columns:
        if column.startswith(METRIC) or column in ("start_time",):
            continue
        numeric = pd.to_numeric(frame[column], errors="coerce")
        if numeric.notna().all():
            frame[column] = numeric
        elif column.startswith(DESCRIBE) and numeric.notna().any():
            unset = frame[column].isna() | frame[column].isin(["None", "", "nan"])
            if (numeric.notna() | unset).all():
                frame[column] = numeric  # facts known for some problems only
    return frame.reset_index(drop=True)


def param_columns(frame: pd.DataFrame) -> list[str]:
    meta = {"run_id", "mlflow_status", "status", "config_hash", "start_time", *OUTCOMES}
    return [
        c
        for c in frame.columns
        if not c.startswith(METRIC) and not c.startswith(DESCRIBE) and c not in meta
    ]


def value_column(frame: pd.DataFrame, name: str, key: str = "report") -> str:
    """The frame column of ``name``: a final metric (``metrics.<name>``) or a run column."""
    if f"{METRIC}{name}" in frame:
        return f"{METRIC}{name}"
    if name in frame:
        return name
    known = sorted(c[len(METRIC) :] for c in frame.columns if c.startswith(METRIC))
    raise ConfigError(
        f"{key}: no run logged '{name}' (metrics: {', '.join(known)}; run columns: "
        f"{', '.join(OUTCOMES)}, describe.<fact>)"
    )


# -- success, missing values, details ------------------------------------------------------------
def success_mask(frame: pd.DataFrame, success: Any) -> pd.Series:
    """True for runs that finished and whose final ``success.metric`` meets the threshold."""
    column = value_column(frame, spec_value(success, "metric"), "report.success.metric")
    values = pd.to_numeric(frame[column], errors="coerce")
    threshold = float(spec_value(success, "threshold"))
    met = values <= threshold if spec_value(success, "goal") == "min" else values >= threshold
    return (frame["status"] == "finished") & met.fillna(False)


def chosen_runs(frame: pd.DataFrame, table: Table) -> pd.DataFrame:
    """The runs of the configurations the table chose (one per cell, all seeds)."""
    keys = table.rows + table.columns + table.tune
    if not keys:
        return frame
    chosen = table.cells[keys].drop_duplicates()
    merged = frame.merge(chosen, on=keys, how="inner")
    return merged if len(merged) else frame.iloc[0:0]


def success_counts(frame: pd.DataFrame, table: Table, success: Any) -> pd.DataFrame:
    """Per column value of the table: runs that succeeded, runs, and the share solved."""
    runs = chosen_runs(frame, table).copy()
    runs["solved"] = success_mask(runs, success)
    keys = table.columns or ["algorithm"]
    counts = runs.groupby(keys, dropna=False)["solved"].agg(solved="sum", runs="count")
    counts["share"] = counts["solved"] / counts["runs"]
    return counts.reset_index().sort_values("solved", ascending=False, kind="stable")


def missing_values(frame: pd.DataFrame, expected: Any) -> dict[str, list[Any]]:
    """Per key of ``expected``: the expected values that no finished run has."""
    missing = {}
    for key, values in (expected or {}).items():
        if key not in frame:
            missing[key] = list(values)
            continue
        present = {str(v) for v in frame[key].dropna()}
        absent = [v for v in values if str(v) not in present]
        if absent:
            missing[key] = absent
    return missing


def details_table(
    frame: pd.DataFrame, table: Table, details: list[str], success: Any | None
) -> pd.DataFrame:
    """One line per cell of the table: its runs, successes, statuses and the ``details``
    values (mean over the cell's runs for numbers, distinct values joined for text)."""
    runs = chosen_runs(frame, table).copy()
    keys = table.rows + table.columns
    columns = {name: value_column(runs, name, "report.details") for name in details}
    if success is not None:
        runs["solved"] = success_mask(runs, success)
    groups = runs.groupby(keys, dropna=False, sort=True) if keys else [((), runs)]
    lines = []
    for key, cell in groups:
        key = key if isinstance(key, tuple) else (key,)
        line: dict[str, Any] = dict(zip(keys, key, strict=True))
        line["runs"] = len(cell)
        if success is not None:
            line["solved"] = int(cell["solved"].sum())
        line["status"] = ", ".join(sorted(set(map(str, cell["status"]))))
        for name, column in columns.items():
            values = cell[column]
            numeric = pd.to_numeric(values, errors="coerce")
            if numeric.notna().any():
                line[name] = float(numeric.mean())
            else:
                line[name] = "; ".join(sorted({str(v) for v in values if str(v)}))
        lines.append(line)
    return pd.DataFrame(lines)


# -- 2. aggregate over seeds --------------------------------------------------------------------
def ci95(values: pd.Series) -> float:
    """Half-width of the 95% Student-t interval of the mean (NaN for fewer than 2 values)."""
    n = values.count()
    if n < 2 or not np.isfinite(values).all():
        return math.nan
    return float(stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / math.sqrt(n))


def aggregate(frame: pd.DataFrame, keys: list[str], value: str) -> pd.DataFrame:
    """mean, std, ci95 and n of ``value`` per combination of ``keys``."""
    grouped = frame.groupby(keys, dropna=False, sort=True)[value]
    out = grouped.agg(mean="mean", std="std", n="count")
    out["ci95"] = grouped.apply(ci95)
    return out.reset_index()


# -- 3. the comparison table --------------------------------------------------------------------
@dataclass
class Table:
    """The best configuration per cell and its statistics, plus everything needed to show it."""

    cells: pd.DataFrame  # rows + columns + tune keys + mean/std/ci95/n
    all_configs: pd.DataFrame
    rows: list[str]
    columns: list[str]
    tune: list[str]
    metric: str
    goal: str
    notes: list[str] = field(default_factory=list)


def _worst(goal: str) -> float:
    return math.inf if goal == "min" else -math.inf


def _metric_column(frame: pd.DataFrame, metric: str, key: str) -> str:
    """The column of the final metric ``metric``; an error naming ``key`` if no run logged it."""
    column = f"{METRIC}{metric}"
    if column not in frame:
        known = sorted(c[len(METRIC) :] for c in frame.columns if c.startswith(METRIC))
        raise ConfigError(f"{key}: no run logged '{metric}' (logged: {', '.join(known)})")
    return column


def _scored(frame: pd.DataFrame, column: str, goal: str) -> pd.DataFrame:
    """The runs with ``value`` = ``column``, the worst value for a diverged or non-finite run."""
    data = frame.copy()
    values = pd.to_numeric(data[column], errors="coerce")
    bad = ~np.isfinite(values) | (data["status"] == "diverged")
    data["value"] = values.where(~bad, _worst(goal))
    return data


def _aggregate_cells(data: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """``aggregate`` over ``keys``, or over all runs under a constant key when there are none."""
    return (
        aggregate(data, keys, "value")
        if keys
        else aggregate(data.assign(_all=0), ["_all"], "value")
    )


def build_table(frame: pd.DataFrame, spec: Any) -> Table:
    metric, goal = spec_value(spec, "metric"), spec_value(spec, "goal")
    rows, columns, tune = list(spec.rows), list(spec.columns), list(spec.tune)
    if frame.empty:
        raise ConfigError("report: the experiment has no finished runs yet")
    column = _metric_column(frame, metric, "report.metric")
    params = param_columns(frame)
    for key in rows + columns + tune:
        if key not in params:
            raise ConfigError(f"report: '{key}' is not a config key of the runs")
    notes = []
    named = rows + columns + tune + ([SEED] if SEED in params else [])
    groups = frame.groupby(named, dropna=False) if named else None
    varying = [
        c
        for c in params
        if c not in named and groups is not None and groups[c].nunique(dropna=False).max() > 1
    ]
    if varying:
        notes.append(
            "config keys that differ within a cell, added to the rows: " + ", ".join(varying)
        )
        rows = rows + varying
    keys = rows + columns + tune
    all_configs = _aggregate_cells(_scored(frame, column, goal), keys)
    cell_keys = rows + columns
    ranked = all_configs.sort_values("mean", ascending=(goal == "min"), kind="stable")
    cells = (
        ranked.groupby(cell_keys, dropna=False, sort=True).head(1) if cell_keys else ranked.head(1)
    )
    cells = cells.sort_values(cell_keys).reset_index(drop=True) if cell_keys else cells
    return Table(cells, all_configs, rows, columns, tune, metric, goal, notes)


def also_table(frame: pd.DataFrame, table: Table, metric: str) -> Table:
    """``metric`` over seeds at the configurations ``table`` chose (same rows and columns)."""
    column = _metric_column(frame, metric, "report.also")
    data = _scored(chosen_runs(frame, table), column, table.goal)
    cells = _aggregate_cells(data, table.rows + table.columns + table.tune)
    return Table(cells, cells, table.rows, table.columns, table.tune, metric, table.goal)


def _fmt(mean: float, ci: float) -> str:
    if not math.isfinite(mean):
        return "diverged"
    text = f"{mean:.3g}"
    return text + (f" ± {ci:.2g}" if math.isfinite(ci) else "")


def pivot(table: Table, bold: tuple[str, str]) -> pd.DataFrame:
    """The cells as a rows x columns grid of ``mean ± ci`` strings, best per row in ``bold``."""
    cells = table.cells.copy()
    cells["text"] = [_fmt(m, c) for m, c in zip(cells["mean"], cells["ci95"], strict=True)]
    if table.rows:
        best = cells.groupby(table.rows, dropna=False)["mean"].transform(
            "min" if table.goal == "min" else "max"
        )
        winner = (cells["mean"] == best) & np.isfinite(cells["mean"])
        cells.loc[winner, "text"] = bold[0] + cells.loc[winner, "text"] + bold[1]
    if table.rows and table.columns:
        grid = cells.pivot_table(
            index=table.rows, columns=table.columns, values="text", aggfunc="first"
        )
    elif table.rows:
        grid = cells.set_index(table.rows)[["text"]].rename(columns={"text": table.metric})
    elif table.columns:
        grid = cells.set_index(table.columns)[["text"]].T.rename(index={"text": table.metric})
    else:
        grid = cells[["text"]].rename(columns={"text": table.metric})
    grid.columns.name = None
    return grid


def _markdown(grid: pd.DataFrame) -> str:
    """A grid as a Markdown table, one column per row key (not a tuple per row)."""
    if isinstance(grid.index, pd.MultiIndex):
        return grid.reset_index().to_markdown(index=False)
    return grid.to_markdown()


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
    spec: Any, tracker: Tracker, experiment: str, out_dir: Path | None = None
) -> ReportResult:
    """Build the experiment's tables and plots, write them, log them on the latest sweep run."""
    from optbench.platform.plots import draw

    frame = load_runs(tracker)
    table = build_table(frame, spec)
    success, expected = spec_value(spec, "success"), spec_value(spec, "expected")
    details = list(spec_value(spec, "details") or [])
    out_dir = out_dir or paths.runs_dir() / "reports" / experiment
    out_dir.mkdir(parents=True, exist_ok=True)
    title = f"{spec_value(spec, 'statistic')} {table.metric} ({table.goal}imised"
    title += f"; best {', '.join(table.tune)} per cell" if table.tune else ""
    title += "; mean ± 95% CI over seeds)"

    files = []
    markdown = _markdown(pivot(table, ("**", "**")))
    also = [also_table(frame, table, m) for m in (spec_value(spec, "also") or [])]
    for other in also:
        grid = _markdown(pivot(other, ("**", "**")))
        markdown += f"\n\nfinal {other.metric} (mean ± 95% CI over seeds)\n\n{grid}"
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
    parent = tracker.latest_sweep()
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
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>optbench report: {experiment}</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style></head><body>",
        f"<h1>{experiment}</h1><p>{title}</p>",
        grid.to_html(escape=False),
    ]
    parts += [f"<p><i>{note}</i></p>" for note in table.notes]
    for extra in also or []:
        parts += [f"<h2>{extra.metric}</h2>", pivot(extra, ("<b>", "</b>")).to_html(escape=False)]
    if table.tune:
        chosen = table.cells[table.rows + table.columns + table.tune + ["n"]]
        parts += ["<h2>Chosen configurations</h2>", chosen.to_html(index=False)]
    for heading, text in sections or []:
        escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        parts.append(f"<h2>{heading.replace('<', '&lt;')}</h2><pre>{escaped}</pre>")
    for image in images:
        data = base64.b64encode(image.read_bytes()).decode()
        parts.append(f"<h2>{image.stem}</h2><img src='data:image/png;base64,{data}'>")
    parts.append("</body></html>")
    return "\n".join(parts)
