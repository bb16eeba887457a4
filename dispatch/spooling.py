"""Everything dispatch did, handed to ingestion through the spool: each sent message as a
``sends`` event, each assignment as an ``assignments`` event, each campaign experiment's
definition as an ``experiments`` event — in the contract's input names, so ``nudgelab ingest
--spool`` lands them like any other source.

At least once, counted once: rows are written to a spool file (fsync'd, then published by rename)
before they are flagged ``spooled`` in ops.sqlite; a crash in between writes them again next time,
and ingestion drops the repeats by their deterministic event ids (``snd-<message id>``,
``asg-<hash of experiment and unit>``, ``def-<experiment>-<time>``). The recipient goes out as its
keyed hash (``recipient_hash``), never as the address. Messages to operators (alerts, which carry
their own ``address``) are not the product's sends and stay out of the warehouse.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import Counter
from pathlib import Path

from dispatch.ops import parse_iso, transaction
from ingest import hashing
from ingest.spool import SpoolWriter

CHUNK = 5_000


def _recipient_hash(row: sqlite3.Row, key: bytes) -> str | None:
    """The keyed hash ingestion would compute for the recipient. Contacts keep addresses as their
    import normalised them (E.164 numbers, lower-cased e-mails: ``dispatch.contacts``), so those are
    hashed as they are — parsing every number again would cost the worker a third of its time."""
    channel = row["channel"]
    stored = {"sms": row["phone"], "rcs": row["phone"], "email": row["email"]}.get(channel)
    if stored:
        return hashing.keyed_hash(stored, key)
    address = row["address"] or row["push_token"]
    if not address:
        return None
    try:
        return hashing.keyed_hash(hashing.normalise_recipient(address, channel), key)
    except hashing.HashError:
        return None


def send_event(row: sqlite3.Row, key: bytes) -> dict:
    """The ``sends`` event of one sent message."""
    return {
        "event_id": f"snd-{row['message_id']}", "occurred_at": parse_iso(row["sent_at"]).isoformat(),
        "message_id": row["message_id"], "user_id": row["user_id"], "campaign_id": row["campaign_id"],
        "channel": row["channel"], "template_id": row["template_id"], "variant": row["variant"],
        "experiment_id": row["experiment_id"], "provider": row["provider"],
        "provider_message_id": row["provider_message_id"], "recipient_hash": _recipient_hash(row, key),
        "encoding": row["encoding"], "segments": row["segments"], "priority": row["priority"],
        "category": row["category"], "scheduled_for": parse_iso(row["scheduled_for"]).isoformat(),
        "step": row["step"], "run_id": row["run_id"],
    }


def assignment_event(row: sqlite3.Row) -> dict:
    digest = hashlib.sha256(f"{row['experiment_id']}\x00{row['unit_id']}".encode()).hexdigest()[:24]
    return {"event_id": f"asg-{digest}", "occurred_at": parse_iso(row["assigned_at"]).isoformat(),
            "user_id": row["unit_id"], "experiment_id": row["experiment_id"], "variant": row["variant"],
            "unit_id": row["unit_id"], "run_id": row["run_id"]}


def flush(conn: sqlite3.Connection, spool_dir: Path, key: bytes, fault=None) -> Counter:
    """Write every unspooled definition, assignment and sent message to the spool; returns counts."""
    written: Counter = Counter()
    queries = (
        ("experiments", "SELECT rowid AS k, * FROM definitions WHERE spooled = 0 LIMIT ?", "definitions", "rowid"),
        ("assignments", "SELECT rowid AS k, * FROM assignments WHERE spooled = 0 LIMIT ?", "assignments", "rowid"),
        ("sends", "SELECT m.message_id AS k, m.*, c.phone, c.email, c.push_token FROM messages m "
                  "LEFT JOIN contacts c USING (user_id) WHERE m.spooled = 0 AND m.state = 'sent' AND m.address IS NULL LIMIT ?",
         "messages", "message_id"),
    )
    for event_type, sql, table, key_column in queries:
        while True:
            batch = conn.execute(sql, [CHUNK]).fetchall()
            if not batch:
                break
            with SpoolWriter(spool_dir, max_events=CHUNK + 1, sync_each=False) as writer:
                for row in batch:
                    if event_type == "experiments":
                        writer.write("experiments", json.loads(row["record"]))
                    elif event_type == "assignments":
                        writer.write("assignments", assignment_event(row))
                    else:
                        writer.write("sends", send_event(row, key))
            if fault is not None:
                fault("spooled_not_flagged")
            marks = ", ".join("?" for _ in batch)
            with transaction(conn):
                conn.execute(f"UPDATE {table} SET spooled = 1 WHERE {key_column} IN ({marks})", [r["k"] for r in batch])
            written[event_type] += len(batch)
            if len(batch) < CHUNK:
                break
    return written
