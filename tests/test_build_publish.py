"""Write-audit-publish and incremental builds: only passing builds publish; increments equal a full refresh."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest

from ingest.generator import generate
from ingest.runner import run_ingest
from nudgelab.pipeline import build
from tests.conftest import run_cli
from warehouse.connections import connect_build, connect_published
from warehouse.publish import current_snapshot

SIZE = {"users": 1500, "days": 14, "seed": 9}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def ingested(settings, tmp_path):
    generate(tmp_path / "data", fmt="csv", **SIZE)
    run_ingest(settings, [tmp_path / "data"])
    return settings


def test_a_failing_dbt_test_publishes_nothing_and_names_the_test(ingested):
    settings = ingested
    first = build(settings)
    assert first.success, first.reason
    snapshot = current_snapshot(settings)
    before = _digest(snapshot)
    conn = connect_build(settings)
    try:  # a receipt with a status outside the contract, slipped in behind the ingestor's back
        conn.execute(
            "INSERT INTO raw.deliveries (event_id, occurred_at, message_id, status, source, batch_id, ingested_at) "
            "VALUES ('broken-1', TIMESTAMPTZ '2026-10-02 10:00:00+00', 'msg-x', 'teleported', 'test', 'test', now())"
        )
    finally:
        conn.close()
    second = build(settings)
    assert not second.success
    assert "accepted_values" in second.reason and "status" in second.reason
    assert "previous snapshot is unchanged" in second.reason
    assert current_snapshot(settings) == snapshot and _digest(snapshot) == before


def test_the_cli_exits_non_zero_with_the_failing_test(ingested):
    settings = ingested
    conn = connect_build(settings)
    try:
        conn.execute("CREATE SCHEMA IF NOT EXISTS raw")
        conn.execute(
            "INSERT INTO raw.deliveries (event_id, occurred_at, message_id, status, source, batch_id, ingested_at) "
            "VALUES ('broken-2', TIMESTAMPTZ '2026-10-02 10:00:00+00', 'msg-y', 'teleported', 'test', 'test', now())"
        )
    finally:
        conn.close()
    proc = run_cli("build", "--quiet")
    assert proc.returncode == 2
    assert proc.stderr.startswith("nudgelab: build not published: dbt fail") and proc.stderr.count("\n") == 1
    assert current_snapshot(settings) is None


def test_readers_keep_answering_during_a_build(ingested):
    settings = ingested
    assert build(settings).success
    original = current_snapshot(settings)
    reader = connect_published(settings)
    answers: list[int] = []
    stop = threading.Event()

    def keep_reading() -> None:
        while not stop.is_set():
            answers.append(reader.execute("SELECT count(*) FROM marts.fct_messages").fetchone()[0])
            time.sleep(0.05)

    thread = threading.Thread(target=keep_reading)
    thread.start()
    try:
        result = build(settings)
    finally:
        stop.set()
        thread.join()
    assert result.success, result.reason
    assert len(answers) > 10 and len(set(answers)) == 1  # the old snapshot answered all along
    assert current_snapshot(settings) == result.snapshot != original
    reader.close()


def _split_by_time(source: Path, early: Path, late: Path, cutoff: str) -> None:
    """Split each generated file at ``cutoff`` (by occurred_at), as if the rest arrived later."""
    early.mkdir(parents=True)
    late.mkdir(parents=True)
    for path in source.glob("*.csv"):
        frame = pl.read_csv(path, infer_schema_length=0)
        at = pl.col("occurred_at").str.replace(r"Z$", "+00:00").str.to_datetime("%Y-%m-%dT%H:%M:%S%z", time_zone="UTC")
        before = at < pl.lit(cutoff).str.to_datetime("%Y-%m-%dT%H:%M:%S%z", time_zone="UTC")
        frame.filter(before).write_csv(early / path.name)
        frame.filter(~before).write_csv(late / path.name)


def _table(settings, name: str, order: str) -> pl.DataFrame:
    conn = connect_published(settings)
    try:
        frame = pl.from_arrow(conn.execute(f"SELECT * FROM marts.{name} ORDER BY {order}").to_arrow_table())
    finally:
        conn.close()
    return frame.drop([c for c in ("ingested_through",) if c in frame.columns])


def test_incremental_builds_equal_a_full_refresh(settings, tmp_path):
    generate(tmp_path / "data", fmt="csv", **SIZE)
    _split_by_time(tmp_path / "data", tmp_path / "part1", tmp_path / "part2", "2026-10-09T12:00:00+00:00")
    run_ingest(settings, [tmp_path / "part1"])
    assert build(settings).success
    run_ingest(settings, [tmp_path / "part2"])
    incremental = build(settings)
    assert incremental.success, incremental.reason
    tables = {"fct_messages": "message_id", "fct_funnel_daily": "ALL", "dim_users": "user_id",
              "fct_experiment_units": "experiment_id, unit_id",
              "fct_experiment_stats": "ALL", "fct_metric_timeseries": "ALL"}
    after_increments = {name: _table(settings, name, order) for name, order in tables.items()}
    assert after_increments["fct_messages"].height > 0
    assert build(settings, full_refresh=True).success
    for name, order in tables.items():
        full = _table(settings, name, order)
        assert full.equals(after_increments[name]), name


def test_build_without_a_warehouse_says_what_to_do(settings):
    proc = run_cli("build")
    assert proc.returncode == 2 and "run `nudgelab ingest` first" in proc.stderr
