"""Report plots (matplotlib, PNG): convergence curves with seed bands."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from optbench.platform.report import Table
    from optbench.platform.tracking import Tracker


def _history(tracker: Tracker, run_id: str, key: str) -> pd.Series:
    points = tracker.client.get_metric_history(run_id, key)  # type: ignore[attr-defined]
    series = pd.Series({p.step: p.value for p in points}, dtype=float)
    return series.sort_index()


def convergence_plot(
    tracker: Tracker, frame: pd.DataFrame, table: Table, plot: Any, path: Path
) -> None:
    """``plot.metric`` against step or time for each chosen configuration: mean over seeds,
    shaded between the seeds' min and max; one panel per row of the table."""
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
    ncols = min(4, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), squeeze=False)
    for ax, (panel, cells) in zip(axes.flat, panels, strict=False):
        for _, cell in cells.iterrows():
            mask = np.ones(len(frame), dtype=bool)
            for key in keys:
                mask &= (frame[key] == cell[key]).to_numpy() | (
                    frame[key].isna() & pd.isna(cell[key])
                ).to_numpy()
            curves = []
            for run_id in frame.loc[mask, "run_id"]:
                y = _history(tracker, run_id, plot.metric)
                if plot.x != "step":
                    x = _history(tracker, run_id, plot.x).reindex(y.index)
                    y.index = x.to_numpy()
                curves.append(y)
            if not curves:
                continue
            joined = pd.concat(curves, axis=1).sort_index().interpolate(limit_area="inside")
            if plot.log_y:  # non-positive values have no place on a log axis: leave gaps
                joined = joined.where(joined > 0)
            label = ", ".join(str(cell[c]) for c in table.columns) or "runs"
            line = ax.plot(joined.index, joined.mean(axis=1), label=label)[0]
            ax.fill_between(
                joined.index,
                joined.min(axis=1),
                joined.max(axis=1),
                color=line.get_color(),
                alpha=0.2,
                linewidth=0,
            )
        title = panel if not isinstance(panel, tuple) else ", ".join(map(str, panel))
        ax.set_title(str(title), fontsize=9)
        ax.set_xlabel(plot.x)
        ax.set_ylabel(plot.metric)
        if plot.log_y:
            ax.set_yscale("log")
        if getattr(plot, "log_x", False):
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 6), fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    fig.savefig(path, dpi=110)
    plt.close(fig)
