"""DuckDB connections: read-write on the build database; every session speaks UTC."""

from __future__ import annotations

import duckdb

from warehouse.settings import Settings
from warehouse.storage import open_database


def _prepare(conn: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    conn.execute("SET TimeZone = 'UTC'")
    conn.execute("SET enable_progress_bar = false")
    return conn


def connect_build(settings: Settings) -> duckdb.DuckDBPyConnection:
    """A read-write connection to the build database (one writing process at a time)."""
    settings.ensure()
    try:
        conn = open_database(settings.warehouse_path)
    except duckdb.IOException as exc:
        raise RuntimeError(
            f"cannot open {settings.warehouse_path} for writing: another nudgelab step holds it ({exc})"
        ) from exc
    return _prepare(conn)


def connect_memory() -> duckdb.DuckDBPyConnection:
    """An in-memory connection with the same session settings (scratch work, tests)."""
    return _prepare(duckdb.connect())


def connect_published(settings: Settings) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the published snapshot (what the app and the reports read)."""
    from warehouse.publish import current_snapshot

    snapshot = current_snapshot(settings)
    if snapshot is None:
        raise RuntimeError(f"no published snapshot under {settings.published_dir}: run `nudgelab build` first")
    return _prepare(open_database(snapshot, read_only=True, role="snapshot"))
