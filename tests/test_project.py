"""optbench in a project of its own (``optbench.platform.paths``, ``optbench init``).

A project is the working directory when it has ``configs/``: Hydra searches those configs before
the built-in tree (a project's YAML adds options or replaces a built-in one), ``_target_`` finds
the project's modules, and outputs go to ``./runs``. The clone keeps its old behaviour. The
installed wheel is tested end to end in ``test_installed_wheel.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from optbench.contracts import Algorithm, ConfigError
from optbench.platform import paths, scaffold
from optbench.platform.build import build
from optbench.platform.runner import execute
from optbench.platform.tracking import NullTracker, RunStatus
from tests.conftest import ROOT, compose


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project (``configs/``) as the working directory; ``sys.path`` and
    ``sys.modules`` restored afterwards."""
    root = tmp_path / "project"
    (root / "configs").mkdir(parents=True)
    monkeypatch.chdir(root)
    monkeypatch.delenv("OPTBENCH_ROOT", raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    modules = set(sys.modules)
    yield root.resolve()
    for name in set(sys.modules) - modules:
        if name.startswith(("user_", "my_method")):
            del sys.modules[name]


def test_the_project_is_the_working_directory_with_configs(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPTBENCH_RUNS_DIR", raising=False)
    assert paths.project_root() == project
    assert paths.project_config_dir() == project / "configs"
    assert paths.runs_dir() == project / "runs"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    # from the clone (editable install): the clone, whose configs are the built-in tree
    assert paths.source_checkout() == ROOT
    assert paths.project_root() == ROOT and paths.project_config_dir() is None
    assert paths.config_dir().resolve() == (ROOT / "configs").resolve()
    monkeypatch.chdir(ROOT)
    assert paths.project_root() == ROOT and paths.project_config_dir() is None
    # an installed wheel (no checkout): the working directory, with only the built-in configs
    monkeypatch.setattr(paths, "source_checkout", lambda: None)
    monkeypatch.chdir(elsewhere)
    assert paths.project_root() == elsewhere.resolve()
    assert paths.runs_dir() == elsewhere.resolve() / "runs"
    monkeypatch.setenv("OPTBENCH_ROOT", str(project))
    assert paths.project_root() == project
    monkeypatch.setenv("OPTBENCH_RUNS_DIR", str(tmp_path / "out"))
    assert paths.runs_dir() == (tmp_path / "out").resolve()


def test_project_configs_add_options_and_replace_builtin_ones(project: Path) -> None:
    algorithms = project / "configs" / "algorithm"
    algorithms.mkdir()
    (algorithms / "sgd.yaml").write_text("_target_: optbench.algorithms.first_order.SGD\nlr: 0.5\n")
    (algorithms / "slow_adam.yaml").write_text(
        "_target_: optbench.algorithms.first_order.Adam\nlr: 0.001\n"
    )
    replaced = compose(["problem=least_squares", "algorithm=sgd"]).algorithm
    assert replaced.lr == 0.5 and "schedule" not in replaced  # the file, not a merge
    assert compose(["algorithm=slow_adam"]).algorithm.lr == 0.001
    builtin = compose(["algorithm=adam"]).algorithm  # the other built-in options are still there
    assert builtin.lr == 0.01 and builtin.schedule == "constant"


def test_a_target_is_found_in_the_project_directory(project: Path) -> None:
    (project / "user_sgd.py").write_text(
        "from optbench.algorithms.first_order import SGD\n\n\nclass Mine(SGD):\n    pass\n"
    )
    node = OmegaConf.create({"_target_": "user_sgd.Mine", "lr": 0.3})
    algorithm = build(node, Algorithm, "algorithm")
    assert type(algorithm).__name__ == "Mine" and algorithm.lr == 0.3
    assert sys.path[0] == str(project)


@pytest.mark.parametrize(
    ("module", "target", "expected"),
    [
        (None, "user_missing.Method", "no module 'user_missing' (searched: {project}, "),
        ("class Method:\n    pass\n", "user_attr.Methd", "AttributeError: module 'user_attr'"),
        (
            "import user_nowhere\n",
            "user_raises.Method",
            "No module named 'user_nowhere' ({file}:1)",
        ),
        ("def broken(:\n", "user_syntax.Method", "SyntaxError: invalid syntax ({file}:1)"),
    ],
)
def test_a_target_that_cannot_be_imported_is_one_line(
    project: Path, module: str | None, target: str, expected: str
) -> None:
    file = project / f"{target.split('.')[0]}.py"
    if module is not None:
        file.write_text(module)
    with pytest.raises(ConfigError) as info:
        build(OmegaConf.create({"_target_": target}), Algorithm, "algorithm")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"algorithm._target_: cannot import '{target}': ")
    assert expected.format(project=project, file=file) in message
    if module is None:  # every directory searched is named, the installed packages too
        assert any(Path(d).name == "site-packages" for d in paths.import_dirs())
        assert all(d in message for d in paths.import_dirs())


def test_init_writes_the_template_and_never_overwrites(tmp_path: Path) -> None:
    study = tmp_path / "study"
    written = scaffold.init_project(study)
    assert sorted(str(p.relative_to(study)) for p in written) == [
        ".gitignore",
        "README.md",
        "configs/algorithm/my_method.yaml",
        "configs/experiment/my_study.yaml",
        "my_method.py",
    ]
    (study / "my_method.py").write_text("# edited\n")
    with pytest.raises(ConfigError, match=r"already has README\.md, .*my_method\.py; nothing"):
        scaffold.init_project(study)
    assert (study / "my_method.py").read_text() == "# edited\n"
    with pytest.raises(ConfigError, match="at most one directory"):
        scaffold.main(["a", "b"])
    with pytest.raises(ConfigError, match="is a file"):
        scaffold.init_project(study / "README.md")


def test_the_template_method_reaches_the_optimum_under_interpolation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runs_dir: Path
) -> None:
    """The scaffold's SPS on noiseless least squares (every sample's loss is 0 at the optimum):
    the gap to the closed-form optimum goes to 0; SGD at its constant step stays far above."""
    study = tmp_path / "study"
    scaffold.init_project(study)
    monkeypatch.chdir(study)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "my_method", raising=False)
    gaps = {}
    for algorithm in ("my_method", "sgd"):
        cfg = compose(
            [
                "problem=least_squares",
                "problem.noise=0.0",
                f"algorithm={algorithm}",
                "algorithm.batch_size=16",
                "budget.max_steps=400",
                "tracking=none",
            ]
        )
        summary = execute(
            cfg, NullTracker(), name="t", problem_name="p", algorithm_name="a", reraise=True
        )
        assert summary.status is RunStatus.finished
        gaps[algorithm] = summary.metrics["gap"]
    monkeypatch.delitem(sys.modules, "my_method")
    assert 0 <= gaps["my_method"] < 1e-6 < 1e-4 < gaps["sgd"]
