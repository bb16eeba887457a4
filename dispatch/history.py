"""What was already sent or queued to the audience: the input of dedupe, frequency caps, conflicts
and "last contact" — from ops.sqlite (our own messages, including those not yet in the warehouse)
and the published snapshot's ``marts.fct_messages`` (everything ingested, including other
senders'), each message counted once (ops.sqlite's row wins: it knows the state and the step).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

import duckdb
import polars as pl

from warehouse.sql import frame as query_frame

LIVE_STATES = ("queued", "retry", "claimed", "sending", "sent", "unknown")  # reached or may still reach
MOVABLE_STATES = ("queued", "retry")                                         # not handed to a provider yet

TIMELINE_SCHEMA = {"user_id": pl.String, "message_id": pl.String, "category": pl.String, "priority": pl.Int64,
                   "at": pl.Datetime("us", "UTC"), "movable": pl.Boolean, "conflict_action": pl.String,
                   "conflict_window_s": pl.Float64, "sent": pl.Boolean}


def _ops_frame(conn: sqlite3.Connection, sql: str, params: list, schema: dict) -> pl.DataFrame:
    data = conn.execute(sql, params).fetchall()
    return pl.DataFrame([tuple(r) for r in data], schema=list(schema.items()), orient="row")


def timeline(ops: sqlite3.Connection, snapshot: duckdb.DuckDBPyConnection | None, users: pl.Series,
             since: datetime) -> pl.DataFrame:
    """Every message to ``users`` sent, being sent or due at or after ``since`` (TIMELINE_SCHEMA)."""
    states = ", ".join(f"'{s}'" for s in LIVE_STATES)
    movable = ", ".join(f"'{s}'" for s in MOVABLE_STATES)
    raw = _ops_frame(ops, f"""
        SELECT user_id, message_id, category, priority, coalesce(sent_at, due_at), state IN ({movable}),
               conflict_action, conflict_window_s, sent_at IS NOT NULL
        FROM messages WHERE state IN ({states}) AND coalesce(sent_at, due_at) >= ?""",
                     [since.strftime("%Y-%m-%dT%H:%M:%S.%fZ")],
                     {**TIMELINE_SCHEMA, "at": pl.String})
    ours = raw.with_columns(pl.col("at").str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", time_unit="us", time_zone="UTC"))
    wanted = pl.DataFrame({"user_id": users.unique()})
    ours = ours.join(wanted, on="user_id", how="semi")
    if snapshot is None:
        return ours
    theirs = query_frame(snapshot, """
        SELECT user_id, message_id, category, CAST(priority AS BIGINT) AS priority, sent_at AS at
        FROM marts.fct_messages WHERE sent_at >= ?""", [since])
    theirs = (theirs.join(wanted, on="user_id", how="semi")
              .join(ours.select("message_id"), on="message_id", how="anti")
              .with_columns(pl.col("at").dt.convert_time_zone("UTC").dt.cast_time_unit("us"),
                            pl.col("priority").fill_null(0), pl.lit(False).alias("movable"),
                            pl.lit("defer").alias("conflict_action"), pl.lit(0.0).alias("conflict_window_s"),
                            pl.lit(True).alias("sent")))
    return pl.concat([ours, theirs.select(list(TIMELINE_SCHEMA))], how="vertical_relaxed")


def reached(ops: sqlite3.Connection, snapshot: duckdb.DuckDBPyConnection | None, campaign_id: str,
            with_warehouse: bool) -> pl.DataFrame:
    """(user_id, channel, step, dedupe_value) this campaign reached or may still reach."""
    states = ", ".join(f"'{s}'" for s in LIVE_STATES)
    schema = {"user_id": pl.String, "channel": pl.String, "step": pl.String, "dedupe_value": pl.String}
    ours = _ops_frame(ops, f"SELECT DISTINCT user_id, channel, step, dedupe_value FROM messages "
                           f"WHERE campaign_id = ? AND state IN ({states})", [campaign_id], schema)
    if snapshot is None or not with_warehouse:
        return ours
    theirs = query_frame(snapshot, "SELECT DISTINCT user_id, channel, 'main' AS step, CAST(NULL AS VARCHAR) AS dedupe_value "
                                   "FROM marts.fct_messages WHERE campaign_id = ?", [campaign_id])
    return pl.concat([ours, theirs.cast(schema)]).unique()


def last_contact(ops: sqlite3.Connection, users: pl.Series) -> pl.DataFrame:
    """(user_id, last_sent_at) of our own sends (the warehouse's are in dim_users)."""
    data = _ops_frame(ops, "SELECT user_id, max(sent_at) FROM messages WHERE sent_at IS NOT NULL GROUP BY user_id", [],
                      {"user_id": pl.String, "last_sent_at": pl.String})
    return (data.join(pl.DataFrame({"user_id": users.unique()}), on="user_id", how="semi")
            .with_columns(pl.col("last_sent_at").str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", time_unit="us", time_zone="UTC")))
