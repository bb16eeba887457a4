"""The outbox's states and every move between them, each one transaction on ops.sqlite.

::

    queued ──claim──▶ claimed ──▶ sending ──provider took it──▶ sent
      ▲  ▲              │            ├─ temporary failure ──▶ retry (due later) ──▶ claimed …
      │  └─quiet hours──┘            │                        └─ attempts used up ──▶ dead
      │     / opted out ▶ cancelled  ├─ refused ──▶ dead (the provider's error kept)
      │                              └─ ambiguous ──▶ unknown (reason for the operator)
      └── a dead worker's claimed rows (never handed over) go back to queued

A message is marked ``sending`` in its own committed transaction before the provider is called.
After a crash, a ``sending`` message of a dead worker is never sent again blindly: it is settled
by the provider's own record (``lookup``) or a delivery receipt matched to it (``receipts``), and
otherwise marked ``unknown`` with the reason; a receipt arriving later still settles it as sent.
Claims go to one worker at a time (``BEGIN IMMEDIATE``), and every update names the state it
expects, so a row is never moved twice.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime

from dispatch.ops import iso, now_iso, transaction

SETTLED_BY_RECEIPT = ("accepted", "delivered", "undelivered", "expired", "rejected", "failed")


def claim(conn: sqlite3.Connection, worker: str, now: datetime, limit: int, providers: Iterable[str]) -> list[sqlite3.Row]:
    """Up to ``limit`` due messages for these providers, highest priority first, now ``claimed``
    by ``worker``, with their contact's addresses."""
    names = list(providers)
    if not names:
        return []
    marks = ", ".join("?" for _ in names)
    stamp = iso(now)
    with transaction(conn):
        ids = [r[0] for r in conn.execute(
            f"SELECT message_id FROM messages WHERE state IN ('queued', 'retry') AND due_at <= ? AND provider IN ({marks}) "
            "ORDER BY priority DESC, due_at LIMIT ?", [stamp, *names, limit])]
        if not ids:
            return []
        id_marks = ", ".join("?" for _ in ids)
        conn.execute(f"UPDATE messages SET state = 'claimed', claimed_by = ?, claimed_at = ?, updated_at = ? "
                     f"WHERE message_id IN ({id_marks}) AND state IN ('queued', 'retry')", [worker, stamp, stamp, *ids])
        return conn.execute(
            f"SELECT m.*, c.phone, c.email, c.push_token FROM messages m LEFT JOIN contacts c USING (user_id) "
            f"WHERE m.message_id IN ({id_marks}) AND m.state = 'claimed' AND m.claimed_by = ? "
            "ORDER BY m.priority DESC, m.due_at", [*ids, worker]).fetchall()


def _move(conn: sqlite3.Connection, message_id: str, expected: tuple[str, ...], sets: str, params: list) -> bool:
    marks = ", ".join("?" for _ in expected)
    with transaction(conn):
        cursor = conn.execute(f"UPDATE messages SET {sets}, updated_at = ? WHERE message_id = ? AND state IN ({marks})",
                              [*params, now_iso(), message_id, *expected])
        return cursor.rowcount == 1


def release(conn: sqlite3.Connection, message_id: str, due_at: datetime) -> bool:
    """A claimed message goes back to the queue, due later (quiet hours at the recipient now)."""
    return _move(conn, message_id, ("claimed",), "state = 'queued', due_at = ?, claimed_by = NULL", [iso(due_at)])


def requeue(conn: sqlite3.Connection, message_id: str, reason: str) -> bool:
    """An ``unknown`` message an operator found unsent goes back to the queue, due now."""
    stamp = now_iso()
    return _move(conn, message_id, ("unknown",), "state = 'queued', claimed_by = NULL, due_at = ?, last_error = ?",
                 [stamp, reason])


def release_claims(conn: sqlite3.Connection, worker: str) -> int:
    """A stopping worker's claims it never started go back to the queue, as they were."""
    with transaction(conn):
        return conn.execute("UPDATE messages SET state = 'queued', claimed_by = NULL, updated_at = ? "
                            "WHERE state = 'claimed' AND claimed_by = ?", [now_iso(), worker]).rowcount


def cancel(conn: sqlite3.Connection, message_id: str, reason: str, expected: tuple[str, ...] = ("claimed",)) -> bool:
    return _move(conn, message_id, expected, "state = 'cancelled', last_error = ?", [reason])


def mark_sending(conn: sqlite3.Connection, message_id: str, worker: str) -> bool:
    """Committed before the provider is called; False when the row is not this worker's claim."""
    with transaction(conn):
        cursor = conn.execute("UPDATE messages SET state = 'sending', attempts = attempts + 1, updated_at = ? "
                              "WHERE message_id = ? AND state = 'claimed' AND claimed_by = ?",
                              [now_iso(), message_id, worker])
        return cursor.rowcount == 1


def mark_sent(conn: sqlite3.Connection, message_id: str, provider_message_id: str | None, sent_at: datetime,
              detail: str = "", expected: tuple[str, ...] = ("sending",)) -> bool:
    return _move(conn, message_id, expected,
                 "state = 'sent', sent_at = ?, provider_message_id = coalesce(?, provider_message_id), "
                 "last_error = CASE WHEN ? = '' THEN last_error ELSE ? END",
                 [iso(sent_at), provider_message_id, detail, detail])


def mark_retry(conn: sqlite3.Connection, message_id: str, error: str, due_at: datetime) -> bool:
    return _move(conn, message_id, ("sending",), "state = 'retry', last_error = ?, due_at = ?, claimed_by = NULL",
                 [error[:500], iso(due_at)])


def mark_dead(conn: sqlite3.Connection, message_id: str, error: str, expected: tuple[str, ...] = ("sending",)) -> bool:
    return _move(conn, message_id, expected, "state = 'dead', last_error = ?", [error[:500]])


def mark_unknown(conn: sqlite3.Connection, message_id: str, reason: str, expected: tuple[str, ...] = ("sending",)) -> bool:
    return _move(conn, message_id, expected, "state = 'unknown', last_error = ?", [reason[:500]])


def record_receipt(conn: sqlite3.Connection, message_id: str, status: str, provider_message_id: str | None = None,
                   source: str | None = None, received_at: datetime | None = None) -> bool:
    """Keep a delivery report matched to one of our messages; it settles a ``sending`` or
    ``unknown`` message as sent (a report exists only for a message the gateway took). Returns
    whether the message was one of ours."""
    stamp = iso(received_at) if received_at else now_iso()
    if conn.execute("SELECT 1 FROM messages WHERE message_id = ?", [message_id]).fetchone() is None:
        return False  # not ours (another sender's report): no write lock taken for it
    with transaction(conn):
        known = conn.execute("SELECT state FROM messages WHERE message_id = ?", [message_id]).fetchone()
        conn.execute("INSERT INTO receipts VALUES (?, ?, ?, ?, ?)", [message_id, status, provider_message_id, stamp, source])
        if status in SETTLED_BY_RECEIPT and known[0] in ("sending", "unknown"):
            conn.execute("UPDATE messages SET state = 'sent', sent_at = coalesce(sent_at, ?), "
                         "provider_message_id = coalesce(provider_message_id, ?), "
                         "last_error = CASE WHEN state = 'unknown' THEN 'settled by a delivery report: ' || ? ELSE last_error END, "
                         "updated_at = ? WHERE message_id = ?", [stamp, provider_message_id, status, stamp, message_id])
    return True


def recover(conn: sqlite3.Connection, live_workers: set[str], lookup: Callable[[str, str], str | None],
            providers: Iterable[str] | None = None) -> Counter:
    """Settle what dead workers left (of these providers, or all): ``claimed`` rows go back to the
    queue (never handed over); ``sending`` rows are settled by ``lookup(provider, message_id)`` (the
    provider's message id, or None), a matched receipt, or marked unknown. Returns counts by outcome."""
    outcome: Counter = Counter()
    marks = ", ".join("?" for _ in live_workers) or "''"
    names = list(providers) if providers is not None else None
    only = f" AND provider IN ({', '.join('?' for _ in names)})" if names else ""
    stale = conn.execute(f"SELECT message_id, state, provider, claimed_by FROM messages WHERE state IN ('claimed', 'sending') "
                         f"AND (claimed_by IS NULL OR claimed_by NOT IN ({marks})){only}",
                         [*live_workers, *(names or [])]).fetchall()
    for message_id, state, provider, worker in stale:
        if state == "claimed":
            if _move(conn, message_id, ("claimed",), "state = 'queued', claimed_by = NULL", []):
                outcome["requeued"] += 1
            continue
        found = lookup(provider, message_id)
        if found is not None:
            if mark_sent(conn, message_id, found, datetime.now().astimezone(), "settled after a crash by the provider's record"):
                outcome["settled_by_provider"] += 1
            continue
        receipt = conn.execute("SELECT status, provider_message_id, received_at FROM receipts WHERE message_id = ? "
                               "ORDER BY received_at LIMIT 1", [message_id]).fetchone()
        if receipt is not None and receipt[0] in SETTLED_BY_RECEIPT:
            if mark_sent(conn, message_id, receipt[1], datetime.now().astimezone(),
                         f"settled after a crash by a delivery report ({receipt[0]})"):
                outcome["settled_by_receipt"] += 1
            continue
        if mark_unknown(conn, message_id, f"worker {worker} stopped during the {provider} call and there is no record "
                        "of the outcome yet; a delivery report will settle it — check the gateway's log before "
                        "sending again (`nudgelab dispatch resolve`)"):
            outcome["unknown"] += 1
    return outcome


def counts(conn: sqlite3.Connection, run_id: str | None = None) -> Counter:
    """Messages by state (of one run, or all)."""
    where, params = ("WHERE run_id = ?", [run_id]) if run_id else ("", [])
    return Counter(dict(conn.execute(f"SELECT state, count(*) FROM messages {where} GROUP BY state", params).fetchall()))
