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
