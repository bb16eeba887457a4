"""Bad input, tried on purpose: each case has a clear outcome, reconciled counts, and good rows land."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from ingest.readers.base import ReaderError
from ingest.runner import run_ingest
from tests.conftest import query

SENDS_HEADER = "event_id,occurred_at,message_id,user_id,campaign_id,channel,provider,provider_message_id,recipient,segments"


def send_row(i: int, occurred: str = "2026-10-01T10:00:00Z", segments: str = "1") -> str:
    return f"s{i},{occurred},m{i},u{i},bill_due,sms,kannel-a,p{i},+1415555{2600 + i:04d},{segments}"


def write(path: Path, lines: list[str], newline: str = "\n", bom: bool = False) -> Path:
    data = newline.join(lines) + newline
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data.encode("utf-8"))
    return path


def ingest(settings, *paths: Path, **kwargs):
    summary = run_ingest(settings, list(paths), **kwargs)
    assert not summary.errors, summary.errors
    return summary


def assert_reconciled(settings, summary) -> None:
    """read = loaded + duplicates + quarantined, in the summary, the ledger and the tables."""
    for batch in summary.batches:
        assert batch.rows_read == batch.loaded + batch.duplicates + batch.quarantined
        ledger = query(settings, "SELECT rows_read, loaded, duplicates, quarantined FROM raw.ingest_batches WHERE batch_id = ?",
                       [batch.batch_id])
        assert ledger == [(batch.rows_read, batch.loaded, batch.duplicates, batch.quarantined)]
        quarantined = query(settings, "SELECT count(*) FROM raw.quarantine WHERE batch_id = ?", [batch.batch_id])[0][0]
        assert quarantined == batch.quarantined
        landed = 0
        for kind in batch.by_type:
            if kind.startswith("("):
                continue
            landed += query(settings, f"SELECT count(*) FROM raw.{kind} WHERE batch_id = ?", [batch.batch_id])[0][0]
        assert landed == batch.loaded


def reasons(settings) -> list[str]:
    return [r[0] for r in query(settings, "SELECT reason FROM raw.quarantine ORDER BY line_number")]


def test_malformed_csv_lines_are_quarantined_and_good_rows_land(settings, tmp_path):
    path = write(tmp_path / "sends.csv", [SENDS_HEADER, send_row(1), send_row(2) + ",surplus", send_row(3), 's4,"unterminated'])
    summary = ingest(settings, path)
    batch = summary.batches[0]
    assert (batch.rows_read, batch.loaded, batch.quarantined) == (4, 2, 2)
    rows = query(settings, "SELECT line_number, raw_record, reason FROM raw.quarantine ORDER BY line_number")
    assert [r[0] for r in rows] == [3, 5]
    assert "TOO MANY COLUMNS" in rows[0][2] and "surplus" in rows[0][1]
    assert "unterminated quote" in rows[1][2]
    assert query(settings, "SELECT event_id, line_number FROM raw.sends ORDER BY 1") == [("s1", 2), ("s3", 4)]
    assert_reconciled(settings, summary)


def test_wrong_types_name_the_field_and_the_value(settings, tmp_path):
    path = write(tmp_path / "sends.csv", [SENDS_HEADER, send_row(1, segments="two"), send_row(2, segments="0"), send_row(3)])
    summary = ingest(settings, path)
    assert summary.batches[0].loaded == 1
    got = reasons(settings)
    assert got[0] == "segments 'two' is not a whole number"
    assert got[1] == "segments '0' is below 1"
    assert_reconciled(settings, summary)


def test_unknown_event_type_in_an_event_type_column_is_quarantined(settings, tmp_path):
    path = write(
        tmp_path / "mixed.csv",
        ["event_type,event_id,occurred_at,user_id,conversion_type,value",
         "conversion,c1,2026-10-01T10:00:00Z,u1,payment,12.5",
         "refund,c2,2026-10-01T10:00:00Z,u1,payment,3"],
    )
    summary = ingest(settings, path)
    assert summary.batches[0].loaded == 1
    assert reasons(settings) == ["unknown event type refund (expected one of sends, deliveries, clicks, dwells, "
                                 "conversions, replies, assignments, experiments, users)"]
    assert_reconciled(settings, summary)


def test_unknown_type_option_is_refused_before_anything_is_read(settings, tmp_path):
    path = write(tmp_path / "x.csv", [SENDS_HEADER, send_row(1)])
    with pytest.raises(ReaderError, match="unknown event type 'bounce'"):
        run_ingest(settings, [path], event_type="bounce")


def test_naive_timestamp_is_quarantined_without_a_timezone(settings, tmp_path):
    path = write(tmp_path / "sends.csv", [SENDS_HEADER, send_row(1, occurred="2026-10-01 10:00:00")])
    summary = ingest(settings, path)
    assert summary.batches[0].quarantined == 1
    assert "has no time zone: rerun with --timezone" in reasons(settings)[0]
    assert_reconciled(settings, summary)


def test_naive_timestamp_is_read_in_the_given_timezone(settings, tmp_path):
    path = write(tmp_path / "sends.csv", [SENDS_HEADER, send_row(1, occurred="2026-10-01 10:00:00")])
    ingest(settings, path, timezone_name="Europe/Paris")  # CEST, UTC+2 on that date
    got = query(settings, "SELECT strftime(occurred_at, '%Y-%m-%dT%H:%M:%S') FROM raw.sends")
    assert got == [("2026-10-01T08:00:00",)]


def test_offsets_and_unix_seconds_become_the_same_utc_instant(settings, tmp_path):
    path = write(
        tmp_path / "sends.csv",
        [SENDS_HEADER, send_row(1, occurred="2026-10-01T12:00:00+02:00"), send_row(2, occurred="1790848800"),
         send_row(3, occurred="2026-10-01T10:00:00Z")],
    )
    ingest(settings, path)
    got = {r[0] for r in query(settings, "SELECT strftime(occurred_at, '%Y-%m-%dT%H:%M:%S') FROM raw.sends")}
    assert got == {"2026-10-01T10:00:00"}


def test_invalid_utf8_is_quarantined_in_csv_and_jsonl(settings, tmp_path):
    csv_path = tmp_path / "sends.csv"
    csv_path.write_bytes((SENDS_HEADER + "\n" + send_row(1) + "\n").encode() + b"s2,2026-10-01T10:00:00Z,m\xff\xfe2,u2,bill_due,sms,k,p2,+14155552602,1\n")
    jsonl_path = tmp_path / "replies.jsonl"
    jsonl_path.write_bytes(
        b'{"event_id": "r1", "occurred_at": "2026-10-01T10:00:00Z", "user_id": "u1", "text": "ok"}\n'
        b'{"event_id": "r2", "occurred_at": "2026-10-01T10:00:00Z", "user_id": "u1", "text": "bad \xc3\x28"}\n'
    )
    summary = ingest(settings, csv_path, jsonl_path)
    assert [(b.loaded, b.quarantined) for b in summary.batches] == [(1, 1), (1, 1)]
    got = reasons(settings)
    assert any("UTF" in r.upper() or "unicode" in r.lower() for r in got), got
    assert all(r for r in got)
    assert_reconciled(settings, summary)


def test_empty_and_header_only_files_record_an_empty_batch(settings, tmp_path):
    empty = tmp_path / "sends_empty.csv"
    empty.write_bytes(b"")
    header_only = write(tmp_path / "sends_header.csv", [SENDS_HEADER])
    summary = ingest(settings, empty, header_only)
    assert [(b.rows_read, b.loaded) for b in summary.batches] == [(0, 0), (0, 0)]
    assert all(b.note == "empty file (no records)" for b in summary.batches)
    assert query(settings, "SELECT count(*) FROM raw.ingest_batches")[0][0] == 2
    assert_reconciled(settings, summary)


def test_a_ten_megabyte_field_is_quarantined_and_the_rest_lands(settings, tmp_path):
    big = "x" * (10 * 1024 * 1024)
    path = write(
        tmp_path / "replies.csv",
        ["event_id,occurred_at,user_id,channel,text", "r1,2026-10-01T10:00:00Z,u1,sms,hello",
         f"r2,2026-10-01T10:00:00Z,u1,sms,{big}", "r3,2026-10-01T10:00:00Z,u1,sms,bye"],
    )
    summary = ingest(settings, path)
    assert (summary.batches[0].loaded, summary.batches[0].quarantined) == (2, 1)
    line, raw, reason = query(settings, "SELECT line_number, raw_record, reason FROM raw.quarantine")[0]
    assert line == 3
    assert reason == "text is 10485760 bytes; the limit is 1048576 (a broken quote upstream?)"
    assert len(raw) <= 65_536  # the quarantine keeps a bounded copy
    assert_reconciled(settings, summary)


def test_gzip_file_is_read_transparently(settings, tmp_path):
    plain = write(tmp_path / "plain.csv", [SENDS_HEADER, send_row(1), send_row(2)])
    gz = tmp_path / "sends.csv.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    plain.unlink()
    summary = ingest(settings, gz)
    assert summary.batches[0].loaded == 2
    assert summary.batches[0].source_format == "csv"


def test_duplicated_rows_within_one_file_count_as_duplicates(settings, tmp_path):
    path = write(tmp_path / "sends.csv", [SENDS_HEADER, send_row(1), send_row(2), send_row(1), send_row(1)])
    summary = ingest(settings, path)
    assert (summary.batches[0].loaded, summary.batches[0].duplicates) == (2, 2)
    # the first occurrence is the one kept
    assert query(settings, "SELECT line_number FROM raw.sends WHERE event_id = 's1'") == [(2,)]
    assert_reconciled(settings, summary)


def test_bom_and_crlf_are_accepted(settings, tmp_path):
    path = write(tmp_path / "sends.csv", [SENDS_HEADER, send_row(1), send_row(2)], newline="\r\n", bom=True)
    ingest(settings, path)
    rows = query(settings, "SELECT event_id, segments FROM raw.sends ORDER BY 1")
    assert rows == [("s1", 1), ("s2", 1)]


def test_chinese_text_and_emoji_land_intact(settings, tmp_path):
    body = "您的包裹已发货 📦 — reply STOP 🙏"
    path = tmp_path / "replies.csv"
    path.write_text(f'event_id,occurred_at,user_id,channel,text\nr1,2026-10-01T10:00:00Z,u1,sms,"{body}"\n', encoding="utf-8")
    ingest(settings, path)
    assert query(settings, "SELECT text FROM raw.replies") == [(body,)]


def test_phone_numbers_are_normalised_then_hashed_and_never_stored_raw(settings, tmp_path):
    path = write(
        tmp_path / "sends.csv",
        [SENDS_HEADER, "s1,2026-10-01T10:00:00Z,m1,u1,c,sms,k,p1,+1 415-555-2671,1",
         "s2,2026-10-01T10:00:00Z,m2,u1,c,sms,k,p2,+14155552671,1"],
    )
    ingest(settings, path)
    hashes = query(settings, "SELECT DISTINCT recipient_hash FROM raw.sends")
    assert len(hashes) == 1 and len(hashes[0][0]) == 32
    dump = json.dumps(query(settings, "SELECT * FROM raw.sends"), default=str)
    assert "4155552671" not in dump


def test_unknown_columns_are_kept_in_extra(settings, tmp_path):
    path = write(tmp_path / "sends.csv", [SENDS_HEADER + ",store_id", send_row(1) + ",S-42"])
    ingest(settings, path)
    assert json.loads(query(settings, "SELECT extra FROM raw.sends")[0][0]) == {"store_id": "S-42"}


def test_missing_required_fields_are_named(settings, tmp_path):
    path = write(tmp_path / "dwells.csv", ["event_id,occurred_at,message_id,page,dwell_seconds", "d1,2026-10-01T10:00:00Z,m1,/pay,"])
    summary = ingest(settings, path)
    assert reasons(settings) == ["missing required field dwell_seconds"]
    assert_reconciled(settings, summary)


def test_a_clock_far_in_the_future_is_quarantined(settings, tmp_path):
    path = write(tmp_path / "sends.csv", [SENDS_HEADER, send_row(1, occurred="2099-01-01T00:00:00Z")])
    ingest(settings, path)
    assert "is outside 2000-01-01 .. tomorrow" in reasons(settings)[0]
