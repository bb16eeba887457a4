"""Reading query results the way DuckDB 2.0 wants them read.

In DuckDB 2.0 ``conn.execute()`` streams: its result stays open until a fetch returns no rows, and
an open result owns the connection, so a ``fetchone()`` followed by a relation (``conn.sql``) on
the same connection fails with "connection has an unfinished result". Arrow, polars and pandas
output belong to relations, not to ``execute()`` results. These helpers always drain what they
start, so callers can mix them freely; use them instead of ``execute(...).fetchone()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import polars as pl


def rows(conn: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
    """Every row of a query (the result is drained, so the connection is free again)."""
    return conn.execute(sql, list(params or [])).fetchall()


def one(conn: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None) -> tuple | None:
    """The first row of a query, or None; the rest of the result is drained."""
    found = rows(conn, sql, params)
    return found[0] if found else None


def scalar(conn: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None) -> Any:
    """The first column of the first row, or None when the query returns no rows."""
    row = one(conn, sql, params)
    return row[0] if row else None


def frame(conn: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None) -> pl.DataFrame:
    """A query as a polars frame, through a relation (DuckDB 2.0's way to polars)."""
    return conn.sql(sql, params=list(params) if params else None).pl()


def pandas_frame(conn: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None):
    """A query as a pandas frame, for libraries that only take pandas (great-expectations)."""
    return conn.sql(sql, params=list(params) if params else None).df()
