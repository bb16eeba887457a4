"""``NUDGELAB_HOME/ops.sqlite``: the dispatch module's operational state, and the only place raw
phone numbers and e-mail addresses live.

SQLite in WAL mode, because several processes touch it at once (the CLI that plans a campaign, the
worker that sends, the receiver that records opt-outs and link codes, the app): readers never wait
for the writer, writers queue behind a busy timeout. The file is created private (0600). Every
write that belongs together goes through ``transaction`` (``BEGIN IMMEDIATE``: the write lock is
taken at the start, so two workers cannot claim the same message).

Tables: ``contacts`` (raw addresses per user), ``suppressions`` (opt-outs per channel),
``campaigns`` (definitions as queued), ``runs`` (one per ``dispatch send``), ``messages`` (the
outbox: one row per user × channel × step of a run, its idempotency key, state and attempts),
``receipts`` (delivery reports the receiver matched to a message: they settle a send whose
outcome a crash left open), ``links`` (tracked short-link codes), ``journey_steps`` (later steps
waiting for their time and condition), ``assignments`` (each unit's arm, kept so that it never
changes) and ``definitions`` (campaign experiments' definitions), the last three with a flag
saying whether the spool has them yet.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS contacts (
    user_id TEXT PRIMARY KEY,
    phone TEXT,                 -- E.164
    email TEXT,                 -- lower-cased
    push_token TEXT,
    timezone TEXT,
    country TEXT,
    attributes TEXT,            -- JSON: template variables the import file carried (first_name, ...)
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS suppressions (
    channel TEXT NOT NULL,      -- sms, email, push, rcs, or * for every channel
    user_id TEXT NOT NULL,
    reason TEXT NOT NULL,       -- stop_reply, unsubscribe, complaint, operator, ...
    source TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (channel, user_id)
);
CREATE TABLE IF NOT EXISTS campaigns (
    campaign_id TEXT PRIMARY KEY,
    definition TEXT NOT NULL,   -- JSON of the Campaign as last queued
    source TEXT,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    campaign_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    audience INTEGER NOT NULL,
    queued INTEGER NOT NULL,
    held_out INTEGER NOT NULL,
    excluded TEXT NOT NULL,     -- JSON: reason -> count
    summary TEXT                -- JSON: the plan's figures as shown before queuing
);
CREATE TABLE IF NOT EXISTS messages (
    message_id TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,   -- run x user x channel x step (x dedupe value)
    run_id TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    step TEXT NOT NULL,
    user_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    provider TEXT NOT NULL,
    category TEXT NOT NULL,
    priority INTEGER NOT NULL,
    template_id TEXT,
    variant TEXT,
    experiment_id TEXT,
    dedupe_value TEXT,
    address TEXT,               -- only for messages to operators (alerts); users' come from contacts
    subject TEXT,
    body TEXT NOT NULL,
    encoding TEXT,
    segments INTEGER,
    extra TEXT,                 -- JSON: html, title, quick replies, rich card, links
    zones TEXT,                 -- JSON list: the recipient's zones for quiet hours
    quiet_start TEXT,           -- HH:MM, null when the message may pass quiet hours
    quiet_end TEXT,
    conflict_action TEXT NOT NULL DEFAULT 'defer',
    conflict_window_s REAL NOT NULL DEFAULT 0,
    scheduled_for TEXT NOT NULL, -- UTC ISO: the first planned time
    due_at TEXT NOT NULL,       -- UTC ISO: when it may go next
    state TEXT NOT NULL,        -- queued, retry, claimed, sending, sent, dead, unknown, cancelled
    attempts INTEGER NOT NULL DEFAULT 0,
    provider_message_id TEXT,
    last_error TEXT,
    claimed_by TEXT,
    claimed_at TEXT,
    sent_at TEXT,
    spooled INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_due ON messages (state, due_at);
CREATE INDEX IF NOT EXISTS messages_user ON messages (user_id, due_at);
CREATE INDEX IF NOT EXISTS messages_campaign ON messages (campaign_id, user_id, channel, step);
CREATE INDEX IF NOT EXISTS messages_unspooled ON messages (spooled, state);
CREATE TABLE IF NOT EXISTS receipts (
    message_id TEXT NOT NULL,
    status TEXT NOT NULL,       -- the contract's delivery statuses
    provider_message_id TEXT,
    received_at TEXT NOT NULL,
    source TEXT
);
CREATE INDEX IF NOT EXISTS receipts_message ON receipts (message_id);
CREATE TABLE IF NOT EXISTS links (
    code TEXT PRIMARY KEY,
    message_id TEXT NOT NULL,
    link_id TEXT NOT NULL,
    url TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS responses (   -- what the receiver heard back, for following a run live
    message_id TEXT NOT NULL,
    kind TEXT NOT NULL,         -- click, bot_click, reply
    at TEXT NOT NULL,
    detail TEXT                 -- a bot click's reason; a reply's keyword or quick-reply meaning
);
CREATE INDEX IF NOT EXISTS responses_message ON responses (message_id);
CREATE TABLE IF NOT EXISTS journey_steps (
    run_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    step TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    after_message_id TEXT NOT NULL,
    variant TEXT,
    dedupe_value TEXT,
    variables TEXT,             -- JSON: the user's per-user variables from the audience file
    due_at TEXT,                -- null until the previous step is sent
    state TEXT NOT NULL,        -- waiting, planned, skipped
    reason TEXT,
    PRIMARY KEY (run_id, user_id, step, after_message_id)
);
CREATE TABLE IF NOT EXISTS assignments (
    experiment_id TEXT NOT NULL,
    unit_id TEXT NOT NULL,
    variant TEXT NOT NULL,
    run_id TEXT NOT NULL,
    assigned_at TEXT NOT NULL,
    spooled INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (experiment_id, unit_id)
);
CREATE TABLE IF NOT EXISTS definitions (
    experiment_id TEXT NOT NULL,
    defined_at TEXT NOT NULL,
    record TEXT NOT NULL,       -- JSON: the experiments event, in the contract's input names
    spooled INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (experiment_id, defined_at)
);
"""

BUSY_TIMEOUT_MS = 30_000


ISO = "%Y-%m-%dT%H:%M:%S.%fZ"   # every time in ops.sqlite: UTC, fixed width, so text order is time order
SCHEMA_VERSION = 1


def iso(moment: datetime) -> str:
    """An instant as ops.sqlite stores it."""
    return moment.astimezone(timezone.utc).strftime(ISO)


def parse_iso(text: str) -> datetime:
    return datetime.strptime(text, ISO).replace(tzinfo=timezone.utc)


def now_iso() -> str:
    return iso(datetime.now(timezone.utc))


class OpsError(RuntimeError):
    """ops.sqlite cannot be used (one line)."""


def connect(path: Path) -> sqlite3.Connection:
    """A connection to ops.sqlite (created private, WAL, with the schema)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
    elif path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        conn.close()
        raise OpsError(f"{path} was written by a newer nudgelab (schema {version}, this one knows {SCHEMA_VERSION}): "
                       "upgrade nudgelab before dispatching from it")
    conn.executescript(SCHEMA)
    if version < SCHEMA_VERSION:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    for side in ("-wal", "-shm"):  # WAL files hold the same rows: private too
        extra = Path(str(path) + side)
        if extra.exists() and extra.stat().st_mode & 0o077:
            os.chmod(extra, 0o600)
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any error (the write lock from the start)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
