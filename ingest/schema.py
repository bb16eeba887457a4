"""DDL of the raw layer: one append-only table per event type, the batch ledger and the quarantine."""

from __future__ import annotations

import duckdb

from ingest.contract import EVENT_TYPES

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
    for spec in EVENT_TYPES.values():
        cols = ",\n    ".join(f"{f.name} {f.sql_type}" for f in spec.columns)
        conn.execute(f"CREATE TABLE IF NOT EXISTS {spec.table} (\n    {cols}\n)")
        conn.execute(f"COMMENT ON TABLE {spec.table} IS '{spec.description.replace(chr(39), chr(39) * 2)}'")
    conn.execute(LEDGER_DDL)
    conn.execute(QUARANTINE_DDL)
