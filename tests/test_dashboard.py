"""The MLflow dashboard as a researcher meets it, in headless Chromium: ``optbench ui`` serves the
store the runs went to; from its home page an experiment opens on its runs table (training view,
no GenAI overview, no assistant panel), the sweep's parent unfolded with readable child names and
the key metric as a column; a run's page charts its metrics. The screenshots it takes are the
README's (``docs/mlflow_sweep.png``, ``docs/mlflow_metrics.png``).

Needs Debian's chromium and chromium-driver (``.ci/run`` installs them); without them the test
skips, except under CI (``CI`` or ``OPTBENCH_CI`` set), where it fails."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from optbench.platform import server
from tests.conftest import BIN, ROOT, cli

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
IN_CI = bool(os.environ.get("CI") or os.environ.get("OPTBENCH_CI"))


def wait_for(predicate, timeout: float = 90.0, step: float = 0.5):
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value or time.time() > deadline:
            return value
        time.sleep(step)


@pytest.fixture
def browser(tmp_path: Path):
    if CHROMIUM is None or DRIVER is None:
        message = "needs chromium and chromium-driver (apt-get install chromium chromium-driver)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chrome'}",  # a first visit: nothing chosen yet
        "--window-size=1600,1000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def ui(cli_env: dict[str, str]):
    """``optbench ui`` on a free port over the default store of ``cli_env``; its address and
    what it printed. Stopped by its process group."""
    port = server.free_port()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    process = subprocess.Popen(
        [str(BIN / "optbench"), "ui", "--port", str(port)],
        env={**env, **cli_env},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    address = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: server.healthy(address) or process.poll() is not None, 180)
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        yield address, process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def test_the_dashboard_opens_on_the_runs(cli_env: dict[str, str], runs_dir: Path, ui, browser):
    from selenium.webdriver.common.by import By

    result = cli(
        "-m",
        "problem=least_squares",
        "algorithm=sgd",
        "algorithm.lr=0.05,0.1",
        "seed=0",
        "budget.max_steps=40",
        "eval_every=10",
        "experiment_name=ui_check",
        env=cli_env,
    )
    assert result.returncode == 0, result.stderr
    store = f"sqlite:///{runs_dir}/mlflow.db"
    experiment = MlflowClient(store).get_experiment_by_name("ui_check")
    assert experiment.tags["optbench.key_metric"] == "gap"  # least squares' headline
    runs = MlflowClient(store).search_runs([experiment.experiment_id])
    parent = next(r for r in runs if r.data.tags["optbench.role"] == "sweep")
    children = [r for r in runs if r.data.tags["optbench.role"] == "run"]
    names = sorted(c.info.run_name for c in children)
    assert names == ["sgd@least_squares lr=0.05 seed=0", "sgd@least_squares lr=0.1 seed=0"]

    address, _ = ui
    driver = browser

    def body() -> str:
        return driver.find_element(By.TAG_NAME, "body").text

    # the home page lists the experiment; opening it lands on its runs table
    driver.get(address)
    link = wait_for(lambda: driver.find_elements(By.LINK_TEXT, "ui_check"))
    assert link, body()[:2000]
    link[0].click()
    assert wait_for(lambda: "matching runs" in body()), body()[:2000]
    assert "/runs" in driver.current_url
    # the training view, not the GenAI one (its "Overview" page and "Detect Issues" popup);
    # "Traces" stays a menu entry of the sidebar in both
    assert "workflowType=machine_learning" in driver.current_url
    assert "Overview" not in body() and "Detect Issues" not in body()
    # the assistant panel closed (its button's label stays in the page, hidden)
    assistant = driver.find_elements(By.XPATH, "//*[contains(text(), 'MLflow Assistant')]")
    assert not [e for e in assistant if e.is_displayed()]
    # the parent and its children, unfolded without a click; the key metric is a column
    assert wait_for(lambda: all(n in body() for n in [parent.info.run_name, *names])), body()
    assert f"{len(runs)} matching runs" in body()
    headers = [h.text.strip() for h in driver.find_elements(By.XPATH, "//*[@role='columnheader']")]
    assert "gap" in headers, headers
    shots = runs_dir / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(shots / "mlflow_sweep.png"))

    # a run's page: its metric charts
    child = children[0]
    driver.get(f"{address}/#/experiments/{experiment.experiment_id}/runs/{child.info.run_id}")
    assert wait_for(lambda: child.info.run_name in body() and "Model metrics" in body())
    driver.find_element(By.XPATH, "//*[normalize-space(text())='Model metrics']").click()

    def charts() -> int:
        return len(driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot, canvas, svg.main-svg"))

    assert wait_for(lambda: charts() > 0 and "progress/loss" in body()), body()[:2000]
    driver.save_screenshot(str(shots / "mlflow_metrics.png"))
    assert (shots / "mlflow_sweep.png").stat().st_size > 10_000
