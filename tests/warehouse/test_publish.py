"""Publishing holds the writers off, checks what it copied, and publishes only the build it audited.

Issue 20, defects 1, 3, 9 (publish side), 10 and 11: a writer forced into the copy window, a
hand-run dbt and a hand-written mart row after the audit, a publish that runs out of file space,
a killed build's dbt child, and a second writer while one holds the warehouse.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from ingest.generator import generate
from ingest.runner import run_ingest
from nudgelab.pipeline import DBT_PROJECT, build, dbt_executable
from tests.conftest import ROOT, TEST_KEY, run_cli
from warehouse.connections import connect_build
from warehouse.lock import WarehouseBusy, warehouse_lock
from warehouse.publish import (
    CURRENT, PublishError, audit_problem, current_snapshot, publish, table_digest,
)
from warehouse.settings import load_settings

SIZE = {"users": 600, "days": 6, "seed": 5}


@pytest.fixture(scope="module")
def built_once(tmp_path_factory):
    """One small scenario, ingested and built; each test works on its own copy of the home."""
    root = tmp_path_factory.mktemp("publish")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NUDGELAB_HOME", str(root / "home"))
        mp.setenv("NUDGELAB_HASH_KEY", TEST_KEY)
        settings = load_settings(root / "home")
        generate(root / "data", fmt="csv", **SIZE)
        run_ingest(settings, [root / "data"], quiet=True)
        result = build(settings)
        assert result.success, result.reason
    return root / "home"


@pytest.fixture
def built(built_once, tmp_path, monkeypatch):
    home = tmp_path / "home"
    shutil.copytree(built_once, home)
    monkeypatch.setenv("NUDGELAB_HOME", str(home))
    monkeypatch.setenv("NUDGELAB_HASH_KEY", TEST_KEY)
    return load_settings(home)


def _env(settings, **extra) -> dict[str, str]:
    return {"NUDGELAB_HOME": str(settings.home), "NUDGELAB_HASH_KEY": TEST_KEY, **extra}


def _pointer(settings) -> str:
    return (settings.published_dir / CURRENT).read_text()


def _digests(path: Path) -> dict[str, list]:
    conn = duckdb.connect(str(path), read_only=True)
    try:
        names = conn.execute("SELECT schema_name, table_name FROM duckdb_tables() ORDER BY 1, 2").fetchall()
        return {f"{s}.{t}": table_digest(conn, f'"{s}"."{t}"') for s, t in names}
    finally:
        conn.close()


def test_a_writer_forced_into_the_copy_window_is_kept_out_and_the_snapshot_reads_whole(built, monkeypatch, tmp_path):
    (tmp_path / "late").mkdir()
    (tmp_path / "late" / "sends.csv").write_text("message_id,user_id,channel,occurred_at\nlate-1,u1,sms,2026-10-02T00:00:00Z\n")
    monkeypatch.setenv("NUDGELAB_FAULT", "publish_copy")
    outcome: dict = {}

    def publisher() -> None:
        with warehouse_lock(built.home, "nudgelab build"):
            conn = connect_build(built)
            try:
                outcome["snapshot"] = publish(built, conn)
            finally:
                conn.close()

    thread = threading.Thread(target=publisher)
    thread.start()
    copying = built.home / "publish.copying"
    deadline = time.monotonic() + 60
    while not copying.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert copying.exists(), "the publish never reached its copy"
    # the copy is under way: a nudgelab writer waits for the pipeline lock, then gives up
    ingest = run_cli("ingest", str(tmp_path / "late"), env_extra=_env(built, NUDGELAB_LOCK_WAIT="1"))
    assert ingest.returncode == 4, ingest.stderr
    assert "the warehouse is busy: `nudgelab build`" in ingest.stderr and f"pid {os.getpid()}" in ingest.stderr
    # and a writer that skips the pipeline lock meets DuckDB's own
    raw = subprocess.run([sys.executable, "-c", "import duckdb, sys; duckdb.connect(sys.argv[1]).execute("
                          "\"INSERT INTO raw.sends (event_id, occurred_at) VALUES ('x', now())\")",
                          str(built.warehouse_path)], capture_output=True, text=True, timeout=60)
    assert raw.returncode != 0 and "Conflicting lock" in raw.stderr
    (built.home / "publish.go").touch()
    thread.join(timeout=120)
    snapshot = outcome["snapshot"]
    assert (built.published_dir / CURRENT).read_text().strip() == snapshot.name
    published = _digests(snapshot)
    source = _digests(built.warehouse_path)
    assert published and all(source[name] == digest for name, digest in published.items())
    assert "marts.fct_messages" in published and "experiments.results" in published
    assert not [name for name in published if name.startswith(("raw.sends", "raw.deliveries", "staging."))]
    assert oct(snapshot.stat().st_mode & 0o777) == "0o600"


def test_a_hand_run_dbt_makes_the_build_unaudited_until_nudgelab_builds_it(built):
    before = _pointer(built)
    conn = connect_build(built)
    try:  # a send for a user nobody knows: fct_messages.user_id fails its relationships test
        conn.execute("INSERT INTO raw.sends (event_id, occurred_at, message_id, user_id, channel, source, batch_id, "
                     "ingested_at) VALUES ('stray', now(), 'stray-m', 'nobody', 'sms', 'hand', 'hand', now())")
    finally:
        conn.close()
    dbt = subprocess.run([dbt_executable(), "run", "--target-path", str(built.home / "hand_target"),
                          "--log-path", str(built.home / "hand_logs")], cwd=DBT_PROJECT,
                         env=dict(os.environ, NUDGELAB_HOME=str(built.home)), capture_output=True, text=True, timeout=600)
    assert dbt.returncode == 0, dbt.stdout[-2000:]
    for args in (["experiments", "report"], ["anomalies"]):
        proc = run_cli(*args, env_extra=_env(built))
        assert proc.returncode == 2, (args, proc.stderr)
        assert "dbt ran outside `nudgelab build`" in proc.stderr
    assert _pointer(built) == before
    failed = run_cli("build", "--quiet", env_extra=_env(built))
    assert failed.returncode == 2 and "relationships on fct_messages.user_id" in failed.stderr
    assert _pointer(built) == before


def test_a_mart_written_after_its_audit_is_not_published(built):
    before = _pointer(built)
    conn = connect_build(built)
    try:
        assert audit_problem(conn) is None
        conn.execute("UPDATE marts.fct_funnel_daily SET sent = sent + 1 WHERE rowid = 0")
        assert "marts.fct_funnel_daily" in audit_problem(conn)
        with pytest.raises(PublishError, match="the marts changed since their audit"):
            publish(built, conn)
    finally:
        conn.close()
    proc = run_cli("experiments", "report", env_extra=_env(built))
    assert proc.returncode == 2 and "marts.fct_funnel_daily" in proc.stderr
    assert _pointer(built) == before


def _limited(limit: int):
    def hook() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return hook


def test_a_publish_that_runs_out_of_space_says_so_and_leaves_nothing_behind(built):
    before = _pointer(built)
    snapshots = sorted(p.name for p in built.published_dir.iterdir())
    proc = subprocess.run([sys.executable, "-m", "nudgelab.cli", "experiments", "report"], cwd=ROOT,
                          env=dict(os.environ, **_env(built)), capture_output=True, text=True, timeout=600,
                          preexec_fn=_limited(512 * 1024))
    assert proc.returncode == 2, proc.stderr
    assert "not published" in proc.stderr and "File too large" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in built.published_dir.iterdir()) == snapshots  # no .partial left
    assert _pointer(built) == before


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _running(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(pid)
    return alive


def test_killing_a_build_kills_its_dbt_child_and_frees_the_warehouse(built):
    proc = subprocess.Popen([sys.executable, "-m", "nudgelab.cli", "build", "--full-refresh", "--quiet"], cwd=ROOT,
                            env=dict(os.environ, **_env(built)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    children: list[int] = []
    while time.monotonic() < deadline and not children:
        children = [c for c in _children(proc.pid) if b"dbt" in Path(f"/proc/{c}/cmdline").read_bytes()]
        time.sleep(0.1)
    assert children, "dbt never started"
    time.sleep(1.0)  # dbt is working on the warehouse now
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    # a full-refresh dbt build takes several seconds more; killed with its parent, it is gone at once
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and _running(children):
        time.sleep(0.05)
    assert not _running(children), f"dbt ({children}) outlived its killed parent"
    after = run_cli("build", "--quiet", env_extra=_env(built, NUDGELAB_LOCK_WAIT="5"))
    assert after.returncode == 0, after.stderr


def test_a_second_writer_waits_for_the_first_then_proceeds(built, tmp_path):
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "sends.csv").write_text("message_id,user_id,channel,occurred_at\nmore-1,u1,sms,2026-10-02T00:00:00Z\n")
    with warehouse_lock(built.home, "nudgelab build"):
        waiting = subprocess.Popen([sys.executable, "-m", "nudgelab.cli", "ingest", str(tmp_path / "more"), "--json"],
                                   cwd=ROOT, env=dict(os.environ, **_env(built, NUDGELAB_LOCK_WAIT="60")),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        assert waiting.poll() is None  # still waiting while the lock is held
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err
    assert '"loaded": 1' in out


def test_a_process_holding_duckdbs_lock_is_named_when_a_build_cannot_start(built):
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                               "print('open', flush=True); time.sleep(60)", str(built.warehouse_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        proc = run_cli("build", "--quiet", env_extra=_env(built))
        assert proc.returncode == 4, proc.stderr
        assert f"pid {holder.pid}" in proc.stderr and "has" in proc.stderr and "open" in proc.stderr
        with pytest.raises(WarehouseBusy, match=f"pid {holder.pid}"):
            connect_build(built)
    finally:
        holder.kill()
        holder.wait()


def test_dbts_hook_creates_build_state_with_the_ddl_nudgelab_uses():
    from warehouse.publish import STATE_DDL

    macro = (DBT_PROJECT / "macros" / "build_state.sql").read_text()
    words = lambda text: " ".join(text.lower().replace("(", " ( ").replace(")", " ) ").replace(",", " , ").split())  # noqa: E731
    statement = next(line for line in macro.splitlines() if "create table if not exists meta.build_state" in line)
    assert words(statement.strip().rstrip(";")) == words(STATE_DDL)
