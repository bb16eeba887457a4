"""Parquet sources: typed or text columns, bad values, unknown columns, mixed types, broken files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from ingest.readers.base import ReaderError
from ingest.runner import run_ingest
from tests.conftest import query
from tests.test_ingest_bad_input import assert_reconciled

UTC = dt.timezone.utc


def deliveries_frame(n: int) -> pl.DataFrame:
    base = dt.datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
    return pl.DataFrame(
        {
            "event_id": [f"d{i}" for i in range(n)],
            "occurred_at": [base + dt.timedelta(minutes=i) for i in range(n)],
            "message_id": [f"m{i}" for i in range(n)],
            "user_id": [f"u{i}" for i in range(n)],
            "campaign_id": ["bill_due"] * n,
            "channel": ["sms"] * n,
            "status": ["delivered"] * n,
            "provider": ["kannel-a"] * n,
            "carrier_note": [f"note {i}" for i in range(n)],  # not in the contract: kept in extra
        }
    )


def test_typed_parquet_lands_with_its_own_types_and_extra(settings, tmp_path: Path) -> None:
    path = tmp_path / "deliveries.parquet"
    deliveries_frame(50).write_parquet(path)
    summary = run_ingest(settings, [path])
    assert not summary.errors
    assert_reconciled(settings, summary)
    assert (summary.total("loaded"), summary.total("quarantined")) == (50, 0)
    first = query(
        settings,
        "SELECT occurred_at, line_number, json_extract_string(extra, '$.carrier_note') FROM raw.deliveries "
        "WHERE event_id = 'd7'",
    )
    assert first == [(dt.datetime(2026, 10, 1, 9, 7, tzinfo=UTC), 8, "note 7")]


def test_bad_parquet_values_are_quarantined_with_their_row(settings, tmp_path: Path) -> None:
    frame = deliveries_frame(20).with_columns(pl.col("occurred_at").dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    frame = frame.with_columns(
        pl.when(pl.col("event_id") == "d4").then(pl.lit("next tuesday")).otherwise(pl.col("occurred_at")).alias("occurred_at"),
        pl.when(pl.col("event_id") == "d9").then(pl.lit("exploded")).otherwise(pl.col("status")).alias("status"),
    )
    path = tmp_path / "deliveries.parquet"
    frame.write_parquet(path)
    summary = run_ingest(settings, [path])
    assert_reconciled(settings, summary)
    assert (summary.total("loaded"), summary.total("quarantined")) == (18, 2)
    rows = query(settings, "SELECT line_number, reason FROM raw.quarantine ORDER BY line_number")
    assert rows[0][0] == 5 and "occurred_at 'next tuesday' is not a timestamp" in rows[0][1]
    assert rows[1][0] == 10 and "status 'exploded' is not one of" in rows[1][1]


def test_parquet_with_an_event_type_column_splits_by_type(settings, tmp_path: Path) -> None:
    base = dt.datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
    frame = pl.DataFrame(
        {
            "event_type": ["click", "dwell", "click", "telepathy"],
            "event_id": ["c1", "w1", "c2", "x1"],
            "occurred_at": [base] * 4,
            "message_id": ["m1"] * 4,
            "user_id": ["u1"] * 4,
            "url": ["https://x.test/a", None, "https://x.test/b", None],
            "user_agent": ["Mozilla/5.0", None, "facebookexternalhit/1.1", None],
            "dwell_seconds": [None, 31.5, None, None],
        }
    )
    path = tmp_path / "mixed.parquet"
    frame.write_parquet(path)
    summary = run_ingest(settings, [path])
    assert_reconciled(settings, summary)
    assert query(settings, "SELECT event_id, is_bot FROM raw.clicks ORDER BY event_id") == [("c1", False), ("c2", True)]
    assert query(settings, "SELECT event_id, dwell_seconds FROM raw.dwells") == [("w1", 31.5)]
    reasons = query(settings, "SELECT line_number, reason FROM raw.quarantine")
    assert reasons[0][0] == 4 and "unknown event type telepathy" in reasons[0][1]


def test_parquet_reingest_loads_nothing_new(settings, tmp_path: Path) -> None:
    path = tmp_path / "deliveries.parquet"
    deliveries_frame(30).write_parquet(path)
    run_ingest(settings, [path])
    again = run_ingest(settings, [path])
    assert (again.total("loaded"), again.total("duplicates")) == (0, 30)
    assert query(settings, "SELECT count(*) FROM raw.deliveries") == [(30,)]


def test_a_file_that_is_not_parquet_is_a_one_line_error(settings, tmp_path: Path) -> None:
    path = tmp_path / "deliveries.parquet"
    path.write_bytes(b"PAR1" + b"\x00" * 64 + b"not really")
    summary = run_ingest(settings, [path])
    assert len(summary.errors) == 1 and "deliveries.parquet" in summary.errors[0]
    assert "\n" not in summary.errors[0]
    # nothing of the broken file is left behind, and the next good file still lands
    good = tmp_path / "more" / "deliveries.parquet"
    good.parent.mkdir()
    deliveries_frame(3).write_parquet(good)
    assert run_ingest(settings, [good]).total("loaded") == 3


@pytest.mark.parametrize("naive_tz, expected", [(None, 0), ("Europe/Paris", 5)])
def test_naive_parquet_timestamps_need_a_zone(settings, tmp_path: Path, naive_tz, expected) -> None:
    frame = deliveries_frame(5).with_columns(pl.col("occurred_at").dt.replace_time_zone(None))
    path = tmp_path / "deliveries.parquet"
    frame.write_parquet(path)
    summary = run_ingest(settings, [path], timezone_name=naive_tz)
    assert_reconciled(settings, summary)
    assert summary.total("loaded") == expected
    if naive_tz:  # 09:00 in Paris (summer time) is 07:00 UTC
        assert query(settings, "SELECT min(occurred_at) FROM raw.deliveries") == [(dt.datetime(2026, 10, 1, 7, 0, tzinfo=UTC),)]
    else:
        assert "has no time zone" in query(settings, "SELECT any_value(reason) FROM raw.quarantine")[0][0]
