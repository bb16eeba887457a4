"""Kannel's smsbox ``sendsms`` over HTTP, with delivery reports sent to the receiver.

Each message is one GET on a fresh loopback-cheap connection (no keep-alive: a reused connection
the gateway closed would make a send's outcome ambiguous). Parameters: ``username``, ``password``,
``from``, ``to``, ``text`` (UTF-8; ``coding=2`` for UCS-2 messages), ``dlr-mask=31`` (delivered,
not delivered, buffered, accepted by the SMSC, rejected) and a ``dlr-url`` on the receiver's
``/kannel/dlr`` route carrying our message id, with Kannel's escapes for the report type (``%d``),
the SMSC's answer (``%A``), the time (``%T``), the SMSC id (``%i``) and Kannel's id (``%I``) — the
keys ``ingest.readers.kannel`` reads. The recipient's number is not put in the callback.

Kannel answers 202 ``0: Accepted for delivery`` (or ``3: Queued for later delivery``); 4xx is a
refusal (authentication, a number it cannot route); 5xx and 503 mean it did not take the message.
A connection that fails before the request is written is safe to retry; one that fails after is
ambiguous. The sendsms-user must allow long messages (``max-messages`` ≥ 10 and
``concatenation = true``): see the README's Kannel section.

Environment: ``NUDGELAB_KANNEL_URL`` (e.g. ``http://127.0.0.1:13013/cgi-bin/sendsms``),
``NUDGELAB_KANNEL_USERNAME``, ``NUDGELAB_KANNEL_PASSWORD``, ``NUDGELAB_KANNEL_FROM`` (default
sender), ``NUDGELAB_KANNEL_SMSC`` (optional route), ``NUDGELAB_KANNEL_RATE`` (messages per second,
optional), ``NUDGELAB_KANNEL_TIMEOUT`` (seconds, default 10), ``NUDGELAB_RECEIVER_URL`` (the
receiver's base URL for delivery reports).
"""

from __future__ import annotations

import http.client
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from dispatch.providers.base import (Accepted, AmbiguousFailure, Outgoing, PermanentFailure,
                                     TemporaryFailure)

DLR_MASK = 31
DLR_ESCAPES = "type=%d&answer=%A&ts=%T&smsc=%i&id=%I"


def dlr_url(receiver: str, message_id: str) -> str:
    """The callback Kannel calls for each report of this message."""
    return f"{receiver.rstrip('/')}/kannel/dlr?message_id={message_id}&{DLR_ESCAPES}"


@dataclass
class KannelProvider:
    url: str
    username: str
    password: str
    sender: str | None = None
    receiver: str | None = None
    smsc: str | None = None
    timeout: float = 10.0
    rate_per_second: float | None = None
    name: str = "kannel"

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"NUDGELAB_KANNEL_URL {self.url!r} is not an http(s) URL of smsbox's sendsms")
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port or (443 if self._https else 80)
        self._path = parts.path or "/cgi-bin/sendsms"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "KannelProvider":
        rate = env.get("NUDGELAB_KANNEL_RATE")
        return cls(env["NUDGELAB_KANNEL_URL"], env.get("NUDGELAB_KANNEL_USERNAME", ""),
                   env.get("NUDGELAB_KANNEL_PASSWORD", ""), env.get("NUDGELAB_KANNEL_FROM") or None,
                   env.get("NUDGELAB_RECEIVER_URL") or None, env.get("NUDGELAB_KANNEL_SMSC") or None,
                   float(env.get("NUDGELAB_KANNEL_TIMEOUT", "10")), float(rate) if rate else None)

    def query(self, message: Outgoing) -> str:
        params = {"username": self.username, "password": self.password, "to": message.to, "text": message.body,
                  "charset": "UTF-8", "dlr-mask": str(DLR_MASK)}
        sender = message.extra.get("sender") or self.sender
        if sender:
            params["from"] = sender
        if message.encoding == "ucs2":
            params["coding"] = "2"
        if self.smsc:
            params["smsc"] = self.smsc
        if self.receiver:
            params["dlr-url"] = dlr_url(self.receiver, message.message_id)
        return urlencode(params)

    def send(self, message: Outgoing) -> Accepted:
        factory = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = factory(self._host, self._port, timeout=self.timeout)
        try:
            try:
                conn.connect()
                conn.request("GET", f"{self._path}?{self.query(message)}", headers={"Connection": "close"})
            except (OSError, http.client.HTTPException) as exc:  # the request did not get out
                raise TemporaryFailure(f"kannel at {self._host}:{self._port} unreachable ({type(exc).__name__}: {exc})") from exc
            try:
                response = conn.getresponse()
                text = response.read(4096).decode("utf-8", "replace").strip()
            except (OSError, socket.timeout, http.client.HTTPException) as exc:
                raise AmbiguousFailure(f"kannel took the request but gave no answer ({type(exc).__name__}: {exc}); "
                                       "it may have been sent") from exc
        finally:
            conn.close()
        first = text.splitlines()[0][:200] if text else ""
        if 200 <= response.status < 300:  # taken: "0: Accepted for delivery", "3: Queued for later delivery"
            return Accepted(None, first)
        if response.status == 429 or response.status >= 500:
            raise TemporaryFailure(f"kannel answered HTTP {response.status}: {first}")
        raise PermanentFailure(f"kannel refused the message: HTTP {response.status}: {first}")

    def lookup(self, message_id: str) -> Accepted | None:
        return None  # sendsms has no query; a delivery report settles it

    def close(self) -> None:
        pass
