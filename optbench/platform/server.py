"""Start and stop a local MLflow tracking server or dashboard (tests, benchmarks, scripts).

``make server`` and ``make ui`` run the same ``mlflow`` commands in the foreground; this module
starts them in the background on a free port, waits until ``/health`` answers, and stops them by
process group.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from optbench.platform import store
from optbench.platform.errors import TrackingError


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(host: str, port: int) -> bool:
    """Whether nothing listens on ``host:port`` (a server could bind it now)."""
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def healthy(uri: str) -> bool:
    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=2):
            return True
    except OSError:
        return False


def start(
    db: Path, artifacts: Path | None = None, read_only: bool = False, timeout: float = 180.0
) -> tuple[subprocess.Popen[bytes], str]:
    """``mlflow server`` (or, with ``read_only``, ``mlflow ui`` over a read-only connection)
    on a free port over the sqlite file ``db``; returns the process and its URI once healthy."""
    port = free_port()
    program = str(Path(sys.executable).parent / "mlflow")
    if read_only:
        command = [program, "ui", "--backend-store-uri", f"sqlite:///file:{db}?mode=ro&uri=true"]
    else:
        store.seed_from_template(db)  # no schema migrations in the server on a new file
        command = [program, "server", "--backend-store-uri", f"sqlite:///{db}"]
        if artifacts is not None:
            command += ["--artifacts-destination", str(artifacts)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    process = subprocess.Popen(
        command,
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while not healthy(uri):
        if process.poll() is not None or time.time() > deadline:
            stop(process)
            raise TrackingError(f"the MLflow server on {uri} did not start")
        time.sleep(0.5)
    return process, uri


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a server started by ``start`` (its whole process group), by PID."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
