"""Nothing a user types ends in a traceback: each bad value, file or override below goes through
the real ``optbench`` program and must end with exit code 2 and exactly one line on stderr,
``error: ...``, naming the key, file or value, with nothing stored. The cases run four at a time
(each is a whole process start)."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import cli

TINY = ["problem=least_squares", "problem.n_samples=50", "problem.dim=5", "budget.max_steps=5"]

#: (overrides, text the error line must contain)
VALUES = [
    (["algorithm=sgd", "algorithm.lr=nan"], "algorithm.lr: must be a finite number, got nan"),
    (["algorithm=sgd", "algorithm.lr=inf"], "algorithm.lr: must be a finite number, got inf"),
    (["algorithm=adam", "algorithm.milestones=[0.5,nan]"], "algorithm.milestones[1]"),
    (["budget.time_limit_s=-1"], "budget.time_limit_s: must be > 0"),
    (["budget.time_limit_s=inf"], "budget.time_limit_s: must be > 0"),
    (["budget.time_limit_s=nan"], "budget.time_limit_s: must be > 0"),
    (["budget.target.metric=gap", "budget.target.value=nan"], "budget.target.value: must be"),
    (["seed=-1"], "seed: must be in [0, 9223372036854775807], got -1"),
    (["seed=1180591620717411303424"], "seed: must be in"),
    (["budget.max_steps=1000000000000"], "budget.max_steps: must be in [0, 1000000000]"),
    (["tracking.max_points_per_metric=0"], "tracking.max_points_per_metric: must be >= 1"),
    (["device.dtype=float16"], "device.dtype=float16: half precision is not supported on the CPU"),
    (["device.dtype=bfloat16"], "device.dtype=bfloat16"),
    (["experiment_name=résumé"], "experiment_name='résumé'"),
    (["algorithm=sgd", "algorithm.schedule=nope"], "algorithm.schedule"),
    (["algorithm=hdpo"], "algorithm 'hdpo' solves 'inventory' problems"),
]


def run_all(cases: list[list[str]], env: dict[str, str]) -> list:
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda args: cli(*args, env=env), cases))


def assert_one_line(result, needle: str) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert needle in lines[0], lines[0]
    assert "Traceback" not in output
    return lines[0]


def test_bad_values_are_one_line_and_create_no_run(
    cli_env: dict[str, str], runs_dir: Path, tmp_path: Path
) -> None:
    cases = []
    for i, (args, _) in enumerate(VALUES):
        # each case its own store: a case that wrongly created a run is caught below
        store = f"tracking.uri=sqlite:///{tmp_path}/store{i}/mlflow.db"
        extra = [t for t in TINY if t.split("=")[0] not in {a.split("=")[0] for a in args}]
        cases.append([*extra, *args, store])
    cases.append(["-m", *TINY, "seed=range(0,0)"])
    results = run_all(cases, cli_env)
    for (_, needle), result in zip(VALUES, results[:-1], strict=True):
        assert_one_line(result, needle)
    line = assert_one_line(results[-1], "seed=range(0,0)")
    assert "empty sweep" in line
    for i in range(len(VALUES)):
        db = tmp_path / f"store{i}" / "mlflow.db"
        if db.exists():
            runs = sqlite3.connect(db).execute("select count(*) from runs").fetchone()[0]
            assert runs == 0, VALUES[i]


def test_bad_data_files_are_one_line(cli_env: dict[str, str], tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    binary = data / "weights.bin"
    binary.write_bytes(bytes(range(256)) * 40)
    huge = data / "huge_index.svm"
    huge.write_text("+1 1:0.5 3000000000:1\n-1 2:1\n")
    cases = [
        (str(data), f"problem.dataset: {data} is a directory, not a LIBSVM file"),
        (str(binary), f"problem.dataset: {binary} is a binary file, not LIBSVM text"),
        (str(huge), f"{huge}: 2 samples x 3000000000 features need about"),
    ]
    results = run_all(
        [["problem=logreg", f"problem.dataset={path}", "budget.max_steps=2"] for path, _ in cases],
        cli_env,
    )
    for (_, needle), result in zip(cases, results, strict=True):
        line = assert_one_line(result, needle)
        assert line.isprintable() and "\x00" not in result.stderr
    assert "GB of memory is available" in results[2].stderr


@pytest.mark.parametrize("field", ["label", "value"])
def test_a_bad_line_is_shown_printable(field: str, cli_env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.svm"
    token = "\x1b[31mred\x07" if field == "label" else "1:\x1b[2J"
    bad.write_text(f"+1 1:0.5\n{token} 2:1\n" if field == "label" else f"+1 {token}\n")
    result = cli("problem=logreg", f"problem.dataset={bad}", "budget.max_steps=2", env=cli_env)
    line = assert_one_line(result, "line 2" if field == "label" else "line 1")
    assert "\x1b" not in line and "\\x1b" in line
