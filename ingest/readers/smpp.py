"""SMPP delivery receipts, one ``short_message`` text per line → ``deliveries`` records.

``id:IIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DDDDDDD err:EEE text:…``
with the variants seen in the wild: seconds in the dates, ``sub``/``dlvrd``/``text`` missing,
``Text:`` capitalised, decimal or hex ids up to 65 characters (kept verbatim), an optional leading
receipt time and TAB (as the receiver logs it), and optional ``key=value`` / ``key:value`` fields
before ``id:`` (``smsc=…`` names the provider; addresses there are dropped, never kept).

The event time is the ``done date`` — the SMSC's local time without a zone, so it is passed on as
naive ISO for the loader's ``--timezone``; without a usable done date, the logged receipt time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from ingest import vendor_statuses as vs
from ingest.contract import Record
from ingest.readers import base

FORMAT = "smpp"

_FIELD = re.compile(r"(?i)(?<!\S)(id|sub|dlvrd|submit[ _]date|done[ _]date|stat|err|text):")
_PREFIX_TOKEN = re.compile(r"^([\w.-]+)[=:](\S*)$")
_LOOKS_LIKE_RECEIPT = re.compile(r"(?i)^(?:[\w.-]+[=:]\S*\s+)*id:\S*\s.*(?<!\S)stat:\S+")
_PROVIDER_KEYS = ("smsc", "smsc_id", "smsc-id", "smscid")


def parse_receipt(text: str) -> dict[str, str] | None:
    """The fields of a receipt text (keys lower-case, ``submit date`` → ``submit_date``), or None.

    Fields before ``id:`` land under ``prefix`` as ``key=value`` pairs. ``text`` runs to the end
    of the line (it may contain anything, even ``stat:``). None when the text has no ``id:``.
    """
    matches = list(_FIELD.finditer(text))
    if not matches or matches[0].group(1).lower() != "id":
        # ``id:`` must come first among the known fields: anything else is not a receipt.
        first_id = next((m for m in matches if m.group(1).lower() == "id"), None)
        if first_id is None:
            return None
        matches = [m for m in matches if m.start() >= first_id.start()]
    fields: dict[str, str] = {"prefix": text[: matches[0].start()].strip()}
    for index, match in enumerate(matches):
        key = match.group(1).lower().replace(" ", "_")
        if key == "text":
            fields["text"] = text[match.end():]
            break
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        fields.setdefault(key, text[match.end(): end].strip())
    return fields


def looks_like_receipt(line: str) -> bool:
    """True for a line (optionally time-prefixed) that reads as an SMPP receipt."""
    _, body = vs.split_received_at(line)
    return bool(_LOOKS_LIKE_RECEIPT.match(body))


def sniff(sample: str) -> bool:
    return vs.sniff_lines(sample, looks_like_receipt)


def done_date_iso(raw: str | None) -> str | None:
    """A receipt date (``YYMMDDhhmm[ss]``) as naive ISO, or None when absent or impossible."""
    if not raw:
        return None
    iso = base.compact_to_iso(raw)
    if iso is None:
        return None
    try:
        datetime.fromisoformat(iso)
    except ValueError:
        return None
    return iso


def receipt_values(receipt: dict[str, str]) -> tuple[dict[str, str | None], dict[str, object]]:
    """Contract values and extra fields for a parsed receipt (shared with the Kannel reader)."""
    stat = receipt.get("stat") or None
    values: dict[str, str | None] = {
        "provider_message_id": receipt.get("id") or None,
        "status": vs.map_status("smpp", stat),
        "provider_status": stat,
        "error_code": vs.error_code(receipt.get("err")),
    }
    extra: dict[str, object] = {}
    for key in ("sub", "dlvrd", "err", "text"):
        if key in receipt:
            extra[key] = receipt[key]
    for key in ("submit_date", "done_date"):
        if key in receipt:
            extra[key] = done_date_iso(receipt[key]) or receipt[key]
    return values, extra


def _prefix_fields(prefix: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    leftovers: list[str] = []
    for token in prefix.split():
        match = _PREFIX_TOKEN.match(token)
        if match:
            fields.setdefault(match.group(1), match.group(2))
        elif not vs.looks_personal(token):
            leftovers.append(token)
    if leftovers:
        fields["prefix"] = " ".join(leftovers)
    return fields


def record_from_line(number: int, text: str) -> Record:
    received_at, body = vs.split_received_at(text)
    receipt = parse_receipt(body)
    if receipt is None:
        return Record(
            number, text, "deliveries",
            reason=f"line {number}: not an SMPP delivery receipt (expected 'id:<message id> … stat:<STAT> …')",
        )
    if not receipt.get("id"):
        return Record(number, text, "deliveries", reason=f"line {number}: SMPP receipt without a message id after 'id:'")
    if not receipt.get("stat"):
        return Record(
            number, text, "deliveries",
            reason=f"line {number}: SMPP receipt for id {receipt['id']} has no 'stat:' field, so its status is unknown",
        )
    values, extra = receipt_values(receipt)
    prefix = _prefix_fields(receipt.get("prefix", ""))
    provider = next((prefix.pop(k) for k in _PROVIDER_KEYS if prefix.get(k)), None)
    for key in ("source_addr", "to", "msisdn"):
        if prefix.get(key) and not values.get("country"):
            values["country"] = vs.country_of(prefix[key])
    extra.update(prefix)
    occurred_at = done_date_iso(receipt.get("done_date"))
    occurred_at = vs.or_receipt_time(occurred_at, received_at, extra)
    if occurred_at is None:
        return Record(
            number, text, "deliveries",
            reason=(
                f"line {number}: no event time: the receipt's 'done date:' is missing or not "
                "YYMMDDhhmm[ss]; log the receipt time before the line (time, TAB, receipt)"
            ),
        )
    values.update(occurred_at=occurred_at, provider=provider or "smpp", channel="sms")
    dropped: list[str] = []
    return Record(
        number, text, "deliveries",
        values={k: v for k, v in values.items() if v is not None},
        extra=vs.scrub(extra, dropped),
    )


def read(path: Path, event_type: str | None = None) -> Iterator[Record]:
    """One ``deliveries`` record per non-blank line of ``path`` (gzip read transparently)."""
    for number, text, raw in base.numbered_lines(path):
        if text is None:
            yield Record(number, raw, "deliveries", reason=vs.invalid_utf8_reason(number))
            continue
        yield record_from_line(number, text)
