"""Sidebar filters become a parameterised condition over the columns a table has."""

from __future__ import annotations

from datetime import date

import duckdb

from app_pages.filters import Filters, where


def _table() -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect()
    conn.execute("CREATE TABLE t AS SELECT * FROM (VALUES (DATE '2026-10-01', 'a', 'sms'), (DATE '2026-10-02', 'b', 'sms'),"
                 " (DATE '2026-10-03', 'a', 'email'), (DATE '2026-10-04', 'O''Brien; DROP TABLE t', 'sms'))"
                 " v(send_date, campaign_id, channel)")
    return conn


def test_dates_and_chosen_values_filter_with_parameters_only():
    conn = _table()
    chosen = Filters(date(2026, 10, 1), date(2026, 10, 3), {"campaign_id": ("a",), "channel": ()})
    clause, params = where(chosen, ("campaign_id", "channel"))
    assert "'a'" not in clause  # values never become SQL text
    assert conn.execute(f"SELECT count(*) FROM t WHERE {clause}", params).fetchone() == (2,)


def test_a_value_that_looks_like_sql_is_just_a_value():
    conn = _table()
    clause, params = where(Filters(values={"campaign_id": ("O'Brien; DROP TABLE t",)}), ("campaign_id",))
    assert conn.execute(f"SELECT count(*) FROM t WHERE {clause}", params).fetchone() == (1,)
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (4,)


def test_a_filter_the_table_cannot_carry_is_left_out():
    clause, params = where(Filters(values={"region": ("US-CA",), "channel": ("sms",)}), ("channel",), date_column=None)
    assert "region" not in clause and params == [["sms"]]


def test_the_previous_period_has_the_same_length_and_ends_the_day_before():
    chosen = Filters(date(2026, 10, 8), date(2026, 10, 14))
    before = chosen.previous()
    assert (before.start, before.end, before.days) == (date(2026, 10, 1), date(2026, 10, 7), 7)
