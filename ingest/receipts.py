"""A message's final delivery status, by precedence rather than by arrival order.

Receipts arrive duplicated and out of order (a segment's ``accepted`` after another segment's
``failed``, a retry's ``accepted`` after the carrier's ``undelivered``). Every receipt is kept in
``raw.deliveries``; the final status of a message is the receipt with the highest precedence in
``ingest.contract.STATUS_PRECEDENCE``, ties broken by the later event time. dbt applies the same
rule (``dbt_project/macros/status_precedence.sql``) for the marts.
"""

from __future__ import annotations

import duckdb

from ingest.contract import STATUS_PRECEDENCE


def precedence_case_sql(column: str = "status") -> str:
    arms = " ".join(f"WHEN '{status}' THEN {rank}" for status, rank in STATUS_PRECEDENCE.items())
    return f"CASE {column} {arms} ELSE 0 END"


def final_statuses(conn: duckdb.DuckDBPyConnection) -> list[tuple[str, str, object]]:
    """(message_id, final status, time of that receipt) for every message with a receipt."""
    return conn.execute(
        f"""
        SELECT message_id, status, occurred_at
        FROM raw.deliveries
        WHERE message_id IS NOT NULL
        QUALIFY row_number() OVER (
            PARTITION BY message_id ORDER BY {precedence_case_sql()} DESC, occurred_at DESC, event_id
        ) = 1
        ORDER BY message_id
        """
    ).fetchall()
