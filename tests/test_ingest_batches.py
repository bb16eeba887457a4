"""Batches are atomic and idempotent; the spool drains exactly once; the CLI speaks clearly."""

from __future__ import annotations

import json
from pathlib import Path

from ingest.runner import run_ingest
from ingest.spool import SpoolWriter, closed_files
from tests.conftest import query, run_cli
from tests.test_ingest_bad_input import SENDS_HEADER, send_row, write


def test_a_crash_mid_batch_leaves_nothing_and_a_rerun_completes_it(settings, tmp_path):
    path = write(tmp_path / "sends.csv", [SENDS_HEADER] + [send_row(i) for i in range(50)] + ["bad,row"])
    crashed = run_cli("ingest", str(path), env_extra={"NUDGELAB_FAULT": "after_land"})
    assert crashed.returncode == 17  # the process died after landing rows, before the commit
    assert query(settings, "SELECT count(*) FROM raw.sends")[0][0] == 0
    assert query(settings, "SELECT count(*) FROM raw.quarantine")[0][0] == 0
    assert query(settings, "SELECT count(*) FROM raw.ingest_batches")[0][0] == 0
    rerun = run_cli("ingest", str(path), "--json", check=True)
    summary = json.loads(rerun.stdout)
    assert (summary["loaded"], summary["quarantined"], summary["duplicates"]) == (50, 1, 0)
    assert query(settings, "SELECT count(*) FROM raw.sends")[0][0] == 50


def test_reingesting_a_file_loads_nothing_new(settings, tmp_path):
    path = write(tmp_path / "sends.csv", [SENDS_HEADER] + [send_row(i) for i in range(20)])
    first = run_ingest(settings, [path]).batches[0]
    second = run_ingest(settings, [path]).batches[0]
    assert (first.loaded, first.duplicates) == (20, 0)
    assert (second.loaded, second.duplicates) == (0, 20)
    assert query(settings, "SELECT count(*) FROM raw.sends")[0][0] == 20
    assert query(settings, "SELECT count(*) FROM raw.ingest_batches")[0][0] == 2


def test_derived_event_ids_make_sources_without_ids_idempotent(settings, tmp_path):
    path = write(
        tmp_path / "conversions.csv",
        ["occurred_at,user_id,conversion_type,value,currency",
         "2026-10-01T10:00:00Z,u1,payment,20.00,EUR", "2026-10-01T11:00:00Z,u1,payment,20.00,EUR"],
    )
    run_ingest(settings, [path])
    again = run_ingest(settings, [path]).batches[0]
    assert (again.loaded, again.duplicates) == (0, 2)
    ids = [r[0] for r in query(settings, "SELECT event_id FROM raw.conversions ORDER BY occurred_at")]
    assert len(set(ids)) == 2 and all(i.startswith("con-") for i in ids)


def test_receipts_are_joined_to_sends_through_the_provider_id(settings, tmp_path):
    sends = write(tmp_path / "sends.csv", [SENDS_HEADER, send_row(1), send_row(2)])
    receipts = write(
        tmp_path / "deliveries.csv",
        ["occurred_at,provider,provider_message_id,status,error_code",
         "2026-10-01T10:01:00Z,kannel-a,p2,delivered,", "2026-10-01T10:02:00Z,kannel-a,p-unknown,failed,30003"],
    )
    run_ingest(settings, [sends, receipts])
    rows = query(settings, "SELECT provider_message_id, message_id, user_id, campaign_id, channel FROM raw.deliveries ORDER BY 1")
    assert rows == [("p-unknown", None, None, None, None), ("p2", "m2", "u2", "bill_due", "sms")]


def test_the_spool_drains_closed_files_once(settings, tmp_path):
    with SpoolWriter(settings.spool_dir) as spool:
        spool.write("clicks", {"event_id": "k1", "occurred_at": "2026-10-01T10:00:00Z", "message_id": "m1",
                               "user_agent": "facebookexternalhit/1.1", "ip": "203.0.113.9"})
        spool.write("clicks", {"event_id": "k2", "occurred_at": "2026-10-01T10:00:05Z", "message_id": "m1",
                               "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)"})
        spool.write("replies", {"event_id": "r1", "occurred_at": "2026-10-01T10:03:00Z", "user_id": "u1",
                                "text": "STOP", "keyword": "STOP"})
    open_file = SpoolWriter(settings.spool_dir)
    open_file.write("clicks", {"event_id": "k3", "occurred_at": "2026-10-01T10:09:00Z", "message_id": "m2"})
    summary = run_ingest(settings, [], spool=True)
    assert summary.total("loaded") == 3  # the still-open file waits for its writer to close it
    assert closed_files(settings.spool_dir) == []
    assert query(settings, "SELECT event_id, is_bot, bot_reason FROM raw.clicks ORDER BY 1") == [
        ("k1", True, "link_preview"), ("k2", False, None)]
    open_file.close()
    assert run_ingest(settings, [], spool=True).total("loaded") == 1
    assert (settings.spool_dir / "done").is_dir() and len(list((settings.spool_dir / "done").iterdir())) == 2


def test_every_command_has_help():
    for args in (["--help"], ["generate", "--help"], ["ingest", "--help"], ["build", "--help"], ["anomalies", "--help"],
                 ["experiments", "--help"], ["experiments", "analyze", "--help"], ["experiments", "report", "--help"]):
        proc = run_cli(*args)
        assert proc.returncode == 0 and "usage: nudgelab" in proc.stdout


def test_missing_file_exits_non_zero_with_one_line(settings, tmp_path):
    proc = run_cli("ingest", str(tmp_path / "nope.csv"))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "no such file" in proc.stderr


def test_unknown_format_exits_non_zero_with_one_line(settings, tmp_path):
    path = tmp_path / "notes.bin"
    path.write_bytes(b"\x00\x01\x02 not a log at all")
    proc = run_cli("ingest", str(path))
    assert proc.returncode == 2
    assert "unknown format" in proc.stderr and proc.stderr.strip().count("\n") == 0


def test_json_summary_has_the_documented_shape(settings, tmp_path):
    path = write(tmp_path / "sends.csv", [SENDS_HEADER, send_row(1), send_row(1), "x"])
    proc = run_cli("ingest", str(path), "--json", check=True)
    out = json.loads(proc.stdout)
    assert {k: out[k] for k in ("rows_read", "loaded", "duplicates", "quarantined")} == {
        "rows_read": 3, "loaded": 1, "duplicates": 1, "quarantined": 1}
    assert out["by_type"]["sends"] == {"rows_read": 3, "loaded": 1, "duplicates": 1, "quarantined": 1}


def test_the_table_output_shows_counts_and_expectations(settings, tmp_path):
    path = write(tmp_path / "sends.csv", [SENDS_HEADER, send_row(1)])
    proc = run_cli("ingest", str(path), check=True)
    assert "ingest summary" in proc.stdout and "sends" in proc.stdout
    assert "data expectations: 1 suites passed" in proc.stdout
    batch = query(settings, "SELECT validation_success, validation FROM raw.ingest_batches")[0]
    assert batch[0] is True and json.loads(batch[1])[0]["table"] == "sends"


def test_expectation_failures_are_stored_with_the_batch(settings, tmp_path, monkeypatch):
    import ingest.expectations as ex

    original = ex.suite_for

    def stricter(spec, expected_rows):  # a contract that the data cannot meet: segments must be 2
        suite = original(spec, expected_rows)
        gx, _, _ = ex._context()
        suite.add_expectation(gx.expectations.ExpectColumnValuesToBeBetween(column="segments", min_value=2, max_value=2))
        return suite

    monkeypatch.setattr(ex, "suite_for", stricter)
    path = write(tmp_path / "sends.csv", [SENDS_HEADER, send_row(1)])
    batch = run_ingest(settings, [path]).batches[0]
    assert not batch.validation_success
    stored = json.loads(query(settings, "SELECT validation FROM raw.ingest_batches")[0][0])
    assert stored[0]["failures"][0]["expectation"] == "expect_column_values_to_be_between"


def test_final_status_follows_precedence_not_arrival(settings, tmp_path):
    from ingest.receipts import final_statuses
    from warehouse.connections import connect_build

    receipts = write(
        tmp_path / "deliveries.csv",
        ["occurred_at,message_id,provider,provider_message_id,status",
         "2026-10-01T10:05:00Z,m1,twilio,SM1,failed",      # a segment failed ...
         "2026-10-01T10:06:00Z,m1,twilio,SM1,accepted",    # ... a later 'sent' must not hide it
         "2026-10-01T10:01:00Z,m2,twilio,SM2,accepted",
         "2026-10-01T10:03:00Z,m2,twilio,SM2,delivered",
         "2026-10-01T10:02:00Z,m3,twilio,SM3,unknown"],
    )
    run_ingest(settings, [receipts])
    conn = connect_build(settings)
    try:
        got = {m: s for m, s, _ in final_statuses(conn)}
    finally:
        conn.close()
    assert got == {"m1": "failed", "m2": "delivered", "m3": "unknown"}
