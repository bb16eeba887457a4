"""Operators' state of anomaly incidents in ops.sqlite: what each incident was last notified as (the
ledger), who acknowledged it, and silences — operational state that the anomaly run, the CLI
(``nudgelab incidents``) and the app's Anomalies page all write, so it lives beside dispatch's
outbox in ops.sqlite (SQLite WAL; every change is one ``dispatch.ops.transaction``).

It lives in ``dispatch`` (which owns ops.sqlite) and depends only on ``dispatch.ops``, so the roof's
alerting and CLI and the app's page use the very same functions.

Tables:

* ``alert_ledger`` — one row per incident: the revision and event last notified (``opened``,
  ``updated``, ``resolved``; ``suppressed``: first seen while silenced, never notified; ``adopted``:
  notified by a nudgelab from before the ledger, known from the warehouse's ``alerted_at``), how
  (``own`` message or ``digest``) and the severity, end, open flag and messages affected as notified;
* ``alert_acks`` — one row per acknowledged incident (by, at, comment);
* ``alert_silences`` — matchers (Alertmanager style: ``label=value``, ``!=``, ``=~`` and ``!~`` for
  full-match regular expressions; a label an incident lacks is the empty string), start, end,
  author, comment, and who ended it early.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from dispatch.ops import connect, iso, parse_iso, transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS alert_ledger (
    incident_id TEXT PRIMARY KEY,
    revision INTEGER NOT NULL,      -- of the last event queued (1 = opened); 0 when nothing was sent
    last_event TEXT NOT NULL,       -- opened, updated, resolved, suppressed, adopted
    tier TEXT,                      -- own (its own messages) or digest (minor: in the run's digest)
    severity TEXT,                  -- as last notified
    is_open INTEGER NOT NULL,
    end_at TEXT,
    messages_affected REAL,
    first_notified_at TEXT,
    notified_at TEXT,               -- when the last event was queued
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alert_acks (
    incident_id TEXT PRIMARY KEY,
    acked_by TEXT NOT NULL,
    acked_at TEXT NOT NULL,
    comment TEXT
);
CREATE TABLE IF NOT EXISTS alert_silences (
    silence_id TEXT PRIMARY KEY,
    matchers TEXT NOT NULL,         -- JSON list of [label, op, value]
    starts_at TEXT NOT NULL,
    ends_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    comment TEXT,
    ended_by TEXT,                  -- who ended it before its time (unsilence)
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_silences_end ON alert_silences (ends_at);
"""

# the slice dimensions of the hourly metrics (experiments.anomalies.series.DIMS; a test keeps them equal)
SLICE_LABELS = ("campaign_id", "channel", "provider", "region", "carrier")
BASE_LABELS = ("incident_id", "metric", "direction", "severity", "slice")
OPS = ("=~", "!~", "!=", "=")  # longest first, for parsing
SEVERITIES = ("minor", "major", "critical")  # least first
_DURATION = re.compile(r"(\d+)([smhdw])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class StateError(ValueError):
    """A bad incident id, matcher, duration or silence id (one line the operator can act on)."""


def rank(severity: str | None) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else 0


@contextmanager
def store(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection to ops.sqlite with these tables (created private, like every ops.sqlite)."""
    conn = connect(path)
    try:
        conn.executescript(SCHEMA)
        yield conn
    finally:
        conn.close()


def _now(now: datetime | None) -> datetime:
    return (now or datetime.now(timezone.utc)).astimezone(timezone.utc)


# -- durations, ids and matchers ---------------------------------------------------------------------

def parse_duration(text: str) -> timedelta:
    """``30m``, ``4h``, ``2d``, ``1w``, ``1d12h``: a positive duration."""
    spec = (text or "").strip().lower()
    if not spec or _DURATION.sub("", spec):
        raise StateError(f"duration {text!r} is not like 30m, 4h, 2d, 1w or 1d12h")
    seconds = sum(int(n) * _UNIT[u] for n, u in _DURATION.findall(spec))
    if seconds <= 0:
        raise StateError(f"duration {text!r} is not positive")
    if seconds > 366 * 86400:
        raise StateError(f"duration {text!r} is longer than a year: silence for less and renew it")
    return timedelta(seconds=seconds)


def resolve_id(given: str, known: Iterable[str]) -> str:
    """An incident id as given, or the one known id it is a prefix of (at least 4 characters)."""
    known = list(known)
    if given in known:
        return given
    found = [i for i in known if len(given) >= 4 and i.startswith(given)]
    if len(found) == 1:
        return found[0]
    if found:
        raise StateError(f"incident id {given!r} is ambiguous ({len(found)} incidents start with it): give more of it")
    raise StateError(f"no incident {given!r} (see `nudgelab incidents list`)")


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str
    value: str

    def matches(self, incident: dict) -> bool:
        have = incident.get(self.label)
        have = "" if have is None else str(have)
        if self.op == "=":
            return have == self.value
        if self.op == "!=":
            return have != self.value
        hit = re.fullmatch(self.value, have) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f"{self.label}{self.op}{self.value}"


def labels() -> tuple[str, ...]:
    """The labels a matcher may name: the incident's own and the slice dimensions."""
    return (*BASE_LABELS, *SLICE_LABELS)


def parse_matcher(text: str) -> Matcher:
    LABELS = labels()
    for op in OPS:
        label, sep, value = text.partition(op)
        if sep and label.strip():
            break
    else:
        raise StateError(f"matcher {text!r} is not LABEL=VALUE (or !=, =~, !~); labels: {', '.join(labels())}")
    label, value = label.strip(), value.strip().strip("\"'")
    if label == "incident":
        label = "incident_id"
    if label not in LABELS:
        raise StateError(f"unknown label {label!r} in {text!r}; labels: {', '.join(LABELS)}")
    if label == "severity" and op in ("=", "!=") and value not in SEVERITIES:
        raise StateError(f"severity {value!r} is not one of {', '.join(SEVERITIES)}")
    if op in ("=~", "!~"):
        try:
            re.compile(value)
        except re.error as exc:
            raise StateError(f"matcher {text!r}: not a regular expression ({exc})") from exc
    return Matcher(label, op, value)


# -- acknowledgements --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Ack:
    incident_id: str
    by: str
    at: datetime
    comment: str | None


def _ack(row: sqlite3.Row) -> Ack:
    return Ack(row["incident_id"], row["acked_by"], parse_iso(row["acked_at"]), row["comment"])


def acknowledge(ops: sqlite3.Connection, incident_id: str, by: str, comment: str | None = None,
                now: datetime | None = None) -> tuple[Ack, bool]:
    """Acknowledge an incident: no further updates for it (its resolved notice still goes out).
    Returns (the acknowledgement, whether it is new); acknowledging again keeps the first one."""
    if not by or not by.strip():
        raise StateError("say who acknowledges (--by NAME)")
    with transaction(ops):
        ops.execute("INSERT INTO alert_acks (incident_id, acked_by, acked_at, comment) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (incident_id) DO NOTHING", (incident_id, by.strip(), iso(_now(now)), comment or None))
        added = ops.execute("SELECT changes()").fetchone()[0] == 1
    row = ops.execute("SELECT * FROM alert_acks WHERE incident_id = ?", (incident_id,)).fetchone()
    return _ack(row), added


def unacknowledge(ops: sqlite3.Connection, incident_id: str) -> bool:
    """Take an acknowledgement back (updates flow again); False when there was none."""
    with transaction(ops):
        return ops.execute("DELETE FROM alert_acks WHERE incident_id = ?", (incident_id,)).rowcount == 1


def acks(ops: sqlite3.Connection) -> dict[str, Ack]:
    return {r["incident_id"]: _ack(r) for r in ops.execute("SELECT * FROM alert_acks")}


# -- silences ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Silence:
    silence_id: str
    matchers: tuple[Matcher, ...]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str | None
    ended_by: str | None

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, incident: dict) -> bool:
        return all(m.matches(incident) for m in self.matchers)

    def describe(self) -> str:
        return ", ".join(map(str, self.matchers))


def _silence(row: sqlite3.Row) -> Silence:
    return Silence(row["silence_id"], tuple(Matcher(*m) for m in json.loads(row["matchers"])),
                   parse_iso(row["starts_at"]), parse_iso(row["ends_at"]), row["created_by"], row["comment"],
                   row["ended_by"])


def add_silence(ops: sqlite3.Connection, matchers: list[Matcher], duration: timedelta, by: str,
                comment: str | None = None, now: datetime | None = None) -> Silence:
    """Silence every incident the matchers all match, from now for ``duration``: no notification of
    any kind (what changes meanwhile is notified after it expires, if the incident was notified before
    or is still open)."""
    if not matchers:
        raise StateError("a silence needs an incident id or at least one LABEL=VALUE matcher")
    if not by or not by.strip():
        raise StateError("say who silences (--by NAME)")
    start = _now(now)
    silence_id = "s-" + secrets.token_hex(4)
    with transaction(ops):
        ops.execute("INSERT INTO alert_silences (silence_id, matchers, starts_at, ends_at, created_by, comment, "
                    "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (silence_id, json.dumps([[m.label, m.op, m.value] for m in matchers]), iso(start),
                     iso(start + duration), by.strip(), comment or None, iso(start)))
    return _silence(ops.execute("SELECT * FROM alert_silences WHERE silence_id = ?", (silence_id,)).fetchone())


def end_silence(ops: sqlite3.Connection, silence_id: str, by: str, now: datetime | None = None) -> Silence:
    """End a silence now (``unsilence``); an unknown or already expired silence is an error."""
    at = _now(now)
    with transaction(ops):
        row = ops.execute("SELECT * FROM alert_silences WHERE silence_id = ?", (silence_id,)).fetchone()
        if row is None:
            raise StateError(f"no silence {silence_id!r} (see `nudgelab incidents silences --all`)")
        if not _silence(row).active(at):
            raise StateError(f"silence {silence_id} already ended at {row['ends_at']}")
        ops.execute("UPDATE alert_silences SET ends_at = ?, ended_by = ? WHERE silence_id = ?",
                    (iso(at), (by or "").strip() or "unknown", silence_id))
    return _silence(ops.execute("SELECT * FROM alert_silences WHERE silence_id = ?", (silence_id,)).fetchone())


def silences(ops: sqlite3.Connection, now: datetime | None = None, include_ended: bool = False) -> list[Silence]:
    """Silences active now (or all of them), soonest ending first."""
    at = _now(now)
    found = [_silence(r) for r in ops.execute("SELECT * FROM alert_silences ORDER BY ends_at, silence_id")]
    return found if include_ended else [s for s in found if s.active(at)]


def silenced_by(incident: dict, active: Iterable[Silence]) -> Silence | None:
    """The active silence that matches the incident and lasts longest, or None."""
    hits = [s for s in active if s.matches(incident)]
    return max(hits, key=lambda s: s.ends_at) if hits else None


# -- the ledger --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Notified:
    """What an incident was last notified as."""

    incident_id: str
    revision: int
    last_event: str
    tier: str | None
    severity: str | None
    is_open: bool
    end_at: datetime | None
    messages_affected: float
    first_notified_at: datetime | None
    notified_at: datetime | None


def _notified(row: sqlite3.Row) -> Notified:
    when = lambda v: parse_iso(v) if v else None  # noqa: E731
    return Notified(row["incident_id"], row["revision"], row["last_event"], row["tier"], row["severity"],
                    bool(row["is_open"]), when(row["end_at"]), float(row["messages_affected"] or 0.0),
                    when(row["first_notified_at"]), when(row["notified_at"]))


def ledger(ops: sqlite3.Connection) -> dict[str, Notified]:
    return {r["incident_id"]: _notified(r) for r in ops.execute("SELECT * FROM alert_ledger")}


def record(ops: sqlite3.Connection, entries: list[Notified], now: datetime) -> None:
    """Write ledger rows (inside the caller's transaction, with the outbox rows they stand for)."""
    when = lambda v: iso(v) if v else None  # noqa: E731
    ops.executemany(
        "INSERT INTO alert_ledger (incident_id, revision, last_event, tier, severity, is_open, end_at, "
        "messages_affected, first_notified_at, notified_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (incident_id) DO UPDATE SET revision = excluded.revision, last_event = excluded.last_event, "
        "tier = excluded.tier, severity = excluded.severity, is_open = excluded.is_open, end_at = excluded.end_at, "
        "messages_affected = excluded.messages_affected, first_notified_at = excluded.first_notified_at, "
        "notified_at = excluded.notified_at, updated_at = excluded.updated_at",
        [(e.incident_id, e.revision, e.last_event, e.tier, e.severity, int(e.is_open), when(e.end_at),
          e.messages_affected, when(e.first_notified_at), when(e.notified_at), iso(now)) for e in entries])


# -- what readers show -------------------------------------------------------------------------------

@dataclass(frozen=True)
class State:
    """An incident's operator state, as the CLI listing and the app show it."""

    ack: Ack | None
    silence: Silence | None
    notified: Notified | None

    def describe(self) -> str:
        parts = []
        if self.ack:
            parts.append(f"acknowledged by {self.ack.by} {self.ack.at:%Y-%m-%d %H:%M} UTC")
        if self.silence:
            parts.append(f"silenced until {self.silence.ends_at:%Y-%m-%d %H:%M} UTC ({self.silence.silence_id})")
        return "; ".join(parts) or "—"

    def last_notice(self) -> str:
        n = self.notified
        if n is None:
            return "not notified yet"
        if n.last_event == "suppressed":
            return "never notified (silenced)"
        if n.last_event == "adopted":
            return "notified (before the ledger)"
        return f"{n.last_event} r{n.revision}{' in digest' if n.tier == 'digest' else ''} {n.notified_at:%Y-%m-%d %H:%M}"


def states(path: Path, incidents: list[dict], now: datetime | None = None) -> dict[str, State] | None:
    """Each incident's state, or None when ops.sqlite does not exist yet (nothing is created)."""
    if not Path(path).exists():
        return None
    at = _now(now)
    with store(path) as ops:
        known_acks, active, notes = acks(ops), silences(ops, at), ledger(ops)
    return {i["incident_id"]: State(known_acks.get(i["incident_id"]), silenced_by(i, active),
                                    notes.get(i["incident_id"])) for i in incidents}
