"""Write-audit-publish and incremental builds: only passing builds publish; increments equal a full refresh."""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import timedelta
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


def _one_row(settings, sql: str, params: list | None = None) -> tuple | None:
    """One row from the build database (which the app never reads; tests look behind the snapshot)."""
    conn = connect_build(settings)
    try:
        return conn.execute(sql, params or []).fetchone()
    finally:
        conn.close()


def _ingest_batch(settings, folder: Path, name: str, text: str) -> None:
    """Land one small CSV file as a batch of its own, as a later delivery of data would."""
    folder.mkdir()
    (folder / name).write_text(text)
    assert run_ingest(settings, [folder]).total("loaded") == 1


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


def test_a_build_tests_what_arrived_and_a_full_refresh_tests_everything(ingested):
    """Data tests read the rows a build brought (macros/test_scope.sql); a bad row slipped into
    rows that were already tested is found by the next full refresh, which tests every row."""
    settings = ingested
    assert build(settings).success
    conn = connect_build(settings)
    try:  # changes an old, already tested receipt in place, keeping its ingested_at
        conn.execute("UPDATE raw.deliveries SET status = 'teleported' "
                     "WHERE event_id = (SELECT min(event_id) FROM raw.deliveries)")
    finally:
        conn.close()
    assert build(settings).success
    every_row = build(settings, test_all_rows=True)
    assert not every_row.success and "accepted_values" in every_row.reason and "status" in every_row.reason
    full = build(settings, full_refresh=True)
    assert not full.success and "accepted_values" in full.reason and "status" in full.reason


def test_after_a_failed_build_the_next_one_tests_every_row(ingested, tmp_path):
    """A failed build leaves what it wrote in the build database, unpublished; the next build must
    not pass it by testing only the rows that arrived since (here: one unrelated click)."""
    settings = ingested
    assert build(settings).success
    _ingest_batch(settings, tmp_path / "orphan", "sends.csv",
                  "event_id,occurred_at,message_id,user_id,campaign_id,channel,provider,provider_message_id,recipient\n"
                  "orphan-s1,2026-10-05T10:00:00Z,orphan-m1,u-without-profile,bill_due,sms,kannel-a,orphan-p1,+14155552671\n")
    failed = build(settings)
    assert not failed.success and "relationships" in failed.reason
    message, user = _one_row(settings, "SELECT message_id, user_id FROM raw.sends WHERE user_id <> 'u-without-profile' "
                                       "ORDER BY message_id LIMIT 1")
    _ingest_batch(settings, tmp_path / "click", "clicks.csv",
                  "event_id,occurred_at,message_id,user_id,link_id,url,user_agent\n"
                  f"late-click-1,2026-10-05T11:00:00Z,{message},{user},l1,https://x.test/a,Mozilla/5.0\n")
    again = build(settings)
    assert not again.success and "relationships" in again.reason


def test_a_partial_build_leaves_nothing_behind(ingested, tmp_path):
    """`--select fct_messages` after a late receipt rebuilds the mart from parents that have not
    seen it; the next whole build must still bring the message up to date."""
    settings = ingested
    assert build(settings).success
    message, provider = _one_row(
        settings, "SELECT message_id, provider FROM marts.fct_messages WHERE final_status = 'delivered' "
                  "ORDER BY message_id LIMIT 1")
    _ingest_batch(settings, tmp_path / "late", "deliveries.csv",
                  "event_id,occurred_at,message_id,provider,status,channel\n"
                  f"late-failure-1,2026-10-20T10:00:00Z,{message},{provider},failed,sms\n")
    assert build(settings, select="fct_messages").success
    assert build(settings).success
    status = _one_row(settings, "SELECT final_status FROM marts.fct_messages WHERE message_id = ?", [message])
    assert status == ("failed",)  # a failure outranks the earlier delivery


def test_a_partial_build_after_a_failed_one_is_refused(ingested):
    settings = ingested
    conn = connect_build(settings)
    try:  # a build that never passed: nothing audited yet
        conn.execute("CREATE SCHEMA IF NOT EXISTS meta")
    finally:
        conn.close()
    refused = build(settings, select="fct_engagement_hourly")
    assert not refused.success and "without --select" in refused.reason
    assert current_snapshot(settings) is None


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


def _split_by_time(source: Path, parts: list[Path], cutoffs: list[str]) -> None:
    """Split each generated file by occurred_at at ``cutoffs``, as if each part arrived later."""
    bounds = [pl.lit(c).str.to_datetime("%Y-%m-%dT%H:%M:%S%z", time_zone="UTC") for c in cutoffs]
    for part in parts:
        part.mkdir(parents=True)
    for path in source.glob("*.csv"):
        frame = pl.read_csv(path, infer_schema_length=0)
        at = pl.col("occurred_at").str.replace(r"Z$", "+00:00").str.to_datetime("%Y-%m-%dT%H:%M:%S%z", time_zone="UTC")
        lower = None
        for part, upper in zip(parts, [*bounds, None]):
            keep = pl.lit(True)
            if lower is not None:
                keep = keep & (at >= lower)
            if upper is not None:
                keep = keep & (at < upper)
            frame.filter(keep).write_csv(part / path.name)
            lower = upper


def _table(settings, name: str, order: str) -> pl.DataFrame:
    """A mart as readers see it (the snapshot); an intermediate from the build database (never published)."""
    conn = connect_published(settings) if name.startswith("marts.") else connect_build(settings)
    try:
        frame = pl.from_arrow(conn.sql(f"SELECT * FROM {name} ORDER BY {order}").to_arrow_table())
    finally:
        conn.close()
    return frame.drop([c for c in ("ingested_through",) if c in frame.columns])


def _late_send_and_profile_change(data: Path, out: Path) -> None:
    """One more batch: a send whose receipts (carrying only the provider's id) landed before it,
    and a user's new profile version, both of which change rows built earlier."""
    out.mkdir()
    (out / "deliveries.csv").write_text(
        "event_id,occurred_at,provider,provider_message_id,status,channel\n"
        "late-r1,2026-10-03T10:00:05Z,kannel-a,prov-late-1,delivered,sms\n"
    )
    users = pl.read_csv(data / "users.csv", infer_schema_length=0)
    first = users.row(0, named=True)
    (out / "sends.csv").write_text(
        "event_id,occurred_at,message_id,user_id,campaign_id,channel,provider,provider_message_id,recipient\n"
        f"late-s1,2026-10-03T10:00:00Z,late-m1,{first['user_id']},bill_due,sms,kannel-a,prov-late-1,+14155552671\n"
    )
    changed = users.head(1).with_columns(
        pl.lit("profile-change-1").alias("event_id"), pl.lit("2026-10-20T00:00:00Z").alias("occurred_at"),
        pl.lit("lapsed" if first["segment"] != "lapsed" else "regular").alias("segment"),
    )
    changed.write_csv(out / "users.csv")


MARTS = {"marts.fct_messages": "message_id", "marts.fct_funnel_daily": "ALL", "marts.dim_users": "user_id",
         "marts.fct_engagement_hourly": "ALL", "marts.fct_experiment_units": "experiment_id, unit_id",
         "marts.fct_experiment_stats": "ALL", "marts.fct_metric_timeseries": "ALL",
         "intermediate.int_receipts_aggregated_to_messages": "message_id",
         "intermediate.int_clicks_aggregated_to_messages": "message_id",
         "intermediate.int_dwells_aggregated_to_messages": "message_id",
         "intermediate.int_conversions_attributed_to_messages": "conversion_id"}


def test_incremental_builds_equal_a_full_refresh(settings, tmp_path):
    generate(tmp_path / "data", fmt="csv", **SIZE)
    parts = [tmp_path / f"part{i}" for i in range(3)]
    _split_by_time(tmp_path / "data", parts, ["2026-10-09T12:00:00+00:00", "2026-10-12T07:00:00+00:00"])
    _late_send_and_profile_change(tmp_path / "data", tmp_path / "part3")
    (tmp_path / "part4").mkdir()  # the late send recorded again, under a new provider id
    (tmp_path / "part4" / "sends.csv").write_text(
        (tmp_path / "part3" / "sends.csv").read_text().replace("late-s1,", "late-s2,").replace("prov-late-1", "prov-late-2")
    )
    run_ingest(settings, [parts[0]])
    assert build(settings).success
    for part in [*parts[1:], tmp_path / "part3", tmp_path / "part4"]:
        summary = run_ingest(settings, [part])
        assert not summary.errors and summary.total("loaded") > 0, summary.errors
        incremental = build(settings)
        assert incremental.success, incremental.reason
        if part.name == "part3":
            late = _table(settings, "marts.fct_messages", "message_id").filter(pl.col("message_id") == "late-m1")
            assert late["final_status"].to_list() == ["delivered"]  # the receipt that came first was adopted
    after_increments = {name: _table(settings, name, order) for name, order in MARTS.items()}
    assert after_increments["marts.fct_messages"].height > 0
    late = after_increments["marts.fct_messages"].filter(pl.col("message_id") == "late-m1")
    assert late["final_status"].to_list() == [None]  # its new provider id matches no receipt any more
    assert build(settings, full_refresh=True).success
    for name, order in MARTS.items():
        full = _table(settings, name, order)
        assert full.equals(after_increments[name]), name


def test_build_without_a_warehouse_says_what_to_do(settings):
    proc = run_cli("build")
    assert proc.returncode == 2 and "run `nudgelab ingest` first" in proc.stderr


def test_a_stray_early_send_costs_only_its_own_hours_in_the_time_series(ingested):
    settings = ingested
    assert build(settings).success
    before = _one_row(settings, "SELECT count(*), max(hour_at), min(hour_at) FROM marts.fct_metric_timeseries")
    rows, newest, oldest = before
    user = _one_row(settings, "SELECT user_id FROM marts.dim_users ORDER BY user_id LIMIT 1")[0]
    ten_days_early = (oldest - timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    folder = settings.home.parent / "stray"
    folder.mkdir()
    (folder / "sends.csv").write_text(
        "message_id,user_id,channel,campaign_id,provider,occurred_at\n"
        f"stray-1,{user},sms,stray_campaign,kannel-a,2025-10-01T08:00:00Z\n"  # a year before: outside the horizon
        f"stray-2,{user},sms,stray_campaign,kannel-a,{ten_days_early}\n"
    )
    assert run_ingest(settings, [folder]).total("loaded") == 2
    assert build(settings).success
    after, newest_after, _ = _one_row(settings, "SELECT count(*), max(hour_at), min(hour_at) FROM marts.fct_metric_timeseries")
    assert newest_after == newest
    own_hours = int((newest - (oldest - timedelta(days=10))).total_seconds() // 3600) + 1
    # one new slice, from its first hour in the horizon to the newest (the old spine stretched every
    # slice back to the earliest hour of all: a year of hours for each)
    assert after - rows == own_hours
    stray = _one_row(settings, "SELECT min(hour_at), sum(sent) FROM marts.fct_metric_timeseries "
                               "WHERE campaign_id = 'stray_campaign'")
    assert stray[1] == 1 and stray[0] == oldest - timedelta(days=10)
