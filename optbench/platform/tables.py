"""Comparison tables: an experiment's runs (a frame from ``optbench.platform.results``) turned
into cells of statistics over seeds, and the per-cell extras of solver suites.

1. ``aggregate``: mean, std, 95% t-interval half-width and n of a value per configuration, over
   seeds. A diverged run counts as the worst possible value, so a configuration with one diverged
   seed is never chosen as the best.
2. ``build_table``: per cell (``rows`` x ``columns``), the configuration of the ``tune`` keys
   with the best mean. A config key that still differs between runs of one cell and seed is
   added to the rows, so no two different configurations are ever averaged together.
3. ``also_table``: another metric at the configurations a table chose; ``success_counts``,
   ``missing_values`` and ``details_table`` for suites of problems; ``pivot`` as a grid of text.

A cell is marked ``best`` only when it is significantly better than every other cell of its row
(paired over seeds, Holm; ``optbench.platform.paired.best_cells``), else the cells not
distinguishable from the row's best are marked ``tied``: ``cells["mark"]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from optbench.platform.errors import ConfigError
from optbench.platform.paired import best_cells
from optbench.platform.results import METRIC, SEED, metric_names, param_columns, value_column
from optbench.platform.schema import spec_value


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


def status_counts(frame: pd.DataFrame, table: Table) -> pd.DataFrame:
    """Runs of the experiment by status (finished, stalled, diverged, ...) per column value of
    the table: how many runs ended how, whether or not the table chose them."""
    keys = [k for k in (table.columns or ["algorithm"]) if k in frame]
    if not keys or frame.empty:
        return pd.DataFrame()
    counts = frame.groupby([*keys, "status"], dropna=False).size().unstack("status", fill_value=0)
    return counts.reset_index()


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
        raise ConfigError(
            f"{key}: no run logged '{metric}' (logged: {', '.join(metric_names(frame))})"
        )
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
    cells = cells.reset_index(drop=True)
    cells["mark"] = marks(_scored(frame, column, goal), cells, rows, columns, tune, goal)
    return Table(cells, all_configs, rows, columns, tune, metric, goal, notes)


def also_table(frame: pd.DataFrame, table: Table, metric: str) -> Table:
    """``metric`` over seeds at the configurations ``table`` chose (same rows and columns)."""
    column = _metric_column(frame, metric, "report.also")
    data = _scored(chosen_runs(frame, table), column, table.goal)
    cells = _aggregate_cells(data, table.rows + table.columns + table.tune)
    cells["mark"] = marks(data, cells, table.rows, table.columns, table.tune, table.goal)
    return Table(cells, cells, table.rows, table.columns, table.tune, metric, table.goal)


def marks(
    data: pd.DataFrame,
    cells: pd.DataFrame,
    rows: list[str],
    columns: list[str],
    tune: list[str],
    goal: str,
    alpha: float = 0.05,
) -> list[str]:
    """Per cell: ``best``, ``tied`` or ``""`` within its row (``paired.best_cells`` on the
    scored runs ``data`` of each cell's configuration, paired by seed)."""
    keys = rows + columns + tune
    out = [""] * len(cells)
    if not columns or SEED not in data:
        return out
    values = {}
    for i, cell in cells.iterrows():
        mask = np.ones(len(data), dtype=bool)
        for key in keys:
            mask &= _same(data[key], cell[key])
        part = data[mask]
        values[i] = pd.Series(part["value"].to_numpy(float), index=part[SEED].to_numpy())
    groups = cells.groupby(rows, dropna=False, sort=False).groups if rows else {(): cells.index}
    for index in groups.values():
        for i, mark in best_cells({i: values[i] for i in index}, goal, alpha).items():
            out[int(i)] = mark  # type: ignore[call-overload]
    return out


def _same(column: pd.Series, value: Any) -> np.ndarray:
    if pd.isna(value):
        return column.isna().to_numpy()
    return (column == value).to_numpy()


def common_n(table: Table) -> int | None:
    """The number of seeds every cell has, if they all have the same."""
    counts = set(table.cells["n"].astype(int))
    return counts.pop() if len(counts) == 1 else None


def _fmt(mean: float, ci: float, std: float, n: int, common: int | None) -> str:
    """``mean ± ci``; seeds that all gave the same value say so (never ``± 0``); the number of
    seeds when it differs from the table's."""
    if not math.isfinite(mean):
        return "diverged"
    text = f"{mean:.3g}"
    if n >= 2 and std == 0:
        return text + f" ({n} seeds equal)"
    text += f" ± {ci:.2g}" if math.isfinite(ci) else ""
    return text + (f" (n={n})" if n != common else "")


def pivot(table: Table, bold: tuple[str, str], tied: tuple[str, str] = ("", "")) -> pd.DataFrame:
    """The cells as a rows x columns grid of ``mean ± ci`` strings: a cell significantly best in
    its row wrapped in ``bold``, cells not distinguishable from the row's best in ``tied``."""
    cells = table.cells.copy()
    common = common_n(table)
    cells["text"] = [
        _fmt(m, c, s, int(n), common)
        for m, c, s, n in zip(cells["mean"], cells["ci95"], cells["std"], cells["n"], strict=True)
    ]
    for mark, (before, after) in (("best", bold), ("tied", tied)):
        chosen = cells.get("mark", pd.Series("", index=cells.index)) == mark
        cells.loc[chosen, "text"] = before + cells.loc[chosen, "text"] + after
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
