"""Report plots (matplotlib, PNG), chosen by a ``PlotSpec``'s ``kind`` (``draw``):
convergence curves with seed bands, Dolan-More performance profiles and More-Wild data profiles
over a suite of instances, and scaling plots of a metric against a config key."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optbench.platform import results
from optbench.platform.errors import ConfigError
from optbench.platform.results import RunStore, value_column
from optbench.platform.schema import spec_value
from optbench.platform.tables import Table, chosen_runs, success_mask

#: panels side by side in a convergence plot, and their width in inches (3 x 3.6 in at the
#: 110 dpi the plots are saved at: about 1200 pixels, the report page's width).
MAX_COLUMNS = 3
PANEL_WIDTH = 3.6


def convergence_plot(
    store: RunStore, frame: pd.DataFrame, table: Table, plot: Any, path: Path
) -> None:
    """``plot.metric`` against step or time for each chosen configuration, one panel per row of
    the table. Against ``step`` (shared by the seeds): the mean over seeds, shaded between the
    seeds' min and max. Against anything else (``time_s``: each seed has its own clock): every
    seed's own curve, never averaged over unequal x values. At most ``MAX_COLUMNS`` panels
    side by side, ``PANEL_WIDTH`` inches each, so the figure fits a page."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    keys = table.rows + table.columns + table.tune
    panels = (
        table.cells.groupby(table.rows, dropna=False, sort=True)
        if table.rows
        else [("all", table.cells)]
    )
    panels = list(panels)
    ncols = min(MAX_COLUMNS, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(PANEL_WIDTH * ncols, 2.8 * nrows), squeeze=False
    )
    for ax, (panel, cells) in zip(axes.flat, panels, strict=False):
        for _, cell in cells.iterrows():
            mask = np.ones(len(frame), dtype=bool)
            for key in keys:
                mask &= (frame[key] == cell[key]).to_numpy() | (
                    frame[key].isna() & pd.isna(cell[key])
                ).to_numpy()
            curves = []
            for run_id in frame.loc[mask, "run_id"]:
                y = results.series(store, run_id, plot.metric)
                if plot.x != "step":
                    x = results.series(store, run_id, plot.x).reindex(y.index)
                    y.index = x.to_numpy()
                curves.append(y)
            if not curves:
                continue
            label = ", ".join(str(cell[c]) for c in table.columns) or "runs"
            if plot.log_y:  # non-positive values have no place on a log axis: leave gaps
                curves = [c.where(c > 0) for c in curves]
            if plot.x != "step":
                color = None
                for i, curve in enumerate(curves):
                    drawn = ax.plot(
                        curve.index,
                        curve.to_numpy(),
                        color=color,
                        alpha=0.7,
                        linewidth=1,
                        label=label if i == 0 else None,
                    )[0]
                    color = drawn.get_color()
                continue
            joined = pd.concat(curves, axis=1).sort_index().interpolate(limit_area="inside")
            line = ax.plot(joined.index, joined.mean(axis=1), label=label)[0]
            ax.fill_between(
                joined.index,
                joined.min(axis=1),
                joined.max(axis=1),
                color=line.get_color(),
                alpha=0.2,
                linewidth=0,
            )
        values = panel if isinstance(panel, tuple) else (panel,)
        title = ", ".join(f"{k}={v}" for k, v in zip(table.rows, values, strict=False)) or "all"
        ax.set_title(str(title), fontsize=9)
        ax.set_xlabel(plot.x)
        ax.set_ylabel(plot.metric)
        if plot.log_y:
            ax.set_yscale("log")
        if spec_value(plot, "log_x", False):
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    handles, names = axes.flat[0].get_legend_handles_labels()
    legend_rows = 0
    if handles:
        ncol = min(len(names), 6)
        legend_rows = math.ceil(len(names) / ncol)
        fig.legend(handles, names, loc="upper center", ncol=ncol, fontsize=9)
    # keep the legend's rows (about 0.25 inch each) clear of the panel titles
    top = 1 - (0.15 + 0.25 * legend_rows) / fig.get_figheight()
    fig.tight_layout(rect=(0, 0, 1, top))
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- dispatch ------------------------------------------------------------------------------------
def restrict(frame: pd.DataFrame, table: Table, where: Any) -> tuple[pd.DataFrame, Table]:
    """Runs and cells whose config keys take one of the values listed in ``where``."""
    if not where:
        return frame, table
    keep = np.ones(len(frame), dtype=bool)
    cells = table.cells
    for key, values in where.items():
        if key not in frame:
            raise ConfigError(f"report.plots.where: '{key}' is not a config key of the runs")
        wanted = {str(v) for v in values}
        keep &= frame[key].astype(str).isin(wanted).to_numpy()
        if key in cells:
            cells = cells[cells[key].astype(str).isin(wanted)]
    return frame[keep], dataclasses.replace(table, cells=cells)


def draw(
    store: RunStore, frame: pd.DataFrame, table: Table, plot: Any, success: Any, out_dir: Path
) -> Path:
    """Draw ``plot`` (a ``PlotSpec``) into ``out_dir``; returns the PNG's path."""
    kind = spec_value(plot, "kind")
    frame, table = restrict(frame, table, spec_value(plot, "where") or {})
    metric = spec_value(plot, "metric")
    if kind == "convergence":
        suffix = "_where" if spec_value(plot, "where") else ""
        name = f"convergence_{metric}_vs_{spec_value(plot, 'x')}{suffix}.png"
        path = out_dir / name.replace("/", "_")
        convergence_plot(store, frame, table, plot, path)
        return path
    if kind in ("performance_profile", "data_profile"):
        if success is None:
            raise ConfigError(f"report.plots: a {kind} needs the report's success criterion")
        path = out_dir / f"{kind}_{metric}.png".replace("/", "_")
        profile_plot(frame, table, plot, success, path)
        return path
    if kind == "scaling":
        path = out_dir / f"scaling_{metric}_vs_{spec_value(plot, 'x')}.png".replace("/", "_")
        scaling_plot(frame, table, plot, path)
        return path
    raise ConfigError(
        f"report.plots: unknown kind '{kind}' "
        "(convergence, performance_profile, data_profile, scaling)"
    )


# -- profiles ------------------------------------------------------------------------------------
def labels(frame: pd.DataFrame, keys: list[str], sep: str) -> pd.Series:
    """One text label per row from the values of ``keys`` (missing values shown as 'nan')."""
    return frame[keys].apply(lambda row: sep.join(str(v) for v in row), axis=1)


def instance_costs(
    frame: pd.DataFrame,
    cost: str,
    solved: pd.Series,
    solver: list[str],
    problem: list[str],
) -> pd.DataFrame:
    """Instances (problem keys and seed) x solvers: the cost column where solved, else inf.

    A solver with no run on an instance that others ran counts as failing it; of several runs
    of one solver on one instance, the cheapest solved one counts.
    """
    instance = [*problem, "seed"] if "seed" in frame and "seed" not in problem else list(problem)
    values = pd.to_numeric(frame[cost], errors="coerce").where(solved.to_numpy(), np.inf)
    data = frame[instance + solver].copy()
    data["cost"] = values.fillna(np.inf).to_numpy()
    data["solver"] = labels(data, solver, ", ")
    data["instance"] = labels(data, instance, " | ")
    grid = data.pivot_table(index="instance", columns="solver", values="cost", aggfunc="min")
    return grid.fillna(np.inf)


def performance_profile(costs: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """Dolan and More (2002) performance profiles: for each solver s, rho_s(tau) = the share
    of instances whose performance ratio t_s / min_s' t_s' is at most 2^tau.

    Returns the breakpoints tau (log2 ratios, starting at 0) and rho (tau x solvers). A cost of
    0 is a ratio of 1 when the best cost is 0 too; failures (inf) never count as solved.
    """
    values = costs.to_numpy(dtype=float)
    best = values.min(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = values / best
    ratios[(values == 0) & (best == 0)] = 1.0
    ratios[~np.isfinite(values)] = np.inf
    ratios[np.isnan(ratios)] = np.inf
    logs = np.log2(ratios)
    finite = logs[np.isfinite(logs)]
    taus = np.unique(np.concatenate([[0.0], finite]))
    rho = np.array([(logs <= tau).mean(axis=0) for tau in taus])
    return taus, pd.DataFrame(rho, index=taus, columns=costs.columns)


def data_profile(costs: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """More and Wild (2009) data profiles: d_s(alpha) = the share of instances solver s solves
    within cost alpha (costs already normalised, e.g. by n_p + 1)."""
    values = costs.to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    alphas = np.unique(finite) if finite.size else np.array([0.0])
    share = np.array([(values <= alpha).mean(axis=0) for alpha in alphas])
    return alphas, pd.DataFrame(share, index=alphas, columns=costs.columns)


def profile_plot(frame: pd.DataFrame, table: Table, plot: Any, success: Any, path: Path) -> None:
    """A performance or data profile of ``plot.metric`` for the table's chosen runs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kind = spec_value(plot, "kind")
    runs = chosen_runs(frame, table)
    solver = list(spec_value(plot, "solver") or table.columns)
    problem = list(spec_value(plot, "problem") or table.rows)
    cost = value_column(runs, spec_value(plot, "metric"), "report.plots.metric")
    runs = runs.assign(_cost=pd.to_numeric(runs[cost], errors="coerce"))
    normalize = spec_value(plot, "normalize")
    if kind == "data_profile" and normalize:
        scale = pd.to_numeric(runs[value_column(runs, normalize, "report.plots.normalize")])
        runs = runs.assign(_cost=runs["_cost"] / (scale + 1))
    costs = instance_costs(runs, "_cost", success_mask(runs, success), solver, problem)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    if kind == "performance_profile":
        taus, rho = performance_profile(costs)
        right = max(1.0, float(taus.max()) * 1.05 if len(taus) else 1.0)
        for name in rho.columns:
            xs = np.append(taus, right)
            ys = np.append(rho[name].to_numpy(), rho[name].to_numpy()[-1])
            ax.step(xs, ys, where="post", label=name)
        ax.set_xlim(0, right)
        ax.set_xlabel(f"tau: log2 of the ratio to the best {spec_value(plot, 'metric')}")
        ax.set_ylabel("share of instances with ratio <= 2^tau")
    else:
        alphas, share = data_profile(costs)
        for name in share.columns:
            ax.step(alphas, share[name], where="post", label=name)
        if alphas.size and alphas.max() > 0:
            ax.set_xscale("symlog", linthresh=max(float(alphas[alphas > 0].min()), 1e-12))
        unit = f" / ({normalize} + 1)" if normalize else ""
        ax.set_xlabel(f"{spec_value(plot, 'metric')}{unit}")
        ax.set_ylabel("share of instances solved")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"{kind.replace('_', ' ')}: {spec_value(plot, 'metric')} ({len(costs)} instances)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- scaling -------------------------------------------------------------------------------------
def scaling_plot(frame: pd.DataFrame, table: Table, plot: Any, path: Path) -> None:
    """``plot.metric`` against the config key ``plot.x``, one line per solver: the mean over
    the chosen runs at each x, shaded between their min and max."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = chosen_runs(frame, table)
    x = spec_value(plot, "x")
    if x not in runs:
        raise ConfigError(f"report.plots.x: '{x}' is not a config key of the runs")
    column = value_column(runs, spec_value(plot, "metric"), "report.plots.metric")
    solver = list(spec_value(plot, "solver") or table.columns)
    data = runs.assign(
        _x=pd.to_numeric(runs[x], errors="coerce"),
        _y=pd.to_numeric(runs[column], errors="coerce"),
        _solver=labels(runs, solver, ", ") if solver else "runs",
    )
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, group in data.groupby("_solver", sort=True):
        stats = group.groupby("_x")["_y"].agg(["mean", "min", "max"]).sort_index()
        line = ax.plot(stats.index, stats["mean"], marker="o", label=name)[0]
        ax.fill_between(
            stats.index, stats["min"], stats["max"], color=line.get_color(), alpha=0.2, lw=0
        )
    ax.set_xlabel(x)
    ax.set_ylabel(spec_value(plot, "metric"))
    if spec_value(plot, "log_y", True):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
