"""The app in a real browser: ``streamlit run app.py`` on 127.0.0.1, driven by Debian's Chromium
through chromedriver (Selenium), through every page. Each page must render its own elements (its
title, and the element it exists for), show no Streamlit exception box and no empty main area; a
PNG of each is saved under tests/artifacts/ (make test installs chromium and chromium-driver)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, TEST_KEY

ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
# url path, title, a CSS selector of what the page is for
PAGES = [
    ("", "Overview", "[data-testid='stMetric']"),
    ("funnel", "Funnel", "[data-testid='stVegaLiteChart']"),
    ("engagement", "Engagement", "[data-testid='stVegaLiteChart']"),
    ("experiments", "Experiments", "[data-testid='stDataFrame']"),
    ("anomalies", "Anomalies", "[data-testid='stVegaLiteChart']"),
    ("data-health", "Data health", "[data-testid='stMetric']"),
    ("campaigns", "Campaigns", "[data-testid='stTextInput']"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(scenario):
    settings = scenario[0]
    port = _free_port()
    env = dict(os.environ, NUDGELAB_HOME=str(settings.home), NUDGELAB_HASH_KEY=TEST_KEY)
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
         "--global.developmentMode", "false", "--client.toolbarMode", "minimal"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        raise AssertionError(f"streamlit did not start: {proc.stdout.read().decode()[-2000:]}")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    assert Path(CHROMIUM).exists() and Path(DRIVER).exists(), "make test installs chromium and chromium-driver"
    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1440,1100",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def _rendered(driver, title: str, selector: str) -> bool:
    from selenium.webdriver.common.by import By

    app = driver.find_elements(By.CSS_SELECTOR, "[data-testid='stApp']")
    if not app or app[0].get_attribute("data-test-script-state") in (None, "initial", "running", "rerunRequested"):
        return False
    titles = [h.text for h in driver.find_elements(By.CSS_SELECTOR, "h1")]
    return title in titles and bool(driver.find_elements(By.CSS_SELECTOR, selector))


@pytest.mark.parametrize("path, title, selector", PAGES)
def test_every_page_renders_in_chromium(server, browser, path, title, selector):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{server}/{path}")
    WebDriverWait(browser, 90, poll_frequency=0.25).until(lambda d: _rendered(d, title, selector))
    time.sleep(1.0)  # let the charts finish drawing before the picture
    assert not browser.find_elements(By.CSS_SELECTOR, "[data-testid='stException']")
    main = browser.find_element(By.CSS_SELECTOR, "[data-testid='stMainBlockContainer']")
    assert len(main.text.strip()) > 50, "the main area is empty"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / f"{path or 'overview'}.png"
    browser.get_screenshot_as_file(str(shot))
    assert shot.stat().st_size > 10_000
