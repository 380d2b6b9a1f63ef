"""The MLflow dashboard, read in headless Chromium: a sweep's parent run, its children and
their metric charts are there. Needs Debian's chromium and chromium-driver (.ci/run installs
them); skipped where they are missing."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from optbench.platform import server
from tests.conftest import cli

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None, reason="needs chromium and chromium-driver (apt)"
)


def wait_for(predicate, timeout: float = 60.0, step: float = 0.5):
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value or time.time() > deadline:
            return value
        time.sleep(step)


def test_sweep_parent_children_and_charts_in_the_ui(
    cli_env: dict[str, str], store: str, runs_dir: Path, tmp_path: Path
) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    result = cli(
        "-m",
        "problem=least_squares",
        "seed=0,1",
        "budget.max_steps=40",
        "eval_every=10",
        "experiment_name=ui_check",
        f"tracking.uri={store}",
        env=cli_env,
    )
    assert result.returncode == 0, result.stderr
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("ui_check")
    runs = client.search_runs([experiment.experiment_id])
    parent = next(r for r in runs if r.data.tags["optbench.role"] == "sweep")
    children = [r for r in runs if r.data.tags["optbench.role"] == "run"]

    db = Path(store.removeprefix("sqlite:///"))
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
        f"--user-data-dir={tmp_path / 'chrome'}",
        "--window-size=1600,1000",
    ):
        options.add_argument(flag)
    driver = None
    process, uri = server.start(db, read_only=True)  # what `make ui` serves
    try:
        driver = webdriver.Chrome(service=Service(DRIVER), options=options)
        base = f"{uri}/#/experiments/{experiment.experiment_id}"
        driver.get(f"{base}/runs")
        parent_name = parent.info.run_name

        def body() -> str:
            return driver.find_element(By.TAG_NAME, "body").text

        assert wait_for(lambda: parent_name in body()), body()[:2000]
        assert f"{len(runs)} matching runs" in body()
        # the parent is listed with its children folded under it: unfold them
        link = f"//a[contains(@href, '{parent.info.run_id}')]/ancestor::*[@role='row'][1]"
        row = driver.find_element(By.XPATH, link)
        row.find_element(By.TAG_NAME, "button").click()
        child_names = [c.info.run_name for c in children]
        assert wait_for(lambda: all(name in body() for name in child_names)), body()[:2000]
        shots = runs_dir / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(shots / "mlflow_sweep.png"))
        # a child's page, then its metric charts
        driver.get(f"{base}/runs/{children[0].info.run_id}")
        assert wait_for(lambda: children[0].info.run_name in body() and "Model metrics" in body())
        driver.find_element(By.XPATH, "//*[normalize-space(text())='Model metrics']").click()

        def charts() -> int:
            return len(
                driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot, canvas, svg.main-svg")
            )

        assert wait_for(lambda: charts() > 0 and "progress/loss" in body()), body()[:2000]
        driver.save_screenshot(str(shots / "mlflow_metrics.png"))
        assert (shots / "mlflow_sweep.png").stat().st_size > 10_000
    finally:
        if driver is not None:
            driver.quit()
        server.stop(process)
