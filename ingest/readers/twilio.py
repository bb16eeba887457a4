"""Twilio webhooks as the receiver logs them → ``deliveries``, ``replies`` and ``clicks`` records.

One webhook per line: the form-encoded body (``MessageSid=SM…&MessageStatus=delivered&…``) or a
JSON object, optionally prefixed by the receipt time and a TAB (JSON may carry ``received_at``).

* Status callbacks (``MessageStatus``/``SmsStatus``) → ``deliveries``. Twilio puts no time in the
  body: the event time is ``RawDlrDoneDate`` (the carrier's ``YYMMDDhhmm``, naive: the loader
  applies ``--timezone``) when present, else the logged receipt time, else the line gets a reason.
  ``To`` (the recipient) gives ``country`` and is dropped; ``From`` is kept only when it is a short
  code or an alphanumeric sender id. ``ErrorCode`` → ``error_code`` and ``extra["error_bucket"]``.
* Inbound messages (``SmsStatus=received``/``receiving``) → ``replies`` (``Body`` → text and
  keyword — Twilio's ``OptOutType`` wins when present —, ``From`` → sender).
* Link-shortening clicks (``message_sid``, ``link``, ``click_time``, ``user_agent``…; flat or in an
  Event Streams CloudEvent, whose ``id`` becomes ``event_id``; a JSON array of them is read element
  by element) → ``clicks``. ``link`` → url; our own ``message_id``/``user_id``/``campaign_id`` are
  taken from the link's query string; ``message_sid`` → provider_message_id, through which the
  loader finds the send (message, user, campaign) when the link carried none of ours; ``to`` is
  dropped (clicks keep no number). Bot flags are left to the loader.

Unknown fields are kept in ``extra``; status mapping: ``ingest.vendor_statuses``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from ingest import vendor_statuses as vs
from ingest.contract import Record
from ingest.readers import base, smpp

FORMAT = "twilio"

STATUS_KEYS = ("MessageStatus", "SmsStatus")
SID_KEYS = ("MessageSid", "SmsMessageSid", "SmsSid")
RECEIVED_KEYS = ("received_at", "ReceivedAt", "logged_at")
OUR_KEYS = {"message_id": "message_id", "msgid": "message_id", "user_id": "user_id", "campaign_id": "campaign_id"}
NO_TIME = (
    "no event time: Twilio callbacks carry none; log the receipt time "
    "(prefix the line with it and a TAB, or add a received_at key)"
)


def _pop(fields: dict[str, object], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        if key in fields:
            value = vs.as_text(fields[key])
            if value is not None:
                del fields[key]
                return value
    return None


def _channel(address: str | None) -> tuple[str | None, str | None]:
    """(contract channel, Twilio channel prefix) of a ``To``/``From`` such as ``whatsapp:+1…``."""
    if address and ":" in address:
        prefix = address.split(":", 1)[0].lower()
        return (prefix if prefix in ("sms", "rcs") else None), prefix
    return "sms", None


def _address(value: str | None) -> str | None:
    if value and ":" in value:
        return value.split(":", 1)[1]
    return value


def parse_line(text: str) -> tuple[str | None, list[dict[str, object]] | None, str | None]:
    """(receipt time, payload objects, reason) of one logged webhook line."""
    received_at, body = vs.split_received_at(text)
    if body.startswith(("{", "[")):
        obj = vs.json_object(body)
        if isinstance(obj, str):
            return received_at, None, f"not a Twilio callback: the JSON cannot be read ({obj})"
        items = obj if isinstance(obj, list) else [obj]
        if not items or not all(isinstance(item, dict) for item in items):
            return received_at, None, "not a Twilio callback: expected a JSON object (or an array of objects)"
        return received_at, [dict(item) for item in items], None
    query = vs.query_part(body)
    if query is None:
        query = body
    if not vs.looks_like_form(query):
        return received_at, None, (
            "not a Twilio callback: expected the form-encoded body (MessageSid=…&MessageStatus=…) "
            "or a JSON object"
        )
    form, _ = vs.parse_form(query)
    return received_at, [dict(form)], None


def _is_click(fields: dict[str, object]) -> bool:
    return "click_time" in fields or ("message_sid" in fields and ("link" in fields or "shortened_link" in fields))


def _unwrap(item: dict[str, object]) -> tuple[dict[str, object], dict[str, object] | None]:
    """(payload, CloudEvents envelope or None)."""
    if "specversion" in item and isinstance(item.get("data"), dict):
        envelope = {k: v for k, v in item.items() if k != "data"}
        return dict(item["data"]), envelope
    return item, None


def looks_like_twilio(line: str) -> bool:
    _, items, reason = parse_line(line)
    if reason or not items:
        return False
    fields, envelope = _unwrap(items[0])
    if vs.is_contract_shaped(fields):
        return False
    if envelope is not None and str(envelope.get("type", "")).startswith("com.twilio"):
        return True
    return bool({"MessageSid", "SmsSid", "SmsMessageSid", "AccountSid"} & fields.keys()) or _is_click(fields)


def sniff(sample: str) -> bool:
    return vs.sniff_lines(sample, looks_like_twilio)


def _finish(number: int, raw: str, event_type: str, values: dict[str, str | None], extra: dict[str, object]) -> Record:
    dropped: list[str] = []
    return Record(
        number, raw, event_type,
        values={k: v for k, v in values.items() if v is not None},
        extra=vs.scrub(extra, dropped),
    )


def _our_ids(fields: dict[str, object], values: dict[str, str | None]) -> None:
    for key, name in OUR_KEYS.items():
        value = _pop(fields, (key,))
        if value is not None:
            values.setdefault(name, value)


def _status(number: int, raw: str, received_at: str | None, fields: dict[str, object]) -> Record:
    status_raw = _pop(fields, ("MessageStatus",)) or vs.as_text(fields.get("SmsStatus"))
    if status_raw and status_raw.strip().lower() in vs.TWILIO_INBOUND:
        return _inbound(number, raw, received_at, fields, status_raw)
    sid = _pop(fields, ("MessageSid",)) or vs.as_text(fields.get("SmsSid") or fields.get("SmsMessageSid"))
    if not sid:
        return Record(number, raw, "deliveries", reason=(
            f"line {number}: Twilio status callback without MessageSid/SmsSid: it cannot be tied "
            "to a message; check that the receiver logs the whole body"
        ))
    to = vs.as_text(fields.get("To"))
    channel, prefix = _channel(to)
    values: dict[str, str | None] = {
        "provider": "twilio",
        "provider_message_id": sid,
        "status": vs.map_status("twilio", status_raw),
        "provider_status": status_raw,
        "channel": channel,
        "country": vs.country_of(_address(to)),
    }
    extra: dict[str, object] = {}
    if prefix:
        extra["twilio_channel"] = prefix
    code = _pop(fields, ("ErrorCode",))
    values["error_code"] = vs.error_code(code)
    if values["error_code"]:
        extra["error_bucket"] = vs.error_bucket("twilio", values["error_code"])
    elif code is not None:
        extra["ErrorCode"] = code
    _our_ids(fields, values)
    done = _pop(fields, ("RawDlrDoneDate",))
    occurred_at = smpp.done_date_iso(done)
    if done is not None and occurred_at is None:
        extra["RawDlrDoneDate"] = done
    occurred_at = vs.or_receipt_time(occurred_at, received_at, extra)
    if occurred_at is None:
        return Record(number, raw, "deliveries", reason=f"line {number}: {NO_TIME}")
    values["occurred_at"] = occurred_at
    extra.update(fields)
    return _finish(number, raw, "deliveries", values, extra)


def _inbound(number: int, raw: str, received_at: str | None, fields: dict[str, object], status_raw: str) -> Record:
    sender = vs.as_text(fields.pop("From", None))
    channel, prefix = _channel(sender)
    body = _pop(fields, ("Body",))
    opt_out = _pop(fields, ("OptOutType",))
    values: dict[str, str | None] = {
        "text": body,
        "keyword": opt_out.strip().upper() if opt_out else vs.reply_keyword(body),
        "sender": _address(sender),
        "channel": channel,
    }
    extra: dict[str, object] = {"provider": "twilio", "provider_status": status_raw}
    if opt_out:
        extra["OptOutType"] = opt_out
    if prefix:
        extra["twilio_channel"] = prefix
    fields.pop("MessageStatus", None)
    _our_ids(fields, values)
    if received_at is None:
        return Record(number, raw, "replies", reason=f"line {number}: {NO_TIME}")
    values["occurred_at"] = received_at
    extra.update(fields)
    return _finish(number, raw, "replies", values, extra)


def _click(number: int, raw: str, received_at: str | None, fields: dict[str, object],
           envelope: dict[str, object] | None) -> Record:
    values: dict[str, str | None] = {"channel": "sms"}
    extra: dict[str, object] = {"provider": "twilio"}
    link = _pop(fields, ("link",))
    values["url"] = link
    values["provider_message_id"] = _pop(fields, ("message_sid", "sms_sid", "MessageSid"))  # matched to the send
    values["user_agent"] = _pop(fields, ("user_agent",))
    _our_ids(fields, values)
    if link:
        query, _ = vs.parse_form(urlsplit(link).query)
        for key, name in OUR_KEYS.items():
            if query.get(key):
                values.setdefault(name, query[key])
    if envelope is not None:
        values["event_id"] = vs.as_text(envelope.get("id"))
        extra["cloudevent"] = envelope
    click_time = _pop(fields, ("click_time",))
    occurred_at = vs.normalise_time(click_time)
    if click_time is not None and occurred_at is None:
        extra["click_time"] = click_time
    if occurred_at is None and envelope is not None:
        occurred_at = vs.normalise_time(envelope.get("time"))
    occurred_at = vs.or_receipt_time(occurred_at, received_at, extra)
    if occurred_at is None:
        return Record(number, raw, "clicks", reason=(
            f"line {number}: Twilio click without a usable click_time; log the receipt time "
            "(prefix the line with it and a TAB, or add a received_at key)"
        ))
    values["occurred_at"] = occurred_at
    extra.update(fields)
    return _finish(number, raw, "clicks", values, extra)


def records_from_line(number: int, text: str) -> Iterator[Record]:
    received_at, items, reason = parse_line(text)
    if reason or items is None:
        yield Record(number, text, None, reason=f"line {number}: {reason}")
        return
    for item in items:
        raw = text if len(items) == 1 else vs.as_text(item) or ""
        fields, envelope = _unwrap(item)
        logged = received_at or vs.normalise_time(_pop(fields, RECEIVED_KEYS))
        if vs.is_contract_shaped(fields):
            yield Record(number, raw, None, reason=(
                f"line {number}: this is a contract-shaped record (event_id/occurred_at), not a "
                "Twilio callback: load the file with the csv/jsonl reader"
            ))
        elif _is_click(fields):
            yield _click(number, raw, logged, fields, envelope)
        elif any(k in fields for k in STATUS_KEYS):
            yield _status(number, raw, logged, fields)
        else:
            yield Record(number, raw, None, reason=(
                f"line {number}: not a Twilio callback: no MessageStatus/SmsStatus (status callback "
                "or inbound message) and no click_time/message_sid (link click)"
            ))


def read(path: Path, event_type: str | None = None) -> Iterator[Record]:
    """Records per non-blank line of ``path``; the payload decides the event type."""
    for number, text, raw in base.numbered_lines(path):
        if text is None:
            yield Record(number, raw, event_type, reason=vs.invalid_utf8_reason(number))
            continue
        yield from records_from_line(number, text)
