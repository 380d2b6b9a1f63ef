"""Regression gates: rerun quick experiments and compare their report tables and claim
verdicts with baselines.

``benchmarks/baselines/<experiment>.yaml`` holds every cell of the experiment's report tables
(the main metric and each ``report.also`` metric) with its direction and tolerance, and the
verdict of each of its claims. A cell regresses when its new mean is worse than
``value * (1 + rtol) + atol`` (goal ``min``) or ``value * (1 - rtol) - atol`` (goal ``max``), or
when it is missing; a claim regresses when it was ``reproduced`` and is now ``contradicted`` (or
no longer decided at all). ``optbench-check`` reruns each experiment from scratch (fresh store,
nothing skipped) and lists every regressed cell with old value, new value and tolerance, and
every flipped claim; ``optbench-check claims EXPERIMENT`` checks the claims only;
``optbench-check --update`` rewrites the baselines.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pandas as pd
import yaml

from optbench.platform import paths

DEFAULT_RTOL = 0.05
STATS = {"mean", "std", "n", "ci95", "mark"}


def baselines_dir() -> Path:
    return paths.project_root() / "benchmarks" / "baselines"


@dataclass
class Regression:
    experiment: str
    metric: str
    cell: dict[str, Any]
    old: float
    new: float | None
    bound: float

    def line(self) -> str:
        where = ", ".join(f"{k}={v}" for k, v in self.cell.items()) or "all"
        new = "missing" if self.new is None else f"{self.new:.6g}"
        return (
            f"{self.experiment}: {self.metric} [{where}]: baseline {self.old:.6g}, "
            f"now {new} (allowed up to {self.bound:.6g})"
        )


def run_experiment(experiment: str, workdir: Path, overrides: list[str]) -> tuple[int, Path]:
    """Run the experiment's sweep into a fresh store under ``workdir``; its report directory."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["OPTBENCH_RUNS_DIR"] = str(workdir)
    env.setdefault("OPTBENCH_PROGRESS", "0")
    program = Path(sys.executable).parent / "optbench"
    done = subprocess.run([str(program), "-m", f"experiment={experiment}", *overrides], env=env)
    return done.returncode, workdir / "reports" / experiment


def read_tables(report_dir: Path) -> dict[str, pd.DataFrame]:
    """metric -> its table (``table.csv`` is the main metric, ``table_<metric>.csv`` the rest,
    the metric's name percent-encoded)."""
    tables = {}
    for path in sorted(report_dir.glob("table*.csv")):
        frame = pd.read_csv(path)
        metric = unquote(path.stem.removeprefix("table_")) if path.stem != "table" else "__main__"
        tables[metric] = frame
    return tables


def cells(frame: pd.DataFrame, keys: list[str]) -> dict[tuple, float]:
    return {tuple(str(row[k]) for k in keys): float(row["mean"]) for _, row in frame.iterrows()}


def key_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in STATS]


def read_claims(report_dir: Path) -> pd.DataFrame | None:
    """The report's ``claims.csv`` (None when the experiment states no claims)."""
    path = report_dir / "claims.csv"
    return pd.read_csv(path) if path.exists() else None


def claim_entries(claims: pd.DataFrame | None) -> list[dict[str, str]]:
    if claims is None:
        return []
    return [{"id": str(c["claim"]), "verdict": str(c["verdict"])} for _, c in claims.iterrows()]


@dataclass
class FlippedClaim:
    experiment: str
    claim: str
    new: str | None
    evidence: str

    def line(self) -> str:
        now = self.new or "not decided (missing from the report)"
        detail = f": {self.evidence}" if self.evidence else ""
        return f"{self.experiment}: claim {self.claim}: baseline reproduced, now {now}{detail}"


def compare_claims(baseline: dict[str, Any], claims: pd.DataFrame | None) -> list[FlippedClaim]:
    """Claims the baseline has as reproduced that are now contradicted or missing."""
    now = {} if claims is None else {str(c["claim"]): c for _, c in claims.iterrows()}
    flipped = []
    for entry in baseline.get("claims") or []:
        if entry["verdict"] != "reproduced":
            continue
        new = now.get(entry["id"])
        if new is None or new["verdict"] == "contradicted":
            flipped.append(
                FlippedClaim(
                    baseline["experiment"],
                    entry["id"],
                    None if new is None else str(new["verdict"]),
                    "" if new is None else str(new["evidence"]),
                )
            )
    return flipped


def make_baseline(
    experiment: str,
    tables: dict[str, pd.DataFrame],
    goal: str,
    metric: str,
    rtol: float = DEFAULT_RTOL,
    atol: float = 0.0,
    claims: pd.DataFrame | None = None,
) -> dict[str, Any]:
    entries = []
    for name, frame in tables.items():
        keys = key_columns(frame)
        for _, row in frame.iterrows():
            entries.append(
                {
                    "metric": metric if name == "__main__" else name,
                    "table": name,
                    "cell": {
                        k: (row[k].item() if hasattr(row[k], "item") else row[k]) for k in keys
                    },
                    "value": float(row["mean"]),
                }
            )
    return {
        "experiment": experiment,
        "goal": goal,
        "rtol": rtol,
        "atol": atol,
        "metrics": entries,
        "claims": claim_entries(claims),
    }


def compare(baseline: dict[str, Any], tables: dict[str, pd.DataFrame]) -> list[Regression]:
    regressions = []
    goal, rtol, atol = baseline["goal"], float(baseline["rtol"]), float(baseline["atol"])
    lookups: dict[tuple[str, tuple[str, ...]], dict[tuple, float]] = {}  # one per table and keys
    for entry in baseline["metrics"]:
        old = float(entry["value"])
        cell = entry["cell"]
        frame = tables.get(entry["table"])
        new = None
        if frame is not None:
            keys = tuple(cell)
            if (entry["table"], keys) not in lookups:
                lookups[entry["table"], keys] = cells(frame, list(keys))
            new = lookups[entry["table"], keys].get(tuple(str(cell[k]) for k in keys))
        if entry.get("goal", goal) == "min":
            bound = old * (1 + rtol) + atol if old >= 0 else old * (1 - rtol) + atol
            bad = new is None or not (new <= bound or (math.isinf(old) and math.isinf(new)))
        else:
            bound = old * (1 - rtol) - atol if old >= 0 else old * (1 + rtol) - atol
            bad = new is None or not new >= bound
        if bad:
            regressions.append(
                Regression(baseline["experiment"], entry["metric"], cell, old, new, bound)
            )
    return regressions


def main(argv: list[str] | None = None) -> None:
    """``optbench-check [--update] [--baselines DIR] [claims] [EXPERIMENT ...] [--override O]``.

    With ``claims`` first, only the claims' verdicts are compared."""
    parser = argparse.ArgumentParser(prog="optbench-check", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "experiments", nargs="*", help="default: every baseline file; 'claims' first: claims only"
    )
    parser.add_argument("--update", action="store_true", help="rewrite the baselines")
    parser.add_argument("--baselines", type=Path, default=None)
    parser.add_argument("--override", action="append", default=[], help="extra sweep overrides")
    parser.add_argument(
        "--keep", type=Path, default=None, help="keep each run in KEEP/<experiment> (reports)"
    )
    args = parser.parse_args(argv)
    only_claims = bool(args.experiments) and args.experiments[0] == "claims"
    names = args.experiments[1:] if only_claims else args.experiments
    folder = args.baselines or baselines_dir()
    experiments = names or sorted(p.stem for p in folder.glob("*.yaml"))
    if not experiments:
        print(
            f"error: no baselines in {folder}; create one with --update EXPERIMENT", file=sys.stderr
        )
        sys.exit(2)
    failed = False
    for experiment in experiments:
        file = folder / f"{experiment}.yaml"
        if not args.update and not file.exists():
            print(f"error: no baseline {file}", file=sys.stderr)
            sys.exit(2)
        workdir: Any = (
            contextlib.nullcontext(str(args.keep / experiment))
            if args.keep
            else tempfile.TemporaryDirectory(prefix="optbench-check-")
        )
        with workdir as tmp:
            code, report = run_experiment(experiment, Path(tmp), args.override)
            tables = read_tables(report)
            claims = read_claims(report)
            spec_text = (report / "report.yaml").read_text() if tables else ""
        if code != 0 or not tables:
            print(f"{experiment}: the sweep failed (exit {code}); no comparison")
            failed = True
            continue
        if args.update:
            spec = yaml.safe_load(spec_text)
            goal, metric = spec["goal"], spec["metric"]
            # an existing file's tolerances are kept (they are chosen per experiment)
            old = yaml.safe_load(file.read_text()) if file.exists() else {}
            tolerances = {k: float(old[k]) for k in ("rtol", "atol") if k in old}
            file.parent.mkdir(parents=True, exist_ok=True)
            baseline = make_baseline(experiment, tables, goal, metric, claims=claims, **tolerances)
            file.write_text(yaml.safe_dump(baseline, sort_keys=False))
            print(f"{experiment}: baseline written to {file}")
            continue
        baseline = yaml.safe_load(file.read_text())
        if not only_claims:
            regressions = compare(baseline, tables)
            for regression in regressions:
                print("REGRESSED " + regression.line())
            total = len(baseline["metrics"])
            print(f"{experiment}: {total - len(regressions)} of {total} metrics within tolerance")
            failed |= bool(regressions)
        flipped = compare_claims(baseline, claims)
        for claim in flipped:
            print("FLIPPED " + claim.line())
        held = [c for c in baseline.get("claims") or [] if c["verdict"] == "reproduced"]
        print(
            f"{experiment}: {len(held) - len(flipped)} of {len(held)} reproduced claims not "
            "contradicted"
        )
        failed |= bool(flipped)
    sys.exit(1 if failed else 0)
