"""Vendor vocabulary → contract vocabulary: the one place where a vendor's status becomes ours.

Every reader of a vendor format (``ingest/readers/{kannel,twilio,smpp,sendgrid}.py``) asks this
module, so that the mapping is written, reviewed and documented once. A value no row names maps to
``unknown``: the record is kept (with the vendor's raw value in ``provider_status``), never dropped.

Contract statuses (``ingest.contract.DELIVERY_STATUSES``): accepted, delivered, undelivered, failed,
expired, rejected, unknown. Their meaning here:

* ``accepted``    — somebody upstream has the message and is still working on it (intermediate).
* ``delivered``   — it reached the handset / the recipient's mail server.
* ``undelivered`` — it left us and the provider, but the network or handset could not take it.
* ``failed``      — the provider could not send it at all, or it was withdrawn before sending.
* ``expired``     — its validity period ran out before delivery.
* ``rejected``    — refused outright by the provider, the SMSC or the receiving server.
* ``unknown``     — the vendor said something nobody has mapped yet (look at ``provider_status``).

The final status of a message is chosen by ``STATUS_PRECEDENCE`` (in the contract), never by
arrival order, so the intermediate ``accepted`` of an out-of-order callback cannot mask a result.

Kannel (``%d``, the dlr-mask bit of the callback)
===================================================

=====  =======================  ===========  ================================================
%d     Kannel's meaning         status       note
=====  =======================  ===========  ================================================
1      delivered to phone       delivered
2      not delivered to phone   undelivered  the SMSC had it, the handset never got it: the
                                             carrier's failure, not ours → ``undelivered``
                                             (``failed`` is kept for "could not be sent")
4      buffered at SMSC         accepted     intermediate
8      accepted by SMSC (ACK)   accepted     intermediate; may arrive *after* type 1
16     rejected by SMSC (NACK)  rejected     ``NACK/<code>/…`` in ``%A`` gives ``error_code``
other  —                        unknown
=====  =======================  ===========  ================================================

When ``%A`` holds an SMPP receipt (``id:… stat:… err:…``) its ``stat`` takes precedence over
``%d`` (it is the SMSC's own, finer word: ``%d=2`` with ``stat:EXPIRED`` is ``expired``); ``err``
becomes ``error_code`` and ``provider_status`` is the ``stat``; ``%d`` stays in
``extra["dlr_type"]``.

SMPP (``stat:`` of a deliver_sm receipt; also the full words and the message_state numbers)
============================================================================================

=======  ==================  ===========  ==========================================
stat     aliases             status       note
=======  ==================  ===========  ==========================================
SCHEDLD  SCHEDULED, 0        accepted     intermediate (SMPP 5.0)
ENROUTE  1                   accepted     intermediate
DELIVRD  DELIVERED, 2        delivered
EXPIRED  3                   expired
DELETED  4                   undelivered  deleted at the SMSC (cancel_sm / admin) before
                                          delivery: it never reached the handset
UNDELIV  UNDELIVERABLE, 5    undelivered
ACCEPTD  ACCEPTED, 6         accepted     "accepted on behalf of the subscriber": not a
                                          proof of delivery, so intermediate
UNKNOWN  7                   unknown
REJECTD  REJECTED, 8         rejected
SKIPPED  9                   undelivered  accepted but never transmitted (SMPP 5.0)
BUFFRED  BUFFERED            accepted     held at the SMSC for a later try (sent by SMSCs
                                          beyond the SMPP list; Kannel reads it too)
FAILED                       failed       the SMSC's own failure word
DELETD                       undelivered  short form of DELETED
EXPIRD                       expired      short form of EXPIRED
=======  ==================  ===========  ==========================================

Twilio (``MessageStatus`` / ``SmsStatus``)
==========================================

===================  ===========  ==============================================================
MessageStatus        status       note
===================  ===========  ==============================================================
queued, sending,     accepted     intermediate (Twilio sends no callback for the first one)
sent, accepted,
scheduled
delivered, read      delivered    ``read`` (WhatsApp/RCS) implies delivery
undelivered          undelivered  ``ErrorCode`` → ``error_code`` and ``extra["error_bucket"]``
failed               failed
canceled             failed       a scheduled message withdrawn before sending: terminal, never
                                  sent (``provider_status`` keeps ``canceled`` apart)
partially_delivered  undelivered  some segments/parts did not arrive: the message as a whole was
                                  not delivered, and a later per-segment ``delivered`` must not
                                  mask that (precedence keeps the worse result)
receiving, received  unknown      inbound messages, not deliveries: the Twilio reader yields them
                                  as ``replies`` records (text, keyword, sender), not deliveries
anything else        unknown
===================  ===========  ==============================================================

SendGrid (``event``; a bounce is looked up as ``bounce/<type>``)
================================================================

=================  ==============  ===========  ===================================================
event              event_type      status       note
=================  ==============  ===========  ===================================================
processed          deliveries      accepted     SendGrid has it
deferred           deliveries      accepted     temporary refusal, SendGrid retries (``attempt``)
delivered          deliveries      delivered    the receiving server took it
bounce/bounce      deliveries      undelivered  hard bounce; ``status`` (5.x.x) → ``error_code``
bounce/blocked     deliveries      rejected     the receiving server refused it (policy, spam)
bounce (no type)   deliveries      undelivered
dropped            deliveries      rejected     SendGrid itself refused to send (suppression list,
                                                invalid address): a provider refusal, like an
                                                SMSC NACK; ``reason`` stays in ``extra``
click              clicks          —            ``url``, ``useragent`` → ``user_agent``, ``ip``
                                                (hashed by the loader); bot detection is left to
                                                the loader/dbt (``is_bot`` not set)
open               clicks          —            an open is the fetch of SendGrid's tracking pixel,
                                                i.e. of a tracked link; the contract has no opens
                                                table, so it lands in ``clicks`` with
                                                ``link_id = "email_open"`` (``OPEN_LINK_ID``) and
                                                ``extra["sendgrid_event"] = "open"``. Funnels must
                                                exclude that link_id from clicks. With
                                                ``sg_machine_open`` true, ``is_bot = true`` and
                                                ``bot_reason = "apple_mpp"`` (Apple's privacy proxy
                                                opened it, not a person).
unsubscribe,       replies         —            keyword ``STOP``: the e-mail opt-out, in the same
group_unsubscribe                               table and word as an SMS STOP (``sender`` = the
                                                e-mail, hashed; ``in_reply_to`` = our message_id)
spamreport         replies         —            keyword ``SPAM``: an opt-out *and* a complaint;
                                                consent must treat it like STOP (see
                                                ``ingest.keywords.OPT_OUT``)
group_resubscribe  replies         —            keyword ``START`` (opt back in)
anything else      deliveries      unknown      kept with ``provider_status`` = the event
=================  ==============  ===========  ===================================================

Twilio error codes → buckets (``error_bucket``; Twilio advises against logic on raw codes)
=========================================================================================

=====================  ===================
ErrorCode              bucket
=====================  ===================
21211                  invalid_number
21610                  unsubscribed
21614                  not_mobile
30003                  unreachable
30004                  blocked
30005                  unknown_handset
30006                  landline
30007                  spam_filtered
30008                  unknown
30024, 30032, 30034    sender_registration
anything else          unknown
=====================  ===================

Error codes that are all zeros (SMPP ``err:000``, Twilio ``0``) mean "no error" and are not
reported as ``error_code``.

Below the tables, the module also holds the few parsing helpers the four readers share (the
receiver's ``<receipt time> TAB <body>`` log lines, timestamp forms, form decoding, and the privacy
scrub that keeps phone numbers, e-mails and IPs out of ``extra``), so no reader imports another.
"""

from __future__ import annotations

import ipaddress
import json
import re
from datetime import datetime
from urllib.parse import parse_qsl

from ingest import keywords

UNKNOWN = "unknown"

KANNEL_DLR_TYPES: dict[str, str] = {
    "1": "delivered",
    "2": "undelivered",
    "4": "accepted",
    "8": "accepted",
    "16": "rejected",
}

SMPP_STATS: dict[str, str] = {
    "SCHEDLD": "accepted",
    "SCHEDULED": "accepted",
    "ENROUTE": "accepted",
    "DELIVRD": "delivered",
    "DELIVERED": "delivered",
    "EXPIRED": "expired",
    "DELETED": "undelivered",
    "UNDELIV": "undelivered",
    "UNDELIVERABLE": "undelivered",
    "ACCEPTD": "accepted",
    "ACCEPTED": "accepted",
    "UNKNOWN": "unknown",
    "REJECTD": "rejected",
    "REJECTED": "rejected",
    "SKIPPED": "undelivered",
    # beyond the SMPP 3.4 list, as SMSCs send them (Kannel's smsc_smpp.c reads BUFFRED too)
    "BUFFRED": "accepted",
    "BUFFERED": "accepted",
    "FAILED": "failed",
    "DELETD": "undelivered",
    "EXPIRD": "expired",
    # message_state values (SMPP 3.4 §5.2.28, 5.0 adds 0 = SCHEDULED)
    "0": "accepted",
    "1": "accepted",
    "2": "delivered",
    "3": "expired",
    "4": "undelivered",
    "5": "undelivered",
    "6": "accepted",
    "7": "unknown",
    "8": "rejected",
    "9": "undelivered",
}

TWILIO_STATUSES: dict[str, str] = {
    "queued": "accepted",
    "sending": "accepted",
    "sent": "accepted",
    "accepted": "accepted",
    "scheduled": "accepted",
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
    "canceled": "failed",
    "partially_delivered": "undelivered",
    "receiving": "unknown",
    "received": "unknown",
}

# Twilio statuses that describe an inbound message: the reader yields them as replies.
TWILIO_INBOUND = frozenset({"receiving", "received"})

SENDGRID_STATUSES: dict[str, str] = {
    "processed": "accepted",
    "deferred": "accepted",
    "delivered": "delivered",
    "bounce": "undelivered",
    "bounce/bounce": "undelivered",
    "bounce/blocked": "rejected",
    "dropped": "rejected",
}

# SendGrid events that are not delivery receipts: event → (event_type, reply keyword or None).
SENDGRID_ENGAGEMENT: dict[str, tuple[str, str | None]] = {
    "click": ("clicks", None),
    "open": ("clicks", None),
    "unsubscribe": ("replies", "STOP"),
    "group_unsubscribe": ("replies", "STOP"),
    "spamreport": ("replies", "SPAM"),
    "group_resubscribe": ("replies", "START"),
}

# The link_id an e-mail open (a fetch of the tracking pixel) carries in raw.clicks.
OPEN_LINK_ID = "email_open"
# bot_reason of an open that SendGrid flags with sg_machine_open (Apple Mail Privacy Protection).
MACHINE_OPEN_REASON = "apple_mpp"

STATUS_TABLES: dict[str, dict[str, str]] = {
    "kannel": KANNEL_DLR_TYPES,
    "smpp": SMPP_STATS,
    "twilio": TWILIO_STATUSES,
    "sendgrid": SENDGRID_STATUSES,
}

TWILIO_ERROR_BUCKETS: dict[str, str] = {
    "21211": "invalid_number",
    "21610": "unsubscribed",
    "21614": "not_mobile",
    "30003": "unreachable",
    "30004": "blocked",
    "30005": "unknown_handset",
    "30006": "landline",
    "30007": "spam_filtered",
    "30008": "unknown",
    "30024": "sender_registration",
    "30032": "sender_registration",
    "30034": "sender_registration",
}

ERROR_BUCKETS: dict[str, dict[str, str]] = {"twilio": TWILIO_ERROR_BUCKETS}


def _key(vendor: str, raw: str) -> str:
    value = raw.strip()
    if vendor == "smpp":
        return value.upper()
    if vendor in ("twilio", "sendgrid"):
        return value.lower()
    return value


def map_status(vendor: str, raw: str | None) -> str:
    """The contract status for a vendor's raw status value; ``unknown`` when nobody mapped it."""
    table = STATUS_TABLES.get(vendor.lower())
    if table is None:
        raise KeyError(f"no status table for vendor {vendor!r}; expected one of {', '.join(STATUS_TABLES)}")
    if raw is None:
        return UNKNOWN
    return table.get(_key(vendor.lower(), str(raw)), UNKNOWN)


def kannel_status(dlr_type: str | None, smpp_stat: str | None = None) -> str:
    """Kannel's status: the SMPP receipt's ``stat`` in ``%A`` when there is one, else ``%d``."""
    if smpp_stat:
        return map_status("smpp", smpp_stat)
    return map_status("kannel", dlr_type)


def sendgrid_status(event: str, bounce_type: str | None = None) -> str:
    """SendGrid's delivery status for ``event`` (a bounce is refined by its ``type``)."""
    event = event.strip().lower()
    if event == "bounce" and bounce_type:
        return map_status("sendgrid", f"bounce/{bounce_type.strip().lower()}")
    return map_status("sendgrid", event)


def error_code(raw: object) -> str | None:
    """A vendor error code as text; None when absent or all zeros (which means "no error")."""
    if raw is None:
        return None
    text = str(raw).strip()
    if not text or not text.strip("0"):
        return None
    return text


def error_bucket(vendor: str, code: object) -> str | None:
    """The bucket of a vendor error code (``unknown`` when unlisted); None when there is no code."""
    text = error_code(code)
    if text is None:
        return None
    return ERROR_BUCKETS.get(vendor.lower(), {}).get(text, UNKNOWN)


def reply_keyword(text: str | None) -> str | None:
    """The keyword of an inbound reply (``ingest.keywords``: an opt-out, opt-in or help word it
    says, even inside a short sentence, else its first word upper-cased)."""
    return keywords.keyword(text)


# ---------------------------------------------------------------------------------------------
# Helpers the four vendor readers share (how callbacks look once logged, times, privacy).
# They live here, next to the vocabulary, so that no reader imports another reader.
# ---------------------------------------------------------------------------------------------


_UNIX = re.compile(r"^\d{9,13}(?:\.\d+)?$")
_NAIVE_SPACE = re.compile(r"^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2})(:\d{2}(?:\.\d+)?)?$")


def or_receipt_time(occurred_at: str | None, received_at: str | None, extra: dict[str, object]) -> str | None:
    """The event time, falling back to the logged receipt time; when both exist the receipt time
    is kept in ``extra`` (it tells how late the callback arrived)."""
    if occurred_at is None:
        return received_at
    if received_at is not None:
        extra["received_at"] = received_at
    return occurred_at


def normalise_time(value: object) -> str | None:
    """A vendor timestamp as one of the loader's forms, or None when it is not a timestamp.

    Unix seconds stay a decimal string (milliseconds, 13 digits, are divided by 1000); ISO-8601
    with a zone becomes ISO with an offset (``Z`` → ``+00:00``); a naive date-time (ISO, or
    Kannel's ``YYYY-MM-DD hh:mm[:ss]``) becomes naive ISO for the loader's ``--timezone``.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        value = repr(value) if isinstance(value, float) else str(value)
    text = str(value).strip()
    if not text:
        return None
    if _UNIX.match(text):
        whole = text.split(".")[0]
        if len(whole) == 13:
            return f"{int(whole) / 1000:.3f}".rstrip("0").rstrip(".")
        return text
    naive = _NAIVE_SPACE.match(text)
    if naive:
        day, hm, sec = naive.groups()
        try:
            return datetime.fromisoformat(f"{day}T{hm}{sec or ':00'}").isoformat()
        except ValueError:
            return None
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None  # a date without a time, or an odd form: not an instant
    return parsed.isoformat()


def split_received_at(line: str) -> tuple[str | None, str]:
    """Split ``<receipt time> TAB <body>`` as the receiver logs callbacks; (None, line) otherwise."""
    head, sep, rest = line.partition("\t")
    if sep:
        when = normalise_time(head)
        if when is not None:
            return when, rest.strip()
    return None, line.strip()


_REQUEST_LINE = re.compile(r"^(?:GET|POST|HEAD|PUT)\s+(\S+)(?:\s+HTTP/\d(?:\.\d)?)?$", re.IGNORECASE)


def query_part(body: str) -> str | None:
    """The query string of a logged request line or URL (``GET /dlr?a=b HTTP/1.1``), else None."""
    match = _REQUEST_LINE.match(body)
    target = match.group(1) if match else body
    if match or target.startswith(("/", "http://", "https://")):
        return target.partition("?")[2]
    return None


def parse_form(body: str) -> tuple[dict[str, str], str | None]:
    """Decode ``a=b&c=d`` (``+`` and ``%xx``, UTF-8). Returns (fields, note).

    The first value of a repeated key wins. When the percent-encoded bytes are not UTF-8 they are
    read as Latin-1 and ``note`` says so (it goes to ``extra["decoding"]``).
    """
    note = None
    try:
        pairs = parse_qsl(body, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        pairs = parse_qsl(body, keep_blank_values=True, encoding="latin-1")
        note = "percent-encoded bytes were not UTF-8; read as Latin-1"
    fields: dict[str, str] = {}
    for key, value in pairs:
        fields.setdefault(key, value)
    return fields, note


def looks_like_form(body: str) -> bool:
    """True for ``key=value&...`` with no raw white space (how a form body is logged)."""
    return bool(body) and "=" in body and not any(ch.isspace() for ch in body) and not body.startswith(("{", "["))


def as_text(value: object) -> str | None:
    """A JSON value as the text a ``Record.values`` entry holds."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    text = str(value)
    return text if text.strip() else None


def json_object(body: str) -> object:
    """``json.loads`` that returns a ValueError's message instead of raising it (as ``str``)."""
    try:
        return json.loads(body)
    except ValueError as exc:
        return f"{exc}"
    except RecursionError:
        return "nested too deeply to read"


_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")  # <id@host> is a Message-ID, not an address
_PHONE = re.compile(r"^(?:\+|00)[\d\s().-]{7,20}$")
_DIGITS = re.compile(r"^\d{7,15}$")


def looks_personal(value: object) -> bool:
    """True when a text is an e-mail address, an IP address or an international phone number."""
    if not isinstance(value, str):
        return False
    text = value.strip()
    for prefix in ("whatsapp:", "rcs:", "tel:", "mailto:"):
        if text.lower().startswith(prefix):
            text = text[len(prefix):]
    if _EMAIL.match(text) or _PHONE.match(text):
        return True
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def sender_id_for_extra(value: str | None) -> str | None:
    """Our own sender id (short code or alphanumeric) may be kept; a full phone number may not."""
    if value is None:
        return None
    text = value.strip()
    if not text or looks_personal(text) or _DIGITS.match(text.lstrip("+")):
        return None
    return text


# Keys that carry an address (phone number, e-mail, IP) in some vendor's payload.
ADDRESS_KEYS = frozenset(
    {
        "to", "from", "phone", "msisdn", "sender", "receiver", "recipient", "email", "ip",
        "source_addr", "destination_addr", "dest_addr", "to_number", "from_number",
    }
)


def scrub(extra: dict[str, object], dropped: list[str]) -> dict[str, object]:
    """Remove personal values (e-mail, IP, phone) from ``extra``, nested too; note their keys.

    An address-carrying key (``ADDRESS_KEYS``) survives only with a sender id (short code or
    alphanumeric); any other key is dropped when its value looks like an address. The dropped
    keys are listed in ``extra["pii_dropped"]`` so nothing disappears silently.
    """

    def clean(key: str, value: object) -> object:
        if isinstance(value, dict):
            return {k: clean(f"{key}.{k}", v) for k, v in value.items() if not _drop(f"{key}.{k}", v)}
        if isinstance(value, list):
            return [clean(key, v) for v in value if not _drop(key, v)]
        return value

    def _drop(key: str, value: object) -> bool:
        name = key.rsplit(".", 1)[-1].lower()
        if looks_personal(value) or (
            name in ADDRESS_KEYS and isinstance(value, str) and sender_id_for_extra(value) is None
        ):
            dropped.append(key)
            return True
        return False

    out = {k: clean(k, v) for k, v in extra.items() if not _drop(k, v)}
    if dropped:
        out["pii_dropped"] = sorted(set(dropped))
    return out


def country_of(number: str | None) -> str | None:
    """ISO country of an international number (``+…`` or ``00…``), or None when it cannot tell."""
    if not number:
        return None
    text = number.strip()
    for prefix in ("whatsapp:", "rcs:", "tel:"):
        if text.lower().startswith(prefix):
            text = text[len(prefix):]
    if text.startswith("00"):
        text = "+" + text[2:]
    if not text.startswith("+"):
        return None
    try:
        import phonenumbers
    except ImportError:  # pragma: no cover - phonenumbers is a project dependency
        return None
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.region_code_for_number(parsed)


def invalid_utf8_reason(line: int) -> str:
    return (
        f"invalid UTF-8 on line {line}: the line cannot be read as text; "
        "re-export the file as UTF-8 (the raw bytes are kept escaped)"
    )


def sniff_lines(sample: str, looks_mine, lines: int = 5) -> bool:
    """True when most of the first ``lines`` non-blank lines of ``sample`` satisfy ``looks_mine``."""
    seen = hits = 0
    for raw in sample.lstrip("\ufeff").splitlines():
        if not raw.strip():
            continue
        seen += 1
        hits += bool(looks_mine(raw.strip("\r")))
        if seen >= lines:
            break
    return seen > 0 and hits * 2 > seen


def is_contract_shaped(fields: object) -> bool:
    """A record already in the contract's shape (plain CSV/JSON lines), which no vendor claims."""
    return isinstance(fields, dict) and ("event_id" in fields or "occurred_at" in fields)
