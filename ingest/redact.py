"""Keep raw phone numbers and e-mail addresses out of everything the warehouse stores as text.

The contract's identifier fields (recipient, phone, sender, email, ip) are replaced by keyed
hashes when a row is typed (``ingest.hashing``). Text the contract cannot type — a quarantined
record as it was read, a reason, a column the contract does not know (``extra``), free text such
as a reply or a URL — goes through ``redact_text``: anything shaped like an e-mail address or a
phone number is replaced by ``<email:HASH>`` or ``<phone:HASH>``, the same keyed hash the typed
columns carry when the value normalises (so an operator can still find the row and the person),
else the keyed hash of the text as written.

What counts as phone-shaped, in text nothing else describes: a ``+`` and 8-15 digits, or 8-15
digits with or without spaces, dots, dashes or parentheses between them, standing alone (not
inside a longer word or id), that is not an ISO date or a decimal number. Long numeric ids (a
Unix time, an order number of 8+ digits) are hashed too: a false alarm costs a readable number
in a quarantined record, a miss would leak a person's number.
"""

from __future__ import annotations

import json
import re

from ingest import hashing

EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
PHONE = re.compile(r"(?<![\w.-])\+?\(?\d[\d ().-]{5,}\d(?![\w])")
URL_ESCAPES = re.compile(r"%(2B|40)", re.IGNORECASE)  # '+' and '@' in a logged query string
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
DECIMAL = re.compile(r"^-?\d+\.\d+$")
IDENTIFIER_INPUTS = ("recipient", "phone", "sender", "email", "ip")
_CHEAP_TEST = re.compile(r"@|%40|\d{3}", re.IGNORECASE)  # text with neither cannot hold an address or a number


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _phone_hash(candidate: str, key: bytes) -> str | None:
    digits = _digits(candidate)
    if not 8 <= len(digits) <= 15:
        return None
    stripped = candidate.strip()
    if not stripped.startswith("+") and (ISO_DATE.match(stripped) or DECIMAL.match(stripped)):
        return None
    try:
        normal = hashing.normalise_phone(stripped)  # E.164 when it carries its country: the hash typed columns use
    except hashing.HashError:
        normal = ("+" if stripped.startswith("+") else "") + digits
    return hashing.keyed_hash(normal, key)


def redact_text(text: str | None, key: bytes) -> str | None:
    """``text`` with every e-mail- or phone-shaped part replaced by its keyed hash."""
    if not text or not _CHEAP_TEST.search(text):
        return text
    if "%" in text:
        text = URL_ESCAPES.sub(lambda m: "+" if m.group(1).upper() == "2B" else "@", text)

    def email(match: re.Match) -> str:
        return f"<email:{hashing.keyed_hash(match.group(0).strip().lower(), key)}>"

    def phone(match: re.Match) -> str:
        hashed = _phone_hash(match.group(0), key)
        return match.group(0) if hashed is None else f"<phone:{hashed}>"

    return PHONE.sub(phone, EMAIL.sub(email, text))


_QUOTED = re.compile(r"'([^']*)'")


def redact_reason(reason: str | None, key: bytes) -> str | None:
    """A quarantine reason with the values it quotes ('…') redacted; our own words (counts, limits)
    are left alone."""
    if not reason:
        return reason
    return _QUOTED.sub(lambda m: "'" + (redact_text(m.group(1), key) or "") + "'", reason)


def hash_identifier(value: object, key: bytes) -> str:
    """A known identifier field's value, as a keyed hash (of its normal form when it has one)."""
    text = str(value).strip()
    normalise = hashing.normalise_email if "@" in text else hashing.normalise_phone
    try:
        text = normalise(text)
    except hashing.HashError:
        pass  # not a valid address: the hash of the text as written still finds it
    return f"<id:{hashing.keyed_hash(text, key)}>"


def redact_json(text: str | None, key: bytes) -> str | None:
    """JSON of a record or of columns the contract does not know, redacted: a key that names an
    identifier (recipient, phone, msisdn, a second ``recipient``, ``email_2``, …) has its value hashed
    whole; every other value is redacted as text (nested values too, a long number as well: it may
    be a phone number). Text that is not a JSON object is redacted as text."""
    if text is None:
        return None
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        return redact_text(text, key)
    if not isinstance(parsed, dict):
        return redact_text(text, key)
    clean: dict[str, object] = {}
    for name, value in parsed.items():
        lowered = str(name).strip().lower()
        if value is not None and (lowered in IDENTIFIER_INPUTS or _names_an_identifier(lowered)):
            clean[name] = hash_identifier(value, key)
        elif isinstance(value, str):
            clean[name] = redact_text(value, key)
        elif isinstance(value, (dict, list)):
            clean[name] = json.loads(redact_text(json.dumps(value, ensure_ascii=False), key) or "null")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            shown = redact_text(str(value), key)
            clean[name] = value if shown == str(value) else shown
        else:
            clean[name] = value
    return json.dumps(clean, ensure_ascii=False)


_IDENTIFIER_WORDS = re.compile(r"(^|_)(msisdn|phone|mobile|cell|email|e_mail|mail|recipient|to|from|sender|ip|address)(_\d+)?$")


def _names_an_identifier(name: str) -> bool:
    """Column names that hold people's addresses whatever their values look like."""
    return bool(_IDENTIFIER_WORDS.search(name.replace("-", "_").replace(" ", "_")))
