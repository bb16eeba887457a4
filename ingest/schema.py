"""DDL of the raw layer: one append-only table per event type, the batch ledger and the quarantine."""

from __future__ import annotations

import duckdb

from ingest.contract import EVENT_TYPES
from warehouse.sql import scalar

LEDGER_DDL = """
CREATE TABLE IF NOT EXISTS raw.ingest_batches (
    batch_id VARCHAR PRIMARY KEY,
    source_file VARCHAR NOT NULL,
    source_format VARCHAR NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ NOT NULL,
    rows_read BIGINT NOT NULL,
    loaded BIGINT NOT NULL,
    duplicates BIGINT NOT NULL,
    quarantined BIGINT NOT NULL,
    by_type JSON,
    validation_success BOOLEAN,
    validation JSON,
    CHECK (rows_read = loaded + duplicates + quarantined)
)
"""

FILES_DDL = """
CREATE TABLE IF NOT EXISTS raw.ingest_files (
    batch_id VARCHAR NOT NULL,
    source_file VARCHAR NOT NULL,
    source_format VARCHAR NOT NULL,
    rows_read BIGINT NOT NULL,
    loaded BIGINT NOT NULL,
    duplicates BIGINT NOT NULL,
    quarantined BIGINT NOT NULL,
    by_type JSON,
    note VARCHAR,
    CHECK (rows_read = loaded + duplicates + quarantined)
)
"""

HASH_KEY_DDL = """
CREATE TABLE IF NOT EXISTS meta.hash_key (
    fingerprint VARCHAR NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL
)
"""

QUARANTINE_DDL = """
CREATE TABLE IF NOT EXISTS raw.quarantine (
    batch_id VARCHAR NOT NULL,
    source_file VARCHAR NOT NULL,
    line_number BIGINT,
    event_type VARCHAR,
    raw_record VARCHAR,
    reason VARCHAR NOT NULL,
    quarantined_at TIMESTAMPTZ NOT NULL
)
"""


def ensure_raw_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the raw schema and its tables when missing (safe to call on every run)."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS raw")
    # a warehouse built from a lake reads its raw layer through views (ingest.lake.attach_lake)
    views = {name for (name,) in conn.execute(
        "SELECT view_name FROM duckdb_views() WHERE schema_name = 'raw' AND database_name = current_database()"
    ).fetchall()}
    for spec in EVENT_TYPES.values():
        if spec.name in views:
            continue
        cols = ",\n    ".join(f"{f.name} {f.sql_type}" for f in spec.columns)
        conn.execute(f"CREATE TABLE IF NOT EXISTS {spec.table} (\n    {cols}\n)")
        # a contract that gained a column since the table was made: add it (older rows read NULL)
        for f in spec.columns:
            conn.execute(f"ALTER TABLE {spec.table} ADD COLUMN IF NOT EXISTS {f.name} {f.sql_type}")
        conn.execute(f"COMMENT ON TABLE {spec.table} IS '{spec.description.replace(chr(39), chr(39) * 2)}'")
    conn.execute(LEDGER_DDL)
    conn.execute(FILES_DDL)
    conn.execute(QUARANTINE_DDL)
    conn.execute("CREATE SCHEMA IF NOT EXISTS meta")
    conn.execute(HASH_KEY_DDL)


class HashKeyMismatch(Exception):
    """The key at hand is not the one this warehouse's identifiers were hashed with."""


def check_hash_key(conn: duckdb.DuckDBPyConnection, fingerprint: str) -> None:
    """Record the hash key's fingerprint on first use; refuse any other key afterwards (its hashes,
    and the event ids derived from them, would not match what is landed)."""
    ensure_raw_schema(conn)
    recorded = recorded_fingerprint(conn)
    if recorded is None:
        conn.execute("INSERT INTO meta.hash_key VALUES (?, now())", [fingerprint])
    elif recorded != fingerprint:
        raise HashKeyMismatch(
            f"this warehouse's phone numbers and e-mails were hashed with another key (fingerprint {recorded}; "
            f"the key in use has {fingerprint}): set NUDGELAB_HASH_KEY to the original key, or restore "
            "NUDGELAB_HOME/hash.key; nothing was ingested")


def recorded_fingerprint(conn: duckdb.DuckDBPyConnection) -> str | None:
    try:
        return scalar(conn, "SELECT fingerprint FROM meta.hash_key ORDER BY recorded_at LIMIT 1")
    except duckdb.CatalogException:
        return None
