"""Keyed hashes of personal identifiers: raw phone numbers, e-mails and IPs never reach the warehouse.

Phone numbers are normalised to E.164 with ``phonenumbers`` first, so that ``+44 20 7946 0958`` and
``+442079460958`` hash alike; e-mails are trimmed and lower-cased; IPs are parsed and printed in
their canonical form. A number already in E.164 is checked against phonenumbers' metadata directly
(``ingest.e164``, ten times faster than its parser); any other is normalised once per process (a
cache). Batches hash in SQL: ``ingest.hash_tables``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from functools import lru_cache

import phonenumbers

from ingest import e164

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class HashError(ValueError):
    """A value that cannot be normalised; the message says why, for the quarantine, and never
    quotes the value (it is a person's address)."""


def _why(exc: phonenumbers.NumberParseException) -> str:
    """phonenumbers' reason without the text it was given."""
    return str(getattr(exc, "_msg", "") or "unreadable").rstrip(".").lower()


def normalise_phone(raw: str, default_region: str | None = None) -> str:
    """E.164 form of ``raw``; national forms need ``default_region`` (an ISO country code)."""
    text = raw.strip()
    if e164.certified(text):  # already E.164 and valid: phonenumbers would return it as it is
        return text
    # an international number reads the same in every region: one cache entry, not one per country
    return _normalise_phone(text, None if text.startswith("+") else default_region)


@lru_cache(maxsize=2_000_000)
def _normalise_phone(text: str, default_region: str | None) -> str:
    try:
        parsed = phonenumbers.parse(text, (default_region or "").upper() or None)
    except phonenumbers.NumberParseException as exc:
        hint = "" if text.startswith("+") or default_region else " (no leading + and no country to read it in)"
        raise HashError(f"not a phone number{hint}: {_why(exc)}") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise HashError("not a valid phone number for its country")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalise_email(raw: str) -> str:
    text = raw.strip().lower()
    if not _EMAIL.match(text):
        raise HashError("not an e-mail address of the form name@domain")
    return text


def normalise_ip(raw: str) -> str:
    try:
        return str(ipaddress.ip_address(raw.strip()))
    except ValueError as exc:
        raise HashError("not a valid IP address") from exc


def normalise_recipient(raw: str, channel: str | None, default_region: str | None = None) -> str:
    """A recipient by channel: phone for sms/rcs, e-mail for email, a device token for push."""
    text = raw.strip()
    kind = (channel or "").strip().lower()
    if kind == "email" or (not kind and "@" in text):
        return normalise_email(text)
    if kind == "push":
        if not text:
            raise HashError("empty push device token")
        return text
    return normalise_phone(text, default_region)


def normalise_contact(raw: str, default_region: str | None = None) -> str:
    """A reply's sender: an e-mail address (e-mail unsubscribes, spam reports) or a phone number."""
    if "@" in raw:
        return normalise_email(raw)
    return normalise_phone(raw, default_region)


def keyed_hash(value: str, key: bytes) -> str:
    """HMAC-SHA256 of the normalised value, hex, truncated to 128 bits."""
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def key_fingerprint(key: bytes) -> str:
    """A short, non-reversible name for a hash key, recorded in the warehouse to refuse another key."""
    return hmac.new(key, b"nudgelab hash key fingerprint", hashlib.sha256).hexdigest()[:16]
