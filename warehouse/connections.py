"""DuckDB connections: read-write on the build database; every session speaks UTC."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from warehouse.lock import WarehouseBusy, duckdb_holder
from warehouse.settings import Settings
from warehouse.storage import open_database


def _prepare(conn: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    conn.execute("SET TimeZone = 'UTC'")
    conn.execute("SET enable_progress_bar = false")
    return conn


def connect_build(settings: Settings) -> duckdb.DuckDBPyConnection:
    """A read-write connection to the build database (one writing process at a time)."""
    settings.ensure()
    return connect_file(settings.warehouse_path)


def connect_file(path: Path, what: str = "the warehouse") -> duckdb.DuckDBPyConnection:
    """A read-write connection to the database file ``path`` (created private)."""
    try:
        conn = open_database(path)
    except duckdb.IOException as exc:  # DuckDB's own file lock: a process outside the pipeline lock
        raise WarehouseBusy(
            f"{what} is busy: {duckdb_holder(str(exc))} has {path} open; nothing was "
            "changed, try again when it finishes") from exc
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
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
