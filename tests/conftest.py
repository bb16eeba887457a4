"""Shared test fixtures: every test runs against its own temporary NUDGELAB_HOME."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from warehouse.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
TEST_KEY = "test-hash-key"
# A deprecation our own code triggers in a CLI subprocess (pytest's filters do not reach there).
OWN_DEPRECATION = re.compile(
    r"/(warehouse|ingest|experiments|dispatch|nudgelab|app_pages|bench)/\S+\.py:\d+: (\w*Deprecation|Future)Warning")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh NUDGELAB_HOME with a fixed hash key (never the developer's own)."""
    path = tmp_path / "home"
    monkeypatch.setenv("NUDGELAB_HOME", str(path))
    monkeypatch.setenv("NUDGELAB_HASH_KEY", TEST_KEY)
    return path


@pytest.fixture
def settings(home: Path):
    return load_settings(home)


def run_cli(*args: str, env_extra: dict[str, str] | None = None, check: bool = False) -> subprocess.CompletedProcess:
    """Run ``nudgelab`` as a user would, in a subprocess, with the test's environment."""
    env = dict(os.environ)
    env["PYTHONWARNINGS"] = "default::DeprecationWarning,default::FutureWarning"  # shown, so they can be caught
    env.update(env_extra or {})
    proc = subprocess.run(
        [sys.executable, "-m", "nudgelab.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"nudgelab {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    found = OWN_DEPRECATION.search(proc.stderr)
    if found:
        raise AssertionError(f"nudgelab {' '.join(args)} triggered a deprecation in our code: {found.group(0)}")
    return proc


def query(settings, sql: str, params: list | None = None) -> list[tuple]:
    """Read the warehouse (read-only) and return all rows."""
    conn = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return conn.execute(sql, params or []).fetchall()
    finally:
        conn.close()


# One built scenario for every test that only reads a warehouse and its snapshot (experiment
# reports, the app): large enough for the promo's +23 % click-through to be detectable, small
# enough to build in about half a minute. Tests that change a warehouse copy it (``scenario_copy``).
SCENARIO = {"users": 6000, "days": 21, "seed": 3}


@pytest.fixture(scope="session")
def scenario(tmp_path_factory):
    """(settings, ground truth, results summary) of a generated scenario: ingested, built, audited,
    analysed, scored for anomalies and published."""
    from experiments.anomalies.job import run_anomalies
    from experiments.warehouse_report import write_results
    from ingest.generator import generate
    from ingest.runner import run_ingest
    from nudgelab.pipeline import build
    from warehouse.connections import connect_build
    from warehouse.publish import publish

    root = tmp_path_factory.mktemp("scenario")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NUDGELAB_HOME", str(root / "home"))
        mp.setenv("NUDGELAB_HASH_KEY", TEST_KEY)
        mp.setenv("NUDGELAB_ALERT_LOG", str(root / "home" / "alerts.log"))
        settings = load_settings(root / "home")
        truth = generate(root / "data", fmt="parquet", **SCENARIO)
        run_ingest(settings, [root / "data"], quiet=True)
        result = build(settings)
        assert result.success, result.reason
        conn = connect_build(settings)
        try:
            summary = write_results(conn, settings)
            run_anomalies(conn, settings)
            publish(settings, conn)
        finally:
            conn.close()
    return settings, truth, summary


@pytest.fixture
def scenario_copy(scenario, tmp_path, monkeypatch):
    """A private copy of the scenario's home, for tests that build, publish or break things."""
    import shutil

    settings, truth, _ = scenario
    home = tmp_path / "home"
    shutil.copytree(settings.home, home)
    monkeypatch.setenv("NUDGELAB_HOME", str(home))
    monkeypatch.setenv("NUDGELAB_HASH_KEY", TEST_KEY)
    return load_settings(home), truth
