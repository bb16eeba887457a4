"""The suppression list in ops.sqlite: who must not be messaged, on which channel (``*`` for every
channel), and why. Written by an operator (``nudgelab dispatch suppress``) and by the receiver at
once on an opt-out reply; read by the planner (consent) and by the worker just before sending."""

from __future__ import annotations

import sqlite3

from dispatch.ops import now_iso

STOP_REPLY = "stop_reply"


def suppress(conn: sqlite3.Connection, user_id: str, channel: str, reason: str, source: str) -> None:
    """Add (or renew) a suppression; the caller holds the transaction."""
    conn.execute("INSERT INTO suppressions VALUES (?, ?, ?, ?, ?) ON CONFLICT (channel, user_id) DO UPDATE SET "
                 "reason = excluded.reason, source = excluded.source, created_at = excluded.created_at",
                 [channel, user_id, reason, source, now_iso()])


def lift_stop(conn: sqlite3.Connection, user_id: str, channel: str) -> None:
    """A START lifts a STOP on that channel, never an operator's suppression."""
    conn.execute("DELETE FROM suppressions WHERE channel = ? AND user_id = ? AND reason = ?", [channel, user_id, STOP_REPLY])
