"""Several ``optbench`` commands in one process (a process start costs seconds of imports):
``python -m tests.cli_cases '<json>'`` with a list of ``{"args": [...], "env": {...}}``; prints
one JSON list of ``{"returncode", "stdout", "stderr"}``. Each command runs through the console
script's entry point with its output captured at the file-descriptor level (MLflow's and
SQLAlchemy's logs included); an exception escaping it is printed as the traceback it would be.
Used where the command must run as another user (``setpriv``), which a test process cannot."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback
from typing import Any


def run_case(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    os.environ.update(env)
    sys.argv = ["optbench", *args]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        code = _captured(out, err)
        return {"returncode": code, "stdout": _read(out), "stderr": _read(err)}


def _captured(out: Any, err: Any) -> int:
    """``cli.main()`` with file descriptors 1 and 2 sent to ``out`` and ``err``; its exit code."""
    from optbench.platform import cli

    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    os.dup2(out.fileno(), 1)
    os.dup2(err.fileno(), 2)
    try:
        cli.main()
        return 0
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, old in zip((1, 2), saved, strict=True):
            os.dup2(old, fd)
            os.close(old)


def _read(handle: Any) -> str:
    handle.seek(0)
    return handle.read().decode("utf-8", "backslashreplace")


if __name__ == "__main__":
    cases = json.loads(sys.argv[1])
    print(json.dumps([run_case(c["args"], c.get("env", {})) for c in cases]))
