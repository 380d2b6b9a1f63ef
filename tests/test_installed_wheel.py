"""optbench installed from its wheel, used outside its repository (issue 16).

The wheel is built from a copy of the source tree and installed, not as an editable link, into a
new virtual environment. Its third-party dependencies are this environment's, through a ``.pth``
line added after the install: installing them from the registries takes minutes (7 min on the
shared 2-core machine), too long for ``make test``. Then, in a new directory: ``optbench init``,
the scaffolded experiment end to end (sweep, report, claims) under that directory's ``runs/``, a
project YAML replacing a built-in config, and a ``_target_`` that cannot be imported as one line.
Slow (tens of seconds: one sweep of 36 short runs), and part of ``make test``.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

import optbench
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

#: not needed to build the wheel (and large, or outputs of this machine)
NOT_SOURCES = (".venv", "runs", "build", "dist", "*.egg-info", "__pycache__", ".git", ".*_cache")


@dataclass
class Installed:
    bin: Path  # the new environment's scripts
    project: Path  # made by ``optbench init``
    env: dict[str, str]

    def run(self, program: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.bin / program), *args],
            cwd=cwd or self.project,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=900,
        )


def build_wheel(base: Path) -> Path:
    source = base / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(*NOT_SOURCES))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run(
        [
            *pip,
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            str(source),
            "-w",
            base / "dist",
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = (base / "dist").glob("optbench-*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("installed")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--python", str(python)]
    subprocess.run(
        [*pip, "install", "--no-deps", "-q", str(wheel)],
        check=True,
        capture_output=True,
    )
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # after the install, so that pip never sees (nor touches) this environment's packages
    Path(site, "optbench_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"])
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPTBENCH_", "MLFLOW_", "PYTHON", "VIRTUAL_ENV"))
    }
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    installed = Installed(venv / "bin", base / "study", env)
    init = installed.run("optbench", "init", "study", cwd=base)
    assert init.returncode == 0, init.stderr
    return installed


def test_the_wheel_carries_every_config_and_data_file(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for tree, inside in ((ROOT / "configs", "optbench/configs"), (ROOT / "optbench/data", "")):
        files = [p for p in tree.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        assert files
        for path in files:
            name = f"{inside}/{path.relative_to(tree)}" if inside else str(path.relative_to(ROOT))
            assert name in names, f"{name} missing from the wheel"
    template = ROOT / "optbench/platform/project_template"
    assert {str(p.relative_to(ROOT)) for p in template.rglob("*") if p.is_file()} <= names


def test_the_installed_package_and_its_scripts(installed: Installed) -> None:
    where = installed.run("python", "-c", "import optbench; print(optbench.__file__)").stdout
    assert where.startswith(str(installed.bin.parent)), where  # the wheel, not the clone
    version = installed.run("optbench", "--version")
    assert version.stdout.strip() == f"optbench {optbench.__version__}"
    check = installed.run("optbench-check", "--help")  # (optbench-report: in the study's test)
    assert check.returncode == 0 and check.stdout.startswith("usage: optbench-check")
    files = sorted(str(p.relative_to(installed.project)) for p in installed.project.rglob("*"))
    assert files == [
        ".gitignore",
        "README.md",
        "configs",
        "configs/algorithm",
        "configs/algorithm/my_method.yaml",
        "configs/experiment",
        "configs/experiment/my_study.yaml",
        "my_method.py",
    ]


def test_the_scaffolded_study_runs_end_to_end(installed: Installed) -> None:
    sweep = installed.run("optbench", "-m", "experiment=my_study")
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    runs = installed.project / "runs"
    assert (runs / "mlflow.db").is_file()
    reports = runs / "reports" / "my_study"
    with (reports / "table.csv").open() as f:
        table = {(r["problem.noise"], r["algorithm"]): r for r in csv.DictReader(f)}
    assert {(noise, algorithm) for noise, algorithm in table} == {
        (noise, algorithm) for noise in ("0.0", "0.1") for algorithm in ("my_method", "sgd", "adam")
    }
    assert all(row["n"] == "6" for row in table.values())  # seeds
    # the scaffold's Polyak step under interpolation: near the closed-form optimum (gap 0), far
    # below SGD at its constant step (means over the 6 seeds here: 2.3e-5 and 0.015)
    assert float(table["0.0", "my_method"]["mean"]) < 1e-3 < float(table["0.0", "sgd"]["mean"])
    assert (reports / "index.html").is_file() and list(reports.glob("*.png"))
    with (reports / "claims.csv").open() as f:
        (claim,) = csv.DictReader(f)
    assert claim["claim"] == "polyak_beats_sgd_under_interpolation"
    assert claim["seeds"] == "6"
    # six seeds, each with the Polyak step ahead by orders of magnitude: the signed-rank test's
    # smallest p-value (1/64) decides it
    assert claim["verdict"] == "reproduced", claim["evidence"]

    report = installed.run("optbench-report", "experiment=my_study")
    assert report.returncode == 0, report.stderr[-3000:]
    assert str(reports / "index.html") in report.stdout


def test_a_project_yaml_replaces_a_builtin_config(installed: Installed) -> None:
    (installed.project / "configs" / "algorithm" / "sgd.yaml").write_text(
        "_target_: optbench.algorithms.first_order.SGD\nlr: 0.25\nbatch_size: 4\n"
    )
    try:
        out = installed.run("optbench", "--cfg", "job", "problem=least_squares", "algorithm=sgd")
        assert out.returncode == 0, out.stderr
        composed = yaml.safe_load(out.stdout)
        assert composed["algorithm"] == {  # the project's file, not merged with the built-in
            "_target_": "optbench.algorithms.first_order.SGD",
            "lr": 0.25,
            "batch_size": 4,
        }
        assert composed["problem"]["_target_"] == "optbench.problems.least_squares.LeastSquares"
    finally:
        (installed.project / "configs" / "algorithm" / "sgd.yaml").unlink()


def test_a_target_that_cannot_be_imported_is_one_line(installed: Installed) -> None:
    broken = installed.project / "configs" / "algorithm" / "broken.yaml"
    broken.write_text("_target_: my_methd.MyMethod\n")
    try:
        out = installed.run("optbench", "problem=least_squares", "algorithm=broken")
    finally:
        broken.unlink()
    assert out.returncode == 2 and out.stdout == ""
    (line,) = out.stderr.splitlines()
    assert line.startswith("error: algorithm._target_: cannot import 'my_methd.MyMethod'")
    assert f"(searched: {installed.project}, " in line and "site-packages" in line
