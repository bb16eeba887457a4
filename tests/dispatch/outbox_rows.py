"""Queue hand-made messages straight into ops.sqlite, for tests of the worker and the outbox
(planning has its own tests)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from dispatch.ops import iso, transaction
from dispatch.planner import MESSAGE_COLUMNS, message_id_for


def queue(conn, users: list[str], provider: str, channel: str = "sms", *, phone_prefix: str = "+1202555",
          run_id: str = "run-1", campaign_id: str = "c1", body: str = "Your parcel is out for delivery",
          priority: int = 5, category: str = "transactional", zones: list[str] | None = None,
          quiet: tuple[str, str] | None = None, due: datetime | None = None, start: int = 0) -> list[str]:
    """One message per user (phones ``phone_prefix`` + 4 digits from ``start``); returns the ids."""
    now = datetime.now(timezone.utc)
    stamp, due_text = iso(now), iso(due or now)
    ids, rows, contacts = [], [], []
    for i, user in enumerate(users):
        key = f"{run_id}|{user}|{channel}|main|"
        message_id = message_id_for(key)
        ids.append(message_id)
        contacts.append((user, f"{phone_prefix}{start + i:04d}", f"{user}@example.test", f"tok-{user}", None, "US", None, stamp))
        row = {"message_id": message_id, "idempotency_key": key, "run_id": run_id, "campaign_id": campaign_id,
               "step": "main", "user_id": user, "channel": channel, "provider": provider, "category": category,
               "priority": priority, "template_id": "t1", "variant": None, "experiment_id": None,
               "dedupe_value": None, "address": None, "subject": "Parcel" if channel == "email" else None,
               "body": f"{body} #{start + i}", "encoding": "gsm7" if channel == "sms" else None,
               "segments": 1 if channel == "sms" else None, "extra": None, "zones": json.dumps(zones or []),
               "quiet_start": quiet[0] if quiet else None, "quiet_end": quiet[1] if quiet else None,
               "conflict_action": "defer", "conflict_window_s": 0.0, "scheduled_for": due_text, "due_at": due_text,
               "state": "queued", "updated_at": stamp}
        rows.append(tuple(row[c] for c in MESSAGE_COLUMNS))
    with transaction(conn):
        conn.executemany("INSERT INTO contacts VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET "
                         "phone = excluded.phone, email = excluded.email", contacts)
        conn.executemany(f"INSERT INTO messages ({', '.join(MESSAGE_COLUMNS)}) VALUES "
                         f"({', '.join('?' for _ in MESSAGE_COLUMNS)})", rows)
    return ids


def states(conn, run_id: str | None = None) -> dict[str, tuple[str, str | None, int]]:
    """message id -> (state, last error, attempts)."""
    where, params = ("WHERE run_id = ?", [run_id]) if run_id else ("", [])
    return {r[0]: (r[1], r[2], r[3]) for r in conn.execute(
        f"SELECT message_id, state, last_error, attempts FROM messages {where}", params)}
