"""Contacts: the raw phone number, e-mail address and push token of each user, kept only in
ops.sqlite (the warehouse holds keyed hashes), imported from a users file.

``import_contacts(conn, path)`` reads a CSV, JSON-lines or Parquet file with a ``user_id`` column
and any of ``phone``, ``email``, ``push_token``, ``timezone``, ``country`` (the generator's
users file works as it is; a user's last row wins when a file holds several versions); every
other column becomes a template variable of that user (``attributes``). Phone numbers are stored
in E.164 (read in the row's country when they have no +), e-mails lower-cased. Idempotent:
re-importing the same file adds and updates nothing. A row with no usable address is counted as
invalid with its reason, never with the address in the message.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from dispatch import users_file
from dispatch.ops import now_iso, transaction
from ingest import hashing

ADDRESS_COLUMNS = ("phone", "email", "push_token")
KNOWN = {"user_id", "phone", "email", "push_token", "timezone", "country", "event_id", "occurred_at"}
PROFILE = {"segment", "region", "carrier", "consent_sms", "consent_email", "consent_push", "active_hours"}


class ContactsError(ValueError):
    """A contacts file that cannot be read at all (one line)."""


@dataclass
class ImportReport:
    """Rows read; users added, updated, unchanged; rows invalid (with reasons); rows that were an
    older version of a user another row of the file replaces."""

    rows: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    invalid: int = 0
    superseded: int = 0
    reasons: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {"rows": self.rows, "added": self.added, "updated": self.updated, "unchanged": self.unchanged,
                "invalid": self.invalid, "superseded": self.superseded, "invalid_reasons": dict(self.reasons)}


@dataclass(frozen=True)
class Contact:
    user_id: str
    phone: str | None
    email: str | None
    push_token: str | None
    timezone: str | None
    country: str | None
    attributes: dict

    def address(self, channel: str) -> str | None:
        """Where a message on ``channel`` goes (rcs goes to the phone number)."""
        return {"sms": self.phone, "rcs": self.phone, "email": self.email, "push": self.push_token}.get(channel)


def _read(path: Path) -> pl.DataFrame:
    try:
        frame = users_file.read(path, lower_names=True)
    except users_file.UsersFileError as exc:
        raise ContactsError(str(exc)) from exc
    if not set(ADDRESS_COLUMNS) & set(frame.columns):
        raise ContactsError(f"{path}: no phone, email or push_token column")
    frame = frame.with_columns(pl.all().cast(pl.String))
    if "occurred_at" in frame.columns:  # versions of a profile: the last one wins
        frame = frame.sort("occurred_at", nulls_last=False)
    return frame


def _normalise(row: dict) -> tuple[Contact | None, str | None]:
    user = (row.get("user_id") or "").strip()
    if not user:
        return None, "no user_id"
    country = (row.get("country") or "").strip().upper() or None
    phone = email = None
    problems = []
    if row.get("phone"):
        try:
            phone = hashing.normalise_phone(row["phone"], country)
        except hashing.HashError as exc:
            problems.append(f"phone: {exc}")
    if row.get("email"):
        try:
            email = hashing.normalise_email(row["email"])
        except hashing.HashError as exc:
            problems.append(f"email: {exc}")
    token = (row.get("push_token") or "").strip() or None
    if not (phone or email or token):
        return None, problems[0] if problems else "no address (phone, email or push_token)"
    attributes = {k: v for k, v in row.items() if k not in KNOWN and k not in PROFILE and v not in (None, "")}
    return Contact(user, phone, email, token, (row.get("timezone") or "").strip() or None, country, attributes), None


def import_contacts(conn: sqlite3.Connection, path: Path) -> ImportReport:
    """Upsert every user of ``path`` into ops.sqlite's contacts (see the module's docstring)."""
    frame = _read(path)
    latest: dict[str, Contact] = {}
    report = ImportReport(rows=frame.height)
    for row in frame.iter_rows(named=True):
        contact, problem = _normalise(row)
        if contact is None:
            report.invalid += 1
            report.reasons[problem or "invalid"] += 1
            continue
        latest[contact.user_id] = contact
    stamp = now_iso()
    with transaction(conn):
        existing = {r["user_id"]: tuple(r)[1:7] for r in conn.execute(
            "SELECT user_id, phone, email, push_token, timezone, country, attributes FROM contacts")}
        for contact in latest.values():
            values = (contact.phone, contact.email, contact.push_token, contact.timezone, contact.country,
                      json.dumps(contact.attributes, sort_keys=True))
            before = existing.get(contact.user_id)
            if before == values:
                report.unchanged += 1
                continue
            conn.execute(
                "INSERT INTO contacts VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET "
                "phone = excluded.phone, email = excluded.email, push_token = excluded.push_token, "
                "timezone = excluded.timezone, country = excluded.country, attributes = excluded.attributes, "
                "updated_at = excluded.updated_at", (contact.user_id, *values, stamp))
            if before is None:
                report.added += 1
            else:
                report.updated += 1
    report.superseded = report.rows - report.invalid - len(latest)
    return report


def load(conn: sqlite3.Connection, user_ids: list[str]) -> dict[str, Contact]:
    """The contacts of these users (those without one are simply absent)."""
    out: dict[str, Contact] = {}
    for start in range(0, len(user_ids), 50_000):
        chunk = user_ids[start:start + 50_000]
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS wanted (user_id TEXT PRIMARY KEY)")
        conn.execute("DELETE FROM wanted")
        conn.executemany("INSERT OR IGNORE INTO wanted VALUES (?)", [(u,) for u in chunk])
        for r in conn.execute("SELECT c.* FROM contacts c JOIN wanted USING (user_id)"):
            out[r["user_id"]] = Contact(r["user_id"], r["phone"], r["email"], r["push_token"], r["timezone"],
                                        r["country"], json.loads(r["attributes"] or "{}"))
    return out


CONTACT_SCHEMA = {"user_id": pl.String, "phone": pl.String, "email": pl.String, "push_token": pl.String,
                  "contact_timezone": pl.String, "contact_country": pl.String, "attributes": pl.String}


def frame(conn: sqlite3.Connection, user_ids: pl.Series) -> pl.DataFrame:
    """The contacts of these users as a frame (CONTACT_SCHEMA; users without one are absent)."""
    data = conn.execute("SELECT user_id, phone, email, push_token, timezone, country, attributes FROM contacts").fetchall()
    found = pl.DataFrame([tuple(r) for r in data], schema=list(CONTACT_SCHEMA.items()), orient="row")
    return found.join(pl.DataFrame({"user_id": user_ids.unique()}), on="user_id", how="semi")
