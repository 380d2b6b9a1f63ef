"""Nothing a user types ends in a traceback: each bad value, file or override below goes through
the ``optbench`` entry point and must end with exit code 2 and exactly one line on stderr,
``error: ...``, naming the key, file or value, with no run stored.

The cases run in this process (``main_in_process``: the console script's own entry point, output
captured at the file-descriptor level); one test runs the real console script in a subprocess
(tests/test_cli.py runs more)."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import assert_one_line, cli, main_in_process

TINY = ["problem=least_squares", "problem.n_samples=50", "problem.dim=5", "budget.max_steps=5"]

#: (overrides, text the error line must contain)
VALUES = [
    (["algorithm=sgd", "algorithm.lr=nan"], "algorithm.lr: must be a finite number, got nan"),
    (["algorithm=sgd", "algorithm.lr=inf"], "algorithm.lr: must be a finite number, got inf"),
    (["algorithm=adam", "algorithm.milestones=[0.5,nan]"], "algorithm.milestones[1]"),
    (["problem.noise=-inf"], "problem.noise: must be a finite number, got -inf"),
    (["budget.time_limit_s=-1"], "budget.time_limit_s: must be > 0"),
    (["budget.time_limit_s=inf"], "budget.time_limit_s: must be > 0"),
    (["budget.time_limit_s=nan"], "budget.time_limit_s: must be > 0"),
    (["budget.target.metric=gap", "budget.target.value=nan"], "budget.target.value: must be"),
    (["seed=-1"], "seed: must be in [0, 9223372036854775807], got -1"),
    (["seed=1180591620717411303424"], "seed: must be in"),
    (["budget.max_steps=1000000000000"], "budget.max_steps: must be in [0, 1000000000]"),
    (["budget.stall_steps=0"], "budget.stall_steps: must be >= 1, got 0"),
    (["eval_every=0"], "eval_every: must be >= 1, got 0"),
    (["device.threads=0"], "device.threads: must be >= 1, got 0"),
    (["tracking.max_points_per_metric=0"], "tracking.max_points_per_metric: must be >= 1"),
    (["device.dtype=float16"], "device.dtype=float16: half precision is not supported on the CPU"),
    (["device.dtype=bfloat16"], "device.dtype=bfloat16"),
    (["experiment_name=résumé"], "experiment_name='résumé'"),
    (["algorithm=sgd", "algorithm.schedule=nope"], "algorithm.schedule"),
    (["algorithm=hdpo"], "algorithm 'hdpo' solves 'inventory' problems"),
]


def count_runs(db: Path) -> int:
    """Runs in the sqlite store ``db`` (0 when there is no store)."""
    if not db.exists():
        return 0
    with contextlib.closing(sqlite3.connect(db)) as connection:
        return connection.execute("select count(*) from runs").fetchone()[0]


def test_bad_values_are_one_line_and_create_no_run(
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    runs_dir: Path,
    tmp_path: Path,
) -> None:
    db = tmp_path / "mlflow.db"  # one store: after each case, still without a run
    for args, needle in VALUES:
        extra = [t for t in TINY if t.split("=")[0] not in {a.split("=")[0] for a in args}]
        result = main_in_process(capfd, monkeypatch, *extra, *args, f"tracking.uri=sqlite:///{db}")
        assert_one_line(result, needle)
        assert count_runs(db) == 0, args
    # an empty sweep list: refused before a parent run is opened
    result = main_in_process(
        capfd, monkeypatch, "-m", *TINY, "seed=range(0,0)", f"tracking.uri=sqlite:///{db}"
    )
    assert_one_line(result, "seed=range(0,0)", "empty sweep")
    assert count_runs(db) == 0


def test_the_real_program_refuses_a_bad_number_in_one_line(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """The console script itself, in its own process: one line, exit 2, no store written."""
    db = tmp_path / "mlflow.db"
    result = cli(*TINY, "budget.time_limit_s=nan", f"tracking.uri=sqlite:///{db}", env=cli_env)
    assert_one_line(result, "budget.time_limit_s: must be > 0 (null: no limit), got nan")
    assert not db.exists()


def test_bad_data_files_are_one_line(
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    runs_dir: Path,
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    binary = data / "weights.bin"
    binary.write_bytes(bytes(range(256)) * 40)
    huge = data / "huge_index.svm"
    huge.write_text("+1 1:0.5 2000000000:1\n-1 2:1\n")
    too_huge = data / "too_huge_index.svm"
    too_huge.write_text("+1 1:0.5 3000000000:1\n-1 2:1\n")
    bad_label = data / "bad_label.svm"
    bad_label.write_text("+1 1:0.5\n\x1b[31mred\x07 2:1\n")
    bad_value = data / "bad_value.svm"
    bad_value.write_text("+1 1:\x1b[2J\n")
    cases = [
        (data, f"problem.dataset: {data} is a directory, not a LIBSVM file"),
        (binary, f"problem.dataset: {binary} is a binary file, not LIBSVM text"),
        (huge, f"{huge}: 2 samples x 2000000000 features need about"),
        (too_huge, f"{too_huge}: a feature index exceeds 2147483647"),
        (bad_label, "line 2: label '\\x1b[31mred\\x07' is not a number"),
        (bad_value, "line 1: value '\\x1b[2J' of feature 1 is not a number"),
    ]
    for path, needle in cases:
        result = main_in_process(
            capfd, monkeypatch, "problem=logreg", f"problem.dataset={path}", "budget.max_steps=2"
        )
        line = assert_one_line(result, needle)
        assert line.isprintable() and "\x00" not in result.stderr and "\x1b" not in line
        if path == huge:
            # 8 (2 n d + 3 d^2) bytes for n = 2, d = 2e9: about 9.6e19 bytes
            assert "about 9.6e+10 GB" in line and "GB of memory is available" in line
