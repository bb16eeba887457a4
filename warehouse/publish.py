"""Write-audit-publish: only a build that passed its tests becomes the snapshot readers see.

The pipeline builds into ``warehouse.duckdb``; when dbt's tests and the data expectations pass,
``publish`` copies the closed database to ``published/snapshot-<time>.duckdb`` and then points
``published/CURRENT`` at it with an atomic rename. Readers open the snapshot named by CURRENT
read-only, so a build never waits for a reader and a reader never sees half a build; a failed
build publishes nothing and the previous snapshot stays.
"""

from __future__ import annotations

import os
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from warehouse.settings import Settings
from warehouse.sql import one

CURRENT = "CURRENT"
KEEP = 3  # snapshots kept (readers holding an older one keep reading it until they reopen)


def current_snapshot(settings: Settings) -> Path | None:
    """The published snapshot readers should open, or None before the first publish."""
    pointer = settings.published_dir / CURRENT
    if not pointer.exists():
        return None
    path = settings.published_dir / pointer.read_text().strip()
    return path if path.exists() else None


def _checkpoint(path: Path) -> None:
    """Fold any write-ahead log into the database file so that a file copy is complete."""
    conn = duckdb.connect(str(path))
    try:
        conn.execute("CHECKPOINT")
    finally:
        conn.close()


def publish(settings: Settings) -> Path:
    """Publish the build database as the new snapshot; returns the snapshot's path."""
    source = settings.warehouse_path
    if not source.exists():
        raise RuntimeError(f"nothing to publish: {source} does not exist (run nudgelab ingest first)")
    _checkpoint(source)
    folder = settings.published_dir
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    name = f"snapshot-{stamp}-{uuid.uuid4().hex[:6]}.duckdb"
    partial = folder / (name + ".partial")
    shutil.copyfile(source, partial)
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    final = folder / name
    os.replace(partial, final)
    pointer_tmp = folder / (CURRENT + ".partial")
    pointer_tmp.write_text(name + "\n")
    os.replace(pointer_tmp, folder / CURRENT)
    _prune(folder, keep_name=name)
    return final


def _prune(folder: Path, keep_name: str) -> None:
    snapshots = sorted(folder.glob("snapshot-*.duckdb"), key=lambda p: p.name, reverse=True)
    for old in snapshots[KEEP:]:
        if old.name != keep_name:
            old.unlink(missing_ok=True)
    for stale in folder.glob("*.partial"):
        stale.unlink(missing_ok=True)


STATE_DDL = (
    "CREATE TABLE IF NOT EXISTS meta.build_state (singleton BOOLEAN PRIMARY KEY DEFAULT TRUE, "
    "audited BOOLEAN NOT NULL, changed_at TIMESTAMPTZ NOT NULL)"
)


def set_build_audited(conn: duckdb.DuckDBPyConnection, audited: bool) -> None:
    """Record whether the build database holds an audited build (false while a build is under way
    or after one failed). Jobs that add results publish only an audited build."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS meta")
    conn.execute(STATE_DDL)
    conn.execute(
        "INSERT INTO meta.build_state VALUES (TRUE, ?, now()) "
        "ON CONFLICT (singleton) DO UPDATE SET audited = excluded.audited, changed_at = excluded.changed_at",
        [audited],
    )


def build_is_audited(conn: duckdb.DuckDBPyConnection) -> bool:
    """True when the build database's marts passed their audit (and so match what was published)."""
    try:
        row = one(conn, "SELECT audited FROM meta.build_state")
    except duckdb.CatalogException:
        return False
    return bool(row and row[0])
