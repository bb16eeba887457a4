"""SendGrid event-webhook events → ``deliveries``, ``clicks`` and ``replies`` records.

Accepted layouts: the webhook's POST body as it comes, a JSON array of events (also
pretty-printed over many lines, then each record's line is the line where its element starts);
JSON lines with one event per line; or one array per line (a logged POST; its elements share the
line). ``raw`` is the element's JSON text as it appears in the file.

Per event: ``email`` → ``recipient`` (deliveries; dropped there: deliveries keep no address),
``sender`` (replies) or dropped (clicks); ``timestamp`` → occurred_at (Unix seconds);
``sg_event_id`` → event_id; ``sg_message_id`` → provider_message_id without its ``.filter…``
suffix (so it matches the send's X-Message-Id; the full value stays in ``extra``), for
deliveries, opens and clicks alike — an open or click carrying only it is joined to its send by the
loader; custom args
``message_id``/``user_id``/``campaign_id`` (top level, or under ``custom_args``/``unique_args``) →
values; ``useragent`` → user_agent, ``ip`` → ip (clicks/opens only: on delivery events it is
SendGrid's sending IP, dropped), ``url`` → url; bounce/dropped/deferred ``status`` (SMTP enhanced
code) → error_code; everything else → ``extra``. Event → event type and status, including the
choices for opens, spam reports and unsubscribes: see ``ingest.vendor_statuses``.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from collections.abc import Callable, Iterator
from pathlib import Path

from ingest import vendor_statuses as vs
from ingest.contract import Record
from ingest.readers import base

FORMAT = "sendgrid"

CUSTOM_ARG_KEYS = ("message_id", "user_id", "campaign_id")
CUSTOM_ARG_CONTAINERS = ("custom_args", "unique_args")
_SG_KEY = re.compile(r'"(?:sg_event_id|sg_message_id|smtp-id)"\s*:')
_EVENT_KEY = re.compile(r'"event"\s*:')
_DECODER = json.JSONDecoder()


def sniff(sample: str) -> bool:
    text = sample.lstrip("\ufeff \t\r\n")
    if not text.startswith(("[", "{")):
        return False
    head = text[:8192]
    return bool(_SG_KEY.search(head) and _EVENT_KEY.search(head))


_SUFFIX = re.compile(r"\.(?:filter|recvd|ismtpd)")
_SERVER_ONLY = re.compile(r"^(?:filter|recvd|ismtpd)", re.IGNORECASE)


def _message_id(value: str | None) -> str | None:
    """The send's X-Message-Id inside an ``sg_message_id``: everything before ``.filter…``.

    Legacy ids keep their own dots (``14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0`` →
    ``14c5d75ce93.dfd.64b469``); without a known suffix, the part before the first dot. A value that
    is only the filter server's part (``filterdrecv-…``, ``filter0001.16648…``) names no message:
    None (the record is then matched by its custom message_id, or quarantined), never a shared id
    that would merge different messages.
    """
    if not value or _SERVER_ONLY.match(value):
        return None   # only the filter server's part: it names a server, not a message
    match = _SUFFIX.search(value)
    return (value[: match.start()] if match else value.split(".", 1)[0]) or None


def _custom(event: dict[str, object], key: str) -> str | None:
    value = vs.as_text(event.pop(key, None))
    if value is not None:
        return value
    for container in CUSTOM_ARG_CONTAINERS:
        nested = event.get(container)
        if isinstance(nested, dict) and key in nested:
            nested = dict(nested)
            value = vs.as_text(nested.pop(key))
            event[container] = nested
            if not nested:
                del event[container]
            return value
    return None


def record_from_event(number: int, raw: str, event: object) -> Record:
    """The record for one webhook event (a JSON value) that starts on line ``number``."""
    if not isinstance(event, dict):
        return Record(number, raw, None, reason=(
            f"line {number}: a SendGrid event must be a JSON object, got a JSON {type(event).__name__}"
        ))
    fields: dict[str, object] = dict(event)
    if vs.is_contract_shaped(fields) and "event" not in fields:
        return Record(number, raw, None, reason=(
            f"line {number}: this is a contract-shaped record (event_id/occurred_at), not a SendGrid "
            "event: load the file with the csv/jsonl reader"
        ))
    name = vs.as_text(fields.pop("event", None))
    if name is None:
        return Record(number, raw, None, reason=(
            f"line {number}: no 'event' field: not a SendGrid webhook event (expected processed, "
            "delivered, bounce, open, click, …)"
        ))
    key = name.strip().lower()
    event_type, keyword = vs.SENDGRID_ENGAGEMENT.get(key, ("deliveries", None))
    values: dict[str, str | None] = {"channel": "email"}
    extra: dict[str, object] = {}
    stamp = fields.pop("timestamp", None)
    values["occurred_at"] = vs.normalise_time(stamp)
    if values["occurred_at"] is None:
        return Record(number, raw, event_type, reason=(
            f"line {number}: SendGrid '{name}' event without a usable 'timestamp' (Unix seconds), "
            f"got {stamp!r}"
        ))
    values["event_id"] = vs.as_text(fields.pop("sg_event_id", None))
    sg_message_id = vs.as_text(fields.get("sg_message_id"))
    for arg in CUSTOM_ARG_KEYS:
        value = _custom(fields, arg)
        if value is not None:
            values[arg] = value
    email = vs.as_text(fields.pop("email", None))
    ip = vs.as_text(fields.pop("ip", None))
    if event_type == "deliveries":
        values["status"] = vs.sendgrid_status(key, vs.as_text(fields.get("type")))
        values["provider_status"] = name
        values["provider"] = "sendgrid"
        values["provider_message_id"] = _message_id(sg_message_id)
        if key in ("bounce", "dropped", "deferred", "blocked"):
            values["error_code"] = vs.error_code(fields.pop("status", None))
    elif event_type == "clicks":
        values["user_agent"] = vs.as_text(fields.pop("useragent", None))
        values["ip"] = ip
        values["provider_message_id"] = _message_id(sg_message_id)   # matched to the send on loading
        if key == "open":
            values["link_id"] = vs.OPEN_LINK_ID
            machine = fields.get("sg_machine_open")
            if machine is True or str(machine).lower() == "true":
                values["is_bot"] = "true"
                values["bot_reason"] = vs.MACHINE_OPEN_REASON
        else:
            values["url"] = vs.as_text(fields.pop("url", None))
    else:  # replies: unsubscribes and spam reports
        values["keyword"] = keyword
        values["sender"] = email
        values["in_reply_to"] = values.get("message_id")
        extra["provider_message_id"] = _message_id(sg_message_id)
    if event_type != "replies":
        extra["email"] = email  # no column for it here: the scrub drops it and notes it
    if event_type != "clicks":
        extra["ip"] = ip  # on delivery events, SendGrid's sending IP: dropped (no column)
    extra["sendgrid_event"] = name
    extra.update(fields)
    dropped: list[str] = []
    return Record(
        number, raw, event_type,
        values={k: v for k, v in values.items() if v is not None},
        extra=vs.scrub({k: v for k, v in extra.items() if v is not None}, dropped),
    )


def _line_starts(text: str) -> list[int]:
    starts = [0]
    position = text.find("\n")
    while position != -1:
        starts.append(position + 1)
        position = text.find("\n", position + 1)
    return starts


def _read_document(number_of: Callable[[int], int], text: str, bad_lines: set[int]) -> Iterator[Record]:
    """Records of a JSON text holding arrays of events or events, in any layout."""
    position = 0
    length = len(text)

    def skip(pos: int, allow_comma: bool = False) -> int:
        while pos < length and (text[pos].isspace() or (allow_comma and text[pos] == ",")):
            pos += 1
        return pos

    position = skip(position)
    while position < length:
        in_array = text[position] == "["
        if in_array:
            position = skip(position + 1)
        while position < length:
            if in_array and text[position] == "]":
                position += 1
                break
            try:
                value, end = _DECODER.raw_decode(text, position)
            except ValueError as exc:
                line = number_of(exc.pos if hasattr(exc, "pos") else position)
                yield Record(number_of(position), text[position:], None, reason=(
                    f"line {line}: the JSON cannot be read from here on ({exc}); the events before it "
                    "were read, fix or re-export the rest of the file"
                ))
                return
            first, last = number_of(position), number_of(end - 1)
            raw = text[position:end]
            if bad_lines.intersection(range(first, last + 1)):
                yield Record(first, raw, None, reason=vs.invalid_utf8_reason(min(bad_lines & set(range(first, last + 1)))))
            elif isinstance(value, list):
                for element in value:
                    yield record_from_event(first, json.dumps(element, ensure_ascii=False), element)
            else:
                yield record_from_event(first, raw, value)
            position = skip(end, allow_comma=True)
            if not in_array:
                break
        position = skip(position, allow_comma=True)


def _is_document(sample: str) -> bool:
    """True when the file is one JSON document spread over lines (a pretty-printed array/object).

    Decided from the first lines, so that JSON-lines files are streamed and a malformed first
    line does not turn the whole file into one unreadable document.
    """
    lines = [line.strip() for line in sample.splitlines() if line.strip()]
    if not lines or not lines[0].startswith(("[", "{")):
        return False
    if not isinstance(vs.json_object(lines[0]), str):
        return False  # the first line is a whole JSON value: JSON lines (or one array per line)
    if lines[0] in ("[", "{", "[{", "[ {"):
        return True
    second = lines[1] if len(lines) > 1 else ""
    return second.startswith(('"', "{", "}", "]"))


def read(path: Path, event_type: str | None = None) -> Iterator[Record]:
    """One record per event, whatever the layout (array, pretty-printed array, JSON lines)."""
    if not _is_document(base.read_sample(path)):
        for number, line, raw in base.numbered_lines(path):
            if line is None:
                yield Record(number, raw, event_type, reason=vs.invalid_utf8_reason(number))
                continue
            value = vs.json_object(line)
            if isinstance(value, str):
                yield Record(number, line, event_type, reason=(
                    f"line {number}: not a JSON event ({value}); SendGrid files hold a JSON array or "
                    "one JSON event per line"
                ))
            elif isinstance(value, list):
                for element in value:
                    yield record_from_event(number, json.dumps(element, ensure_ascii=False), element)
            else:
                yield record_from_event(number, line, value)
        return
    with base.open_binary(path) as handle:
        data = handle.read()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    text = data.decode("utf-8", errors="replace")
    bad_lines = {number for number, line, _ in base.numbered_lines(path) if line is None}
    starts = _line_starts(text)

    def number_of(position: int) -> int:
        return bisect_right(starts, position)

    yield from _read_document(number_of, text, bad_lines)
