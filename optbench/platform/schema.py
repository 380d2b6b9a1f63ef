"""Structured configs: the types and defaults of the run-level keys (Hydra's ConfigStore).

``configs/config.yaml`` puts ``optbench_schema`` first in its defaults list, so every composed
config is validated against ``OptbenchConfig``: a wrong type or an unknown key is an error that
names the key. ``problem`` and ``algorithm`` are free-form here; their schema is the typed
``__init__`` signature of the class their ``_target_`` names (see ``optbench.platform.build``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from optbench.platform import interpolations, paths
from optbench.platform.errors import ConfigError


class Goal(Enum):
    min = "min"
    max = "max"


class DeviceType(Enum):
    cpu = "cpu"
    cuda = "cuda"
    auto = "auto"


class TrackingBackend(Enum):
    mlflow = "mlflow"
    none = "none"


@dataclass
class TargetConfig:
    """Stop the run (status finished, reason ``target``) once ``metric`` reaches ``value``
    (at or below it for ``goal=min``). No ``metric``: no target."""

    metric: str | None = None
    value: float | None = None
    goal: Goal = Goal.min


@dataclass
class BudgetConfig:
    """The runner's stopping rules. ``time_limit_s`` counts algorithm time only.
    ``stall_steps``: end the run as ``stalled`` once this many consecutive steps changed neither
    the iterate nor the progress metrics (``None``: never; streams are exempt, see
    ``optbench.platform.stagnation``)."""

    max_steps: int = 1000
    time_limit_s: float | None = None
    target: TargetConfig = field(default_factory=TargetConfig)
    stall_steps: int | None = 20


@dataclass
class DeviceConfig:
    type: DeviceType = DeviceType.cpu
    dtype: str = "float64"
    threads: int | None = None
    deterministic: bool = True


@dataclass
class TrackingConfig:
    """Where runs are logged. ``uri`` defaults to the embedded sqlite store under runs/."""

    backend: TrackingBackend = TrackingBackend.mlflow
    uri: str = "sqlite:///${optbench_runs:}/mlflow.db"
    #: where artifacts go for a sqlite store (default: ``artifacts/`` beside the database).
    artifact_root: str | None = None
    #: per-step progress metrics are sent to MLflow at a stride keeping each key at most this
    #: many points; the full per-step series is kept in the run's ``progress.csv`` artifact.
    max_points_per_metric: int = 100


def spec_value(spec: Any, name: str, default: Any = None) -> Any:
    """Field ``name`` of a spec given as a dataclass, a DictConfig or a dict (an enum as its
    value; ``default`` when absent)."""
    value = spec.get(name, default) if hasattr(spec, "get") else getattr(spec, name, default)
    return getattr(value, "value", value)


@dataclass
class PlotSpec:
    """A report plot (see ``optbench.platform.plots``).

    - ``convergence``: ``metric`` against ``x`` (``step`` or ``time_s``), one panel per row;
    - ``performance_profile``: Dolan-More profiles of the cost ``metric`` (a final metric, or a
      run column such as ``steps``) over the instances (``problem`` keys and seed) for each
      ``solver``; a run that fails the report's ``success`` criterion costs infinity;
    - ``data_profile``: More-Wild data profiles: the fraction of instances solved within a cost,
      divided by (``normalize`` + 1) when ``normalize`` names a column (e.g. ``describe.n``);
    - ``scaling``: ``metric`` against the config key ``x``, one line per ``solver``.
    ``solver`` and ``problem`` default to the report's ``columns`` and ``rows``; ``where``
    restricts the plot to runs whose config key takes one of the listed values.
    """

    kind: str = "convergence"
    metric: str = MISSING
    x: str = "step"
    log_y: bool = True
    log_x: bool = False
    solver: list[str] | None = None
    problem: list[str] | None = None
    normalize: str | None = None
    where: dict[str, list[Any]] = field(default_factory=dict)


@dataclass
class SuccessSpec:
    """A run succeeds when it finished and its final ``metric`` is at most ``threshold``
    (``goal=min``; at least it for ``goal=max``)."""

    metric: str = MISSING
    threshold: float = MISSING
    goal: Goal = Goal.min


class ClaimKind(Enum):
    compare = "compare"
    ratio = "ratio"
    reference = "reference"
    rank = "rank"
    trend = "trend"


class Relation(Enum):
    better = "better"
    no_worse = "no_worse"


class Scale(Enum):
    """How a margin or tolerance is measured: a fraction of the other value, or in units."""

    relative = "relative"
    absolute = "absolute"


class Across(Enum):
    """How many rows of the table a claim must hold in: every one, more than half, one."""

    all = "all"
    majority = "majority"
    any = "any"


class Direction(Enum):
    decreasing = "decreasing"
    increasing = "increasing"


@dataclass
class ClaimSpec:
    """A paper's claim, decided on the report's chosen runs (see ``optbench.platform.claims``;
    the format: ``docs/claims.md``). Which keys apply depends on ``kind``:

    - ``compare``: ``a`` vs ``b`` per row (``relation``, ``margin``, ``margin_type``);
    - ``ratio``: the paired ratio ``a``/``b`` (or ``a`` alone) ``op`` ``bound``;
    - ``reference``: ``a`` within ``tolerance`` of ``reference`` (a number or a run column);
    - ``rank``: ``a`` is among the best ``k`` columns of each row;
    - ``trend``: ``a`` (or ``a``/``b``) monotone (``direction``) ``over`` a config key or ``step``.

    ``a`` and ``b`` select a column of the table: config keys (or ``algorithm``/``problem``
    names) -> a value. ``across``: the rows the claim must hold in; ``where`` restricts rows.
    """

    id: str = MISSING
    kind: ClaimKind = MISSING
    text: str = MISSING
    source: str = MISSING
    metric: str | None = None  # default: the report's metric
    goal: Goal | None = None  # default: the report's goal
    a: dict[str, Any] = MISSING
    b: dict[str, Any] | None = None
    across: Across = Across.all
    where: dict[str, list[Any]] = field(default_factory=dict)
    alpha: float = 0.05
    #: a run that fails the report's ``success`` criterion counts as the worst value, like a
    #: diverged one (claims on a cost to solve: steps, time, evaluations)
    unsolved_is_worst: bool = False
    # compare
    relation: Relation = Relation.better
    margin: float = 0.0
    margin_type: Scale = Scale.relative
    # ratio
    op: str | None = None  # "<=" | ">="
    bound: float | None = None
    # reference
    reference: Any = None  # a number, or a run column such as describe.f_star
    tolerance: float | None = None
    tolerance_type: Scale = Scale.absolute
    # rank
    k: int = 1
    # trend
    over: str | None = None  # a config key, or ``step`` (the evaluation series)
    direction: Direction | None = None


@dataclass
class ReportSpec:
    """How the runs of an experiment become a comparison table (see ``optbench.platform.report``).

    One cell per (``rows``, ``columns``) value pair: the ``statistic`` (``final`` or ``best``
    over the logged evaluations) of ``metric``, averaged over seeds at the values of the ``tune``
    keys whose mean is best for that cell (e.g. the best peak learning rate per schedule).
    """

    metric: str = MISSING
    goal: Goal = Goal.min
    rows: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    tune: list[str] = field(default_factory=list)
    statistic: str = "final"
    #: further metrics, each in its own table with the same rows and columns (for each cell,
    #: the configuration chosen by ``metric``).
    also: list[str] = field(default_factory=list)
    plots: list[PlotSpec] = field(default_factory=list)
    #: write the report at the end of every multirun of the experiment.
    auto: bool = True
    #: what counts as solving a problem: success counts per column, and profiles' failures.
    success: SuccessSpec | None = None
    #: values the experiment expected per config key, e.g. {problem.name: [...]}: the report
    #: lists those with no finished run as missing.
    expected: dict[str, list[Any]] = field(default_factory=dict)
    #: more values per cell (final metrics or run columns such as ``steps``, ``stop_reason``,
    #: ``describe.<fact>``), written as a long table (details.md/csv).
    details: list[str] = field(default_factory=list)
    #: the paper's claims, each decided with paired statistics over seeds (``ClaimSpec``).
    claims: list[ClaimSpec] = field(default_factory=list)


class ProtocolScale(Enum):
    """quick: minutes on 2 cores; ci: the regression gate's scale; paper: the authors' protocol."""

    quick = "quick"
    ci = "ci"
    paper = "paper"


@dataclass
class DeviationSpec:
    """A setting where a preset departs from the authors' code: a named option of ours."""

    option: str = MISSING  # the override selecting it, e.g. algorithm.smoothing=nearest
    authors: str = MISSING  # what the authors' code does
    ours: str = MISSING  # what the preset does, and why
    effect: str = MISSING  # its measured effect


@dataclass
class ReproductionSpec:
    """The record of a paper reproduction (``docs/reproductions/<experiment>.md`` is generated
    from it and the report). Not part of any run's identity."""

    paper: str = MISSING
    authors_code: str | None = None
    scale: ProtocolScale = ProtocolScale.quick
    protocol: str = MISSING
    differs_from_paper: str | None = None
    main_figure: str | None = None  # a plot file name of the report
    deviations: list[DeviationSpec] = field(default_factory=list)


@dataclass
class TuningConfig:
    """Set by the Optuna sweeper on each trial's job (not part of the run's identity)."""

    study: str | None = None
    storage: str | None = None
    trial_id: int | None = None
    metric: str | None = None


@dataclass
class OptbenchConfig:
    """The run-level keys of every optbench config."""

    experiment_name: str = "default"
    seed: int = 0
    eval_every: int = 100
    #: rerun a job even when a FINISHED run with the same config hash exists.
    force: bool = False
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    device: DeviceConfig = field(default_factory=DeviceConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    problem: Any = MISSING
    algorithm: Any = MISSING
    report: ReportSpec | None = None
    reproduction: ReproductionSpec | None = None
    tuning: TuningConfig = field(default_factory=TuningConfig)


#: the largest step budget a run accepts: the runner keeps every step's own metrics (and
#: schedules are sized by it), so a budget of 10^12 steps would only end in a MemoryError.
MAX_STEPS_LIMIT = 10**9
#: seeds Python, NumPy's SeedSequence and torch all accept
SEED_LIMIT = 2**63 - 1


def check_run_keys(cfg: Any) -> None:
    """Refuse a run-level number that is not finite or out of range, naming the key (the
    structured config has already checked the types)."""
    budget, target = cfg.budget, cfg.budget.target

    def within(key: str, value: Any, low: float, high: float | None = None) -> None:
        if value is None:
            return
        if not math.isfinite(value):
            raise ConfigError(f"{key}: must be a finite number, got {value}")
        if value < low or (high is not None and value > high):
            span = f">= {low}" if high is None else f"in [{low}, {high}]"
            raise ConfigError(f"{key}: must be {span}, got {value}")

    within("seed", cfg.seed, 0, SEED_LIMIT)
    within("eval_every", cfg.eval_every, 1)
    within("budget.max_steps", budget.max_steps, 0, MAX_STEPS_LIMIT)
    limit = budget.time_limit_s
    if limit is not None and not (math.isfinite(limit) and limit > 0):
        raise ConfigError(f"budget.time_limit_s: must be > 0 (null: no limit), got {limit}")
    if target.metric is not None and target.value is None:
        wanted = f"budget.target.metric={target.metric}"
        raise ConfigError(f"budget.target.value: required with {wanted}")
    within("budget.target.value", target.value, -math.inf)
    within("budget.stall_steps", budget.stall_steps, 1)
    within("device.threads", cfg.device.threads, 1)
    within("tracking.max_points_per_metric", cfg.tracking.max_points_per_metric, 1)


def register() -> None:
    """Register the schema and the ``optbench_root`` / ``optbench_runs`` resolvers, and parse
    each interpolation string once per process (``interpolations``); idempotent.

    The resolvers cache their value per config, and Hydra copies a sweep's cache into every
    job's config: a job running in another process or on another host (Ray, SLURM) sees the
    launching process's directories.
    """
    ConfigStore.instance().store(name="optbench_schema", node=OptbenchConfig)
    interpolations.parse_each_once()
    for name, fn in (
        ("optbench_root", lambda: str(paths.project_root())),
        ("optbench_runs", lambda: str(paths.runs_dir())),
    ):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn, use_cache=True)
