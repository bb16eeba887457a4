"""The receiver's ASGI app (Starlette): ``create_app(home)``.

Routes (fixed, so that gateways can be configured against them):

* ``GET|POST /kannel/dlr`` — Kannel's ``dlr-url`` callback. The query string (or a form body) is
  appended as received, behind its receipt time and a TAB, to ``spool/kannel/``, where
  ``ingest.readers.kannel`` reads it; a report naming one of our messages also settles that
  message's outcome in ops.sqlite (``outbox.record_receipt``, status from ingestion's one table).
* ``GET|HEAD /l/{code}`` — a tracked link: 302 to its deep link, and a ``clicks`` event with the
  user agent and the client's address (hashed by ingestion) to the spool. A HEAD request, or a
  fetch within ``NUDGELAB_RECEIVER_SOON_SECONDS`` (default 5) of the message's delivery report (or
  of its sending, before a report), is a machine's (link previews, carriers' scanners): recorded,
  flagged ``is_bot`` with its reason (``head_request``, ``soon_after_delivery``), so it is kept and
  not counted as a human click; ingestion adds the user-agent flags. An unknown or malformed code
  is 404. Clicks and replies are also noted in ops.sqlite (``responses``) so that the app can
  follow a run live.
* ``GET|POST /kannel/mo`` — an inbound message (Kannel's sms-service ``get-url`` with
  ``from=%p&to=%P&text=%a&time=%T&smsc=%i&id=%I``; ``%T``, not ``%t``, which has no zone),
  spooled with the user, the message it answers and the quick reply's meaning ("1" → confirm,
  from the choices stored with the message) for the ``replies`` reader. Its keyword
  (``ingest.keywords``, the one grammar) acts at once: an opt-out suppresses the number's user for
  SMS in ops.sqlite — the next ``dispatch run`` cancels what is queued for them — and the answer is
  one confirmation, which Kannel sends back as the reply; START/UNSTOP/YES lift a STOP; HELP/INFO
  answer with the help text; anything else gets an empty answer (no reply sent).
* ``POST /twilio/status`` and ``POST /twilio/inbound`` — Twilio's status callbacks and incoming
  messages (form bodies), appended as received to ``spool/twilio/`` for the Twilio reader; our
  ``message_id`` may ride in the callback URL's query and is kept. With
  ``NUDGELAB_TWILIO_AUTH_TOKEN`` set, ``X-Twilio-Signature`` must match (else 403, nothing kept).
  An incoming message's keyword acts as on ``/kannel/mo``; the answer is TwiML (the confirmation
  as a ``<Message>``, or an empty ``<Response/>``).
* ``POST /sendgrid/events`` — SendGrid's event webhook: a JSON array of events (up to 4 MiB: SendGrid
  batches), appended as one compact line to ``spool/sendgrid/`` for the SendGrid reader. With
  ``NUDGELAB_SENDGRID_PUBLIC_KEY`` set (the signed webhook's verification key), the ECDSA
  signature must match (else 403, nothing kept).
* ``POST /beacon`` — the landing page's dwell beacon, once per visit (``navigator.sendBeacon`` at
  ``pagehide``): JSON or a form with ``code`` (the tracked link's) or ``message_id``, ``seconds``
  (0–86,400) and optionally ``page`` and ``visit`` (a visit id: a beacon sent twice counts once).
  A ``dwells`` event goes to the spool; 204.
* ``GET /healthz``, and ``GET /openapi.json`` (this list as OpenAPI 3).

Everything a request could get wrong is a 4xx with a one-line reason: a query over 8 KiB (414), a
body over 64 KiB (413), bytes that are not UTF-8 (400), a callback without a report type (400),
unknown routes (404), other methods (405). The answer comes only after the line is fsync'd, so
a 2xx means durable; a crash loses nothing that was answered (the spool publishes a dead
receiver's open files).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sqlite3
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl, quote
from xml.sax.saxutils import escape

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.schemas import SchemaGenerator

from dispatch import outbox, suppressions
from dispatch.ops import connect, transaction
from dispatch.receiver import sendgrid_signature, twilio_signature
from dispatch.templates import replies
from ingest import hashing, keywords, vendor_statuses
from ingest.bots import agent_reason as bots_agent
from ingest.readers.kannel import TYPE_KEYS as DLR_TYPE_KEYS
from ingest.spool import LineAppender

MAX_QUERY = 8 * 1024
MAX_BODY = 64 * 1024
MAX_EVENTS_BODY = 4 * 1024 * 1024   # SendGrid posts batches of up to a thousand events
CODE = re.compile(r"^[A-Za-z0-9_-]{4,64}$")
ANSWERS = {
    "opt_out": "You will get no more messages from us. Reply START to undo.",
    "opt_in": "You are subscribed again. Reply STOP to unsubscribe.",
    "help": "Reminders from nudgelab. Reply STOP to unsubscribe, START to subscribe again.",
}


class BadRequest(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def _body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The request's body, at most ``limit`` bytes (else 413)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BadRequest(413, f"body over {limit:,} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise BadRequest(413, f"body over {limit:,} bytes")
    return b"".join(chunks)


def _text(raw: bytes) -> str:
    """Parameters as UTF-8 text on one line (else 400)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(400, "the request is not UTF-8") from exc
    if any(ch in text for ch in "\r\n\t\x00"):
        raise BadRequest(400, "control characters in the parameters")
    return text.strip()


async def _form_text(request: Request) -> str:
    """The callback's parameters as text: the query string, or a form body (bounded, UTF-8)."""
    raw_query: bytes = request.scope.get("query_string", b"")
    if len(raw_query) > MAX_QUERY:
        raise BadRequest(414, f"query string over {MAX_QUERY:,} bytes")
    body = await _body(request) if request.method == "POST" else b""
    return _text(body if body.strip() else raw_query)


async def _form_text_body(request: Request) -> str:
    """A form body (bounded, UTF-8), for the webhooks that post one."""
    return _text(await _body(request))


class Receiver:
    """The state behind the routes: the spool appenders and one ops.sqlite connection."""

    def __init__(self, home: Path, rotate_seconds: float = 5.0) -> None:
        self.home = home
        spool = home / "spool"
        self.kannel = LineAppender(spool / "kannel", max_seconds=rotate_seconds)
        self.twilio = LineAppender(spool / "twilio", max_seconds=rotate_seconds)
        self.sendgrid = LineAppender(spool / "sendgrid", max_seconds=rotate_seconds)
        self.events = LineAppender(spool, max_seconds=rotate_seconds, suffix=".jsonl")
        self.twilio_token = os.environ.get("NUDGELAB_TWILIO_AUTH_TOKEN") or None
        self.public_base = (os.environ.get("NUDGELAB_RECEIVER_URL") or "").rstrip("/") or None
        sendgrid_key = os.environ.get("NUDGELAB_SENDGRID_PUBLIC_KEY") or None
        self.sendgrid_key = sendgrid_signature.load_key(sendgrid_key) if sendgrid_key else None
        self.soon = float(os.environ.get("NUDGELAB_RECEIVER_SOON_SECONDS") or 5)
        self._ops: sqlite3.Connection | None = None
        self._ops_lock = threading.Lock()

    def ops(self) -> sqlite3.Connection:
        if self._ops is None:
            self._ops = connect(self.home / "ops.sqlite")
        return self._ops

    def report(self, line: str, message_id: str | None, status: str, provider_id: str | None) -> None:
        """A delivery report: durable in the spool first, then (ours) settling the message's outcome
        — one trip to a worker thread per callback."""
        self.kannel.append(line)
        if message_id:
            with self._ops_lock:
                outbox.record_receipt(self.ops(), message_id, status, provider_id, "kannel")

    def link(self, code: str) -> tuple | None:
        with self._ops_lock:
            return self.ops().execute(
                "SELECT l.message_id, l.link_id, l.url, m.user_id, m.campaign_id, m.channel FROM links l "
                "LEFT JOIN messages m USING (message_id) WHERE l.code = ?", [code]).fetchone()

    def too_soon(self, message_id: str, at: datetime) -> bool:
        """Whether a fetch at ``at`` comes within the soon window after the message's newest
        delivery report (or its sending, when no report came yet): no person reads and taps that fast."""
        with self._ops_lock:
            found = self.ops().execute(
                "SELECT coalesce((SELECT max(received_at) FROM receipts WHERE message_id = ?1 AND status = 'delivered'), "
                "(SELECT sent_at FROM messages WHERE message_id = ?1))", [message_id]).fetchone()
        if not found or not found[0]:
            return False
        reference = datetime.fromisoformat(found[0].replace("Z", "+00:00"))
        return 0 <= (at - reference).total_seconds() < self.soon

    def respond(self, message_id: str, kind: str, detail: str | None) -> None:
        """Note a click or a reply to one of our messages (the app's live view of a run)."""
        with self._ops_lock:
            ops = self.ops()
            with transaction(ops):
                ops.execute("INSERT INTO responses VALUES (?, ?, ?, ?)", [message_id, kind, _now(), detail])

    def click(self, event: dict, head: bool, at: datetime) -> None:
        """A tracked-link fetch, in one worker-thread trip: flagged when only the receiver can tell it
        is a machine's (a HEAD request, a fetch right after delivery), spooled, and noted for the
        live view with the user-agent flag too (ingestion sets that one from the same patterns)."""
        message_id = event["message_id"]
        reason = "head_request" if head else "soon_after_delivery" if self.too_soon(message_id, at) else None
        if reason:
            event.update(is_bot=True, bot_reason=reason)
        self.events.append(json.dumps(event, ensure_ascii=False))
        if message_id:
            reason = reason or bots_agent(event["user_agent"])
            self.respond(message_id, "bot_click" if reason else "click", reason)

    def inbound(self, phone: str, text: str) -> tuple[str | None, str | None, str | None, str]:
        """(user, the message answered, the quick reply's meaning, the answer text) for an inbound
        message; acts on its keyword. The message answered is the newest of the user's last five
        SMS whose quick replies the text matches ("1" → confirm), else simply the newest."""
        word = keywords.keyword(text)
        meaning = keywords.meaning(word)
        try:
            number = hashing.normalise_phone(phone)
        except hashing.HashError:
            return None, None, None, ANSWERS["help"] if meaning == "help" else ""
        with self._ops_lock:
            ops = self.ops()
            found = ops.execute("SELECT user_id FROM contacts WHERE phone = ?", [number]).fetchone()
            if found is None:
                return None, None, None, ANSWERS["help"] if meaning == "help" else ""
            user = found[0]
            recent = ops.execute("SELECT message_id, extra FROM messages WHERE user_id = ? AND channel IN ('sms', 'rcs') "
                                 "AND state = 'sent' ORDER BY sent_at DESC LIMIT 5", [user]).fetchall()
            answered, choice = (recent[0][0] if recent else None), None
            for message_id, extra in recent:
                offered = json.loads(extra).get("quick_replies") if extra else None
                picked = replies.match(text, offered) if offered else None
                if picked:
                    answered, choice = message_id, picked
                    break
            with transaction(ops):
                if meaning == "opt_out":
                    suppressions.suppress(ops, user, "sms", suppressions.STOP_REPLY, f"inbound {word}")
                elif meaning == "opt_in":
                    suppressions.lift_stop(ops, user, "sms")
                if answered:
                    ops.execute("INSERT INTO responses VALUES (?, 'reply', ?, ?)",
                                [answered, _now(), choice or meaning or word])
        return user, answered, choice, ANSWERS.get(meaning or "", "")

    def message(self, message_id: str) -> tuple | None:
        """(message, None, None, user, campaign, channel) of one of our messages, or None."""
        with self._ops_lock:
            return self.ops().execute("SELECT message_id, NULL, NULL, user_id, campaign_id, channel FROM messages "
                                      "WHERE message_id = ?", [message_id]).fetchone()

    def public_url(self, request: Request) -> str:
        """The URL Twilio called: the public base when configured, else the one received."""
        if self.public_base is None:
            return str(request.url)
        query = request.url.query
        return f"{self.public_base}{request.url.path}" + (f"?{query}" if query else "")

    def rotate(self) -> None:
        self.twilio.rotate_if_old()
        self.sendgrid.rotate_if_old()
        self.kannel.rotate_if_old()
        self.events.rotate_if_old()

    def close(self) -> None:
        self.twilio.close()
        self.sendgrid.close()
        self.kannel.close()
        self.events.close()
        if self._ops is not None:
            self._ops.close()


def create_app(home: Path, rotate_seconds: float = 5.0) -> Starlette:
    receiver = Receiver(home, rotate_seconds)

    async def kannel_dlr(request: Request) -> Response:
        """---
        summary: Kannel delivery report (dlr-url), spooled as received
        parameters:
          - {name: type, in: query, required: true, description: "Kannel's %d (1 delivered, 2 undelivered, 4 buffered, 8 accepted by the SMSC, 16 rejected); also dlr or status"}
          - {name: message_id, in: query, description: our message id (settles its outcome in ops.sqlite)}
          - {name: answer, in: query, description: "%A, the SMSC's answer (an SMPP receipt when there is one)"}
          - {name: ts, in: query, description: "%T, Unix time"}
          - {name: id, in: query, description: "%I, Kannel's id"}
        responses:
          200: {description: spooled (fsync'd)}
          400: {description: no report type, or not UTF-8}
          413: {description: body over 64 KiB}
          414: {description: query over 8 KiB}
        """
        text = await _form_text(request)
        fields = {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}
        kind = next((fields[k] for k in DLR_TYPE_KEYS if fields.get(k)), None)
        if kind is None:
            return PlainTextResponse("not a Kannel delivery report: no type (dlr-url needs type=%d)", status_code=400)
        await run_in_threadpool(receiver.report, f"{_now()}\t{text}", fields.get("message_id"),
                                vendor_statuses.kannel_status(kind, None), fields.get("id") or None)
        return PlainTextResponse("ok")

    async def kannel_mo(request: Request) -> Response:
        """---
        summary: Kannel inbound message (sms-service get-url); STOP, START and HELP act at once
        parameters:
          - {name: from, in: query, required: true, description: "%p, the sender's number"}
          - {name: text, in: query, required: true, description: "%a, the message"}
          - {name: to, in: query, description: "%P, our number"}
          - {name: time, in: query, description: "%T, Unix time"}
        responses:
          200: {description: "spooled; the body is the reply Kannel sends back (empty: none)"}
          400: {description: no sender or no text}
        """
        text = await _form_text(request)
        fields = {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}
        if not fields.get("from") or "text" not in fields:
            return PlainTextResponse("not a Kannel inbound message: it needs from=%p and text=%a", status_code=400)
        user, answered, choice, answer = await run_in_threadpool(receiver.inbound, fields["from"], fields["text"])
        ours = "".join(f"&{k}={quote(v)}" for k, v in (("user_id", user), ("message_id", answered),
                                                        ("reply_meaning", choice)) if v)
        await run_in_threadpool(receiver.kannel.append, f"{_now()}\t{text}{ours}")
        return PlainTextResponse(answer)

    async def twilio(request: Request, inbound: bool) -> Response:
        body = await _form_text_body(request)
        params = parse_qsl(body, keep_blank_values=True)
        if receiver.twilio_token:
            public = receiver.public_url(request)
            if not twilio_signature.valid(receiver.twilio_token, public, params, request.headers.get("x-twilio-signature")):
                return PlainTextResponse("X-Twilio-Signature does not match", status_code=403)
        fields = dict(params)
        if inbound and (not fields.get("From") or "Body" not in fields):
            return PlainTextResponse("not a Twilio incoming message: it needs From and Body", status_code=400)
        if not inbound and not (fields.get("MessageStatus") or fields.get("SmsStatus")):
            return PlainTextResponse("not a Twilio status callback: no MessageStatus", status_code=400)
        extra = [(k, v) for k, v in parse_qsl(request.url.query) if k in ("message_id", "user_id", "campaign_id")]
        answer = ""
        if inbound:
            user, answered, choice, answer = await run_in_threadpool(receiver.inbound, fields["From"], fields["Body"])
            extra += [(k, v) for k, v in (("user_id", user), ("message_id", answered), ("reply_meaning", choice)) if v]
        line = body + "".join(f"&{k}={quote(v)}" for k, v in extra if k not in fields)
        await run_in_threadpool(receiver.twilio.append, f"{_now()}\t{line}")
        if not inbound:
            return PlainTextResponse("ok")
        reply = f"<Message>{escape(answer)}</Message>" if answer else ""
        return Response(f'<?xml version="1.0" encoding="UTF-8"?><Response>{reply}</Response>',
                        media_type="application/xml")

    async def twilio_status(request: Request) -> Response:
        """---
        summary: Twilio status callback (form body), signature checked when NUDGELAB_TWILIO_AUTH_TOKEN is set
        responses:
          200: {description: spooled}
          400: {description: no MessageStatus}
          403: {description: X-Twilio-Signature does not match}
        """
        return await twilio(request, inbound=False)

    async def twilio_inbound(request: Request) -> Response:
        """---
        summary: Twilio incoming message (form body); answered with TwiML
        responses:
          200: {description: "spooled; TwiML with the confirmation, or an empty Response"}
          400: {description: no From or no Body}
          403: {description: X-Twilio-Signature does not match}
        """
        return await twilio(request, inbound=True)

    async def tracked_link(request: Request) -> Response:
        """---
        summary: Tracked link; 302 to the deep link and a click to the spool (HEAD is flagged as a machine's)
        parameters:
          - {name: code, in: path, required: true, description: the link code of one message and link}
        responses:
          302: {description: the deep link}
          404: {description: no such link}
        """
        code = request.path_params["code"]
        if not CODE.match(code):
            return PlainTextResponse("no such link", status_code=404)
        found = await run_in_threadpool(receiver.link, code)
        if found is None:
            return PlainTextResponse("no such link", status_code=404)
        message_id, link_id, url, user_id, campaign_id, channel = found
        at = datetime.now(timezone.utc)
        event = {"event_type": "clicks", "event_id": f"clk-{uuid.uuid4().hex}",
                 "occurred_at": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                 "message_id": message_id, "user_id": user_id, "campaign_id": campaign_id, "channel": channel,
                 "link_id": link_id, "url": url, "user_agent": request.headers.get("user-agent", "")[:500],
                 "ip": request.client.host if request.client else None}
        await run_in_threadpool(receiver.click, event, request.method == "HEAD", at)
        return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})

    async def sendgrid_events(request: Request) -> Response:
        """---
        summary: SendGrid event webhook (a JSON array of events), signature checked when NUDGELAB_SENDGRID_PUBLIC_KEY is set
        responses:
          200: {description: spooled}
          400: {description: not a JSON array of events, or not UTF-8}
          403: {description: the signed webhook's signature does not match}
          413: {description: body over 4 MiB}
        """
        body = await _body(request, MAX_EVENTS_BODY)
        if receiver.sendgrid_key is not None and not sendgrid_signature.valid(
                receiver.sendgrid_key, body, request.headers.get(sendgrid_signature.SIGNATURE_HEADER),
                request.headers.get(sendgrid_signature.TIMESTAMP_HEADER)):
            return PlainTextResponse("the event webhook's signature does not match", status_code=403)
        try:
            events = json.loads(body.decode("utf-8"))
        except UnicodeDecodeError:
            return PlainTextResponse("the request is not UTF-8", status_code=400)
        except ValueError as exc:
            return PlainTextResponse(f"not JSON: {exc}", status_code=400)
        if isinstance(events, dict):
            events = [events]
        if not isinstance(events, list) or not all(isinstance(e, dict) and "event" in e for e in events):
            return PlainTextResponse("SendGrid posts a JSON array of event objects, each with an 'event'",
                                     status_code=400)
        if events:
            await run_in_threadpool(receiver.sendgrid.append, json.dumps(events, ensure_ascii=False, separators=(",", ":")))
        return PlainTextResponse("ok")

    async def beacon(request: Request) -> Response:
        """---
        summary: Landing-page dwell beacon, once per visit
        requestBody:
          content:
            application/json:
              schema:
                type: object
                properties:
                  code: {type: string, description: the tracked link's code}
                  message_id: {type: string}
                  seconds: {type: number, minimum: 0, maximum: 86400}
                  page: {type: string}
                  visit: {type: string, description: a visit id (a beacon sent twice counts once)}
                required: [seconds]
        responses:
          204: {description: spooled}
          400: {description: no seconds, or neither code nor message_id}
          404: {description: no such message}
        """
        text = await _form_text(request)
        try:
            fields = json.loads(text) if text.startswith("{") else {k: v[0] for k, v in parse_qs(text).items()}
            seconds = float(fields.get("seconds"))
        except (ValueError, TypeError):
            return PlainTextResponse("a beacon needs seconds (a number) as JSON or a form", status_code=400)
        if not isinstance(fields, dict) or not 0 <= seconds <= 86400:
            return PlainTextResponse("seconds must be between 0 and 86400", status_code=400)
        code, message_id = str(fields.get("code") or ""), str(fields.get("message_id") or "")
        if code and CODE.match(code):
            found = await run_in_threadpool(receiver.link, code)
        elif message_id and CODE.match(message_id):
            found = await run_in_threadpool(receiver.message, message_id)
        else:
            return PlainTextResponse("a beacon needs the link's code or the message_id", status_code=400)
        if found is None:
            return PlainTextResponse("no such message", status_code=404)
        visit = str(fields.get("visit") or "")
        event = {"event_type": "dwells",
                 "event_id": f"dwl-{visit}" if visit and CODE.match(visit) else f"dwl-{uuid.uuid4().hex}",
                 "occurred_at": _now(), "message_id": found[0], "user_id": found[3], "campaign_id": found[4],
                 "channel": found[5], "page": str(fields.get("page") or "")[:500] or None, "dwell_seconds": seconds}
        await run_in_threadpool(receiver.events.append, json.dumps(event, ensure_ascii=False))
        return Response(status_code=204)

    async def healthz(request: Request) -> Response:
        """---
        summary: Liveness
        responses:
          200: {description: ok}
        """
        return JSONResponse({"ok": True})

    @contextlib.asynccontextmanager
    async def lifespan(app):
        async def rotate_forever():
            while True:
                await asyncio.sleep(min(1.0, rotate_seconds / 2))
                await run_in_threadpool(receiver.rotate)

        task = asyncio.create_task(rotate_forever())
        try:
            yield
        finally:
            task.cancel()
            receiver.close()

    routes = [Route("/kannel/dlr", kannel_dlr, methods=["GET", "POST"]),
              Route("/kannel/mo", kannel_mo, methods=["GET", "POST"]),
              Route("/twilio/status", twilio_status, methods=["POST"]),
              Route("/twilio/inbound", twilio_inbound, methods=["POST"]),
              Route("/sendgrid/events", sendgrid_events, methods=["POST"]),
              Route("/l/{code}", tracked_link, methods=["GET", "HEAD"]),
              Route("/beacon", beacon, methods=["POST"]),
              Route("/healthz", healthz, methods=["GET"])]
    schemas = SchemaGenerator({"openapi": "3.0.3", "info": {
        "title": "nudgelab receiver", "version": "1",
        "description": "Gateways' callbacks, inbound messages, tracked links and dwell beacons; every request is "
                       "spooled (fsync'd) before it is answered, and `nudgelab ingest --spool` lands it."}})

    async def openapi(request: Request) -> Response:
        return JSONResponse(schemas.get_schema(routes=request.app.routes))

    routes.append(Route("/openapi.json", openapi, methods=["GET"], include_in_schema=False))

    async def bad_request(request: Request, exc: BadRequest) -> Response:
        return PlainTextResponse(exc.reason, status_code=exc.status)

    return Starlette(routes=routes, lifespan=lifespan, exception_handlers={BadRequest: bad_request})
