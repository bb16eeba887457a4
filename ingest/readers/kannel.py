"""Kannel callbacks as the receiver logs them → ``deliveries`` (DLR) and ``replies`` (MO) records.

One callback per line, in any of these shapes (each optionally prefixed by the receipt time and
a TAB, ``2026-10-01T10:00:03Z<TAB>type=1&…``):

* the dlr-url's query string: ``type=1&smsc=smsc-a&id=…&ts=…&to=%2B1202…&message_id=m-1``;
* a request line: ``GET /dlr?type=1&… HTTP/1.1`` (or a full URL);
* a JSON object with the same keys.

Keys understood (the names operators commonly give Kannel's escape codes in the dlr-url):
``type``/``dlr`` (%d) · ``answer``/``reply`` (%A) · ``ts``/``time`` (%T) · ``to``/``phone``
(%p, the recipient: used for ``country`` then dropped — deliveries keep no number) · ``from``
(%P, kept only when it is a short code or an alphanumeric sender id) · ``smsc`` (%i →
``provider``) · ``id``/``kid`` (%I → ``provider_message_id``) · our own ``message_id``/``msgid``,
``user_id``, ``campaign_id``. Every other key is kept in ``extra``.

A line without ``type`` but with ``text`` is an inbound message (sms-service get-url with
``from=%p&to=%P&text=%a&time=%t&keyword=%k``) and becomes a ``replies`` record.

Bearerbox's access log in its default ``access-log-format`` (``gw/bb_alog.c``: ``TIME EVENT
[SMSC:%i] [SVC:%n] [ACT:%A] [BINF:%B] [FID:%F] [META:%D] [from:%p] [to:%P]
[flags:%m:%c:%M:%C:%d] [msg:%L:%b] [udh:%U:%u]``; FID and META are absent before Kannel 1.5) is
read too: ``Receive DLR`` → a delivery report (type = the flags' last field, answer = the message
text, provider id = FID, else the SMPP receipt's id), ``Receive SMS`` → an inbound message. The
time is the log's, local to the gateway unless ``access-log-time = gmt``: give ``--timezone``.
Text logged as hex (coding 1, 8-bit, or 2, UCS-2) is decoded when it is UCS-2. Other events
(``Sent SMS``, ``Failed Send SMS``, ``DLR rerouted``…) are quarantined with their reason (sends
come from the outbox or a sends file); ``Log begins``/``Log ends`` markers are not records.

Status mapping: see ``ingest.vendor_statuses`` (an SMPP receipt in ``%A`` wins over ``%d``).
Event time: ``%T``; else the logged receipt time; else the receipt's done date; else a reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from ingest import vendor_statuses as vs
from ingest.contract import Record
from ingest.readers import base, smpp

FORMAT = "kannel"

TYPE_KEYS = ("type", "dlr", "dlr_type", "dlr-type", "dlrtype", "status")  # status=%d: the user guide's own example
ANSWER_KEYS = ("answer", "reply", "smsc_answer", "smsc_reply", "dlr_answer")
TIME_KEYS = ("ts", "time", "timestamp")
RECEIVED_KEYS = ("received_at", "logged_at")
RECIPIENT_KEYS = ("to", "phone", "msisdn", "receiver", "recipient")
OUR_SENDER_KEYS = ("from", "sender")
SMSC_KEYS = ("smsc", "smsc_id", "smsc-id", "smscid")
ID_KEYS = ("id", "kid", "kannel_id", "dlr_id")
OUR_KEYS = {"message_id": "message_id", "msgid": "message_id", "msg_id": "message_id",
            "user_id": "user_id", "campaign_id": "campaign_id"}

MO_TEXT_KEYS = ("text", "msg", "message", "body")
MO_SENDER_KEYS = ("from", "sender", "phone", "msisdn")
MO_RECEIVER_KEYS = ("to", "receiver")
MO_KEYWORD_KEYS = ("keyword",)

ACCESS_LINE = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (?P<event>[A-Za-z][A-Za-z ]*?) \[SMSC:(?P<smsc>[^\]]*)\] "
    r"\[SVC:(?P<service>[^\]]*)\] \[ACT:(?P<account>[^\]]*)\] \[BINF:(?P<binfo>[^\]]*)\] "
    r"(?:\[FID:(?P<fid>[^\]]*)\] )?(?:\[META:(?P<meta>[^\]]*)\] )?\[from:(?P<sender>[^\]]*)\] "
    r"\[to:(?P<receiver>[^\]]*)\] \[flags:(?P<flags>[-\d:]*)\] \[msg:(?P<length>\d+):(?P<text>.*)\] "
    r"\[udh:\d+:[0-9A-Fa-f]*\]$")
ACCESS_MARKER = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d Log (?:begins|ends)\s*$")
_NACK = re.compile(r"^NACK/(0x[0-9A-Fa-f]+|\d+)?(?:/|$)")
_TWILIO_KEYS = {"MessageSid", "SmsSid", "AccountSid", "message_sid", "MessageStatus", "SmsStatus"}


def _pop(fields: dict[str, object], keys: tuple[str, ...]) -> str | None:
    """The first present, non-empty value among ``keys`` (as text); the key is removed."""
    for key in keys:
        if key in fields:
            value = vs.as_text(fields[key])
            if value is not None:
                del fields[key]
                return value
    return None


def parse_line(text: str) -> tuple[str | None, dict[str, object] | None, str | None, str | None]:
    """(receipt time, fields, decoding note, reason) for one logged callback line."""
    received_at, body = vs.split_received_at(text)
    if body.startswith("{"):
        obj = vs.json_object(body)
        if not isinstance(obj, dict):
            detail = obj if isinstance(obj, str) else f"a JSON {type(obj).__name__}"
            return received_at, None, None, f"not a Kannel callback: the JSON object cannot be read ({detail})"
        fields: dict[str, object] = dict(obj)
        logged = _pop(fields, RECEIVED_KEYS)
        return received_at or vs.normalise_time(logged), fields, None, None
    query = vs.query_part(body)
    if query is None:
        query = body[1:] if body.startswith("?") else body
    if not vs.looks_like_form(query):
        return received_at, None, None, (
            "not a Kannel callback: expected the dlr-url's query string (type=…&…), "
            "a logged request line (GET /dlr?… HTTP/1.1) or a JSON object"
        )
    form, note = vs.parse_form(query)
    return received_at, dict(form), note, None


def _kind(fields: dict[str, object]) -> str | None:
    if any(k in fields for k in TYPE_KEYS):
        return "deliveries"
    if any(k in fields for k in MO_TEXT_KEYS):
        return "replies"
    return None


def looks_like_kannel(line: str) -> bool:
    if ACCESS_LINE.match(line) or ACCESS_MARKER.match(line):
        return True
    _, fields, _, reason = parse_line(line)
    if reason or not fields or vs.is_contract_shaped(fields) or _TWILIO_KEYS & fields.keys():
        return False
    dlr_type = next((vs.as_text(fields[k]) for k in TYPE_KEYS if k in fields), None)
    if dlr_type is not None:
        return dlr_type.strip().isdigit() and any(
            k in fields for k in SMSC_KEYS + ID_KEYS + ANSWER_KEYS + TIME_KEYS + RECIPIENT_KEYS + tuple(OUR_KEYS)
        )
    if any(k in fields for k in MO_TEXT_KEYS):
        return any(k in fields for k in SMSC_KEYS + MO_KEYWORD_KEYS + MO_SENDER_KEYS)
    return False


def sniff(sample: str) -> bool:
    return vs.sniff_lines(sample, looks_like_kannel)


NO_ID = ("no message id: the callback has neither Kannel's id (%I, e.g. id=%I) nor your own message_id/msgid "
         "parameter; add them to the dlr-url")


def _dlr(number: int, text: str, received_at: str | None, fields: dict[str, object], no_id: str = NO_ID) -> Record:
    """A delivery report; ``no_id`` is the reason given when nothing names the message."""
    values: dict[str, str | None] = {"channel": "sms"}
    extra: dict[str, object] = {}
    dlr_type = _pop(fields, TYPE_KEYS)
    answer_key = next((k for k in ANSWER_KEYS if vs.as_text(fields.get(k)) is not None), None)
    answer = vs.as_text(fields[answer_key]) if answer_key else None  # kept in extra as logged
    receipt = smpp.parse_receipt(answer) if answer else None
    if receipt is not None and not receipt.get("stat"):
        receipt = None
    values["status"] = vs.kannel_status(dlr_type, receipt.get("stat") if receipt else None)
    extra["dlr_type"] = dlr_type
    kannel_id = _pop(fields, ID_KEYS)
    if receipt is not None:
        receipt_values, receipt_extra = smpp.receipt_values(receipt)
        values["provider_status"] = receipt_values["provider_status"]
        values["error_code"] = receipt_values["error_code"]
        extra["receipt"] = receipt_extra
        if kannel_id and receipt_values["provider_message_id"]:
            extra["smsc_message_id"] = receipt_values["provider_message_id"]
        kannel_id = kannel_id or receipt_values["provider_message_id"]
    else:
        values["provider_status"] = dlr_type
        nack = _NACK.match(answer or "")
        if nack and nack.group(1):
            values["error_code"] = vs.error_code(nack.group(1))
    values["provider_message_id"] = kannel_id
    values["provider"] = _pop(fields, SMSC_KEYS) or "kannel"
    for key, name in OUR_KEYS.items():
        value = _pop(fields, (key,))
        if value is not None:
            values.setdefault(name, value)
    recipient = next((vs.as_text(fields[k]) for k in RECIPIENT_KEYS if vs.as_text(fields.get(k))), None)
    values["country"] = vs.country_of(recipient)
    if not values.get("provider_message_id") and not values.get("message_id"):
        return Record(number, text, "deliveries", reason=f"line {number}: {no_id}")
    callback_time = _pop(fields, TIME_KEYS)
    occurred_at = vs.normalise_time(callback_time)
    if callback_time is not None and occurred_at is None:
        extra["time_unreadable"] = callback_time
    occurred_at = vs.or_receipt_time(occurred_at, received_at, extra)
    if occurred_at is None and receipt is not None:
        occurred_at = smpp.done_date_iso(receipt.get("done_date"))
    if occurred_at is None:
        return Record(number, text, "deliveries", reason=(
            f"line {number}: no event time: add ts=%T to the dlr-url, or log the receipt time "
            "before each callback (time, TAB, callback)"
        ))
    values["occurred_at"] = occurred_at
    extra.update(fields)
    dropped: list[str] = []
    return Record(
        number, text, "deliveries",
        values={k: v for k, v in values.items() if v is not None},
        extra=vs.scrub(extra, dropped),
    )


def _mo(number: int, text: str, received_at: str | None, fields: dict[str, object]) -> Record:
    values: dict[str, str | None] = {"channel": "sms"}
    extra: dict[str, object] = {}
    message = _pop(fields, MO_TEXT_KEYS)
    values["text"] = message
    values["keyword"] = (_pop(fields, MO_KEYWORD_KEYS) or "").strip().upper() or vs.reply_keyword(message)
    values["sender"] = _pop(fields, MO_SENDER_KEYS)
    smsc = _pop(fields, SMSC_KEYS)
    if smsc:
        extra["smsc"] = smsc
    for key, name in OUR_KEYS.items():
        value = _pop(fields, (key,))
        if value is not None:
            values.setdefault(name, value)
    sent_time = _pop(fields, TIME_KEYS + ("t",))
    occurred_at = vs.normalise_time(sent_time)
    if sent_time is not None and occurred_at is None:
        extra["time_unreadable"] = sent_time
    occurred_at = vs.or_receipt_time(occurred_at, received_at, extra)
    if occurred_at is None:
        return Record(number, text, "replies", reason=(
            f"line {number}: no event time: add time=%t to the sms-service get-url, or log the "
            "receipt time before each line (time, TAB, callback)"
        ))
    values["occurred_at"] = occurred_at
    extra.update(fields)
    dropped: list[str] = []
    return Record(
        number, text, "replies",
        values={k: v for k, v in values.items() if v is not None},
        extra=vs.scrub(extra, dropped),
    )


def _access_text(text: str, flags: list[str]) -> str:
    """The logged message text: Kannel writes 8-bit and UCS-2 texts as hex; UCS-2 is decoded."""
    coding = flags[1] if len(flags) > 1 else ""
    if coding == "2" and re.fullmatch(r"(?:[0-9A-Fa-f]{4})+", text):
        return bytes.fromhex(text).decode("utf-16-be", errors="replace")
    return text


def _access_record(number: int, text: str, line: re.Match) -> Record:
    """A record for one line of bearerbox's access log."""
    event = line["event"]
    flags = line["flags"].split(":")
    if event == "Receive DLR":
        fields: dict[str, object] = {"type": flags[-1] if flags and flags[-1].lstrip("-").isdigit() else None,
                                     "answer": _access_text(line["text"], flags), "ts": line["time"],
                                     "smsc": line["smsc"], "id": line["fid"], "to": line["receiver"]}
        extra = {"service": line["service"], "account": line["account"], "meta": line["meta"]}
        if fields["type"] is None or fields["type"] == "-1":
            return Record(number, text, "deliveries", reason=(
                f"line {number}: a Receive DLR line whose flags ({line['flags']}) name no report type"))
        return _dlr(number, text, None, {**{k: v for k, v in fields.items() if v}, **{k: v for k, v in extra.items() if v}},
                    no_id=(f"Kannel logged this delivery report (type {fields['type']}) without the SMSC's message id "
                           "(FID empty, no SMPP receipt): it cannot be matched to its send; the dlr-url callback "
                           "(with your message_id) reports the same event"))
    if event == "Receive SMS":
        fields = {"text": _access_text(line["text"], flags), "from": line["sender"], "to": line["receiver"],
                  "time": line["time"], "smsc": line["smsc"]}
        if line["service"]:
            fields["service"] = line["service"]
        return _mo(number, text, None, fields)
    return Record(number, text, None, reason=(
        f"line {number}: Kannel's access log line '{event}' is neither a delivery report (Receive DLR) nor an "
        "inbound message (Receive SMS); sends are loaded from nudgelab's outbox or a sends file"))


def record_from_line(number: int, text: str, event_type: str | None = None) -> Record:
    line = ACCESS_LINE.match(text)
    if line:
        return _access_record(number, text, line)
    received_at, fields, note, reason = parse_line(text)
    if reason or fields is None:
        return Record(number, text, event_type, reason=f"line {number}: {reason}")
    if vs.is_contract_shaped(fields):
        return Record(number, text, event_type, reason=(
            f"line {number}: this is a contract-shaped record (event_id/occurred_at), not a Kannel "
            "callback: load the file with the csv/jsonl reader"
        ))
    kind = _kind(fields) or (event_type if event_type in ("deliveries", "replies") else None)
    if kind is None:
        return Record(number, text, event_type, reason=(
            f"line {number}: neither a delivery report (no type=%d) nor an inbound message "
            "(no text=%a): check the dlr-url / get-url parameters"
        ))
    record = _dlr(number, text, received_at, fields) if kind == "deliveries" else _mo(number, text, received_at, fields)
    if note and record.reason is None:
        record.extra["decoding"] = note
    return record


def read(path: Path, event_type: str | None = None) -> Iterator[Record]:
    """One record per non-blank line; the line's keys decide DLR (deliveries) or MO (replies).

    ``event_type`` only decides for a line that says neither (no ``type`` and no ``text``).
    """
    for number, text, raw in base.numbered_lines(path):
        if text is None:
            yield Record(number, raw, event_type, reason=vs.invalid_utf8_reason(number))
            continue
        if ACCESS_MARKER.match(text):
            continue   # the access log's "Log begins" / "Log ends": not records
        yield record_from_line(number, text, event_type)
