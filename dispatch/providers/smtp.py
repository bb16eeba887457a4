"""E-mail over SMTP: one client for campaign e-mails and operator alerts.

The conversation is driven step by step so that a failure can be placed: before the message data
is accepted (connect, MAIL, RCPT) nothing was taken — a 4xx or a dropped connection is retried, a
5xx is a refusal; a reply to the data itself decides by its code; a connection lost while the data
was being answered is ambiguous (the server may have queued it). Each thread keeps its own
connection and reconnects when the server closed it between messages.

Headers: ``Message-ID`` derived from our message id (a receiving system can deduplicate),
``X-Nudgelab-Message-Id``, a text part and, when the template has one, an HTML alternative.

Environment: ``NUDGELAB_SMTP_HOST``, ``NUDGELAB_SMTP_PORT`` (default 25, or 465 with
``NUDGELAB_SMTP_SSL=true``), ``NUDGELAB_SMTP_STARTTLS`` (true/false), ``NUDGELAB_SMTP_USERNAME``,
``NUDGELAB_SMTP_PASSWORD``, ``NUDGELAB_SMTP_FROM`` (default ``nudgelab@localhost``),
``NUDGELAB_SMTP_RATE`` (messages per second, optional), ``NUDGELAB_SMTP_TIMEOUT`` (default 10).
"""

from __future__ import annotations

import smtplib
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate

from dispatch.providers.base import (Accepted, AmbiguousFailure, Outgoing, PermanentFailure,
                                     TemporaryFailure)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def build_email(message: Outgoing, sender: str) -> EmailMessage:
    email = EmailMessage()
    email["Subject"] = message.subject or ""
    email["From"] = message.extra.get("sender") or sender
    email["To"] = message.to
    email["Date"] = formatdate(localtime=False)
    email["Message-ID"] = f"<{message.message_id}@nudgelab>"
    email["X-Nudgelab-Message-Id"] = message.message_id
    if message.campaign_id:
        email["X-Nudgelab-Campaign"] = message.campaign_id
    email.set_content(message.body)
    if message.extra.get("html"):
        email.add_alternative(message.extra["html"], subtype="html")
    return email


@dataclass
class SmtpProvider:
    host: str
    port: int = 25
    sender: str = "nudgelab@localhost"
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    ssl: bool = False
    timeout: float = 10.0
    rate_per_second: float | None = None
    name: str = "smtp"
    _local: threading.local = field(default_factory=threading.local, repr=False)
    _clients: list = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "SmtpProvider":
        ssl = _truthy(env.get("NUDGELAB_SMTP_SSL"))
        rate = env.get("NUDGELAB_SMTP_RATE")
        return cls(env["NUDGELAB_SMTP_HOST"], int(env.get("NUDGELAB_SMTP_PORT") or (465 if ssl else 25)),
                   env.get("NUDGELAB_SMTP_FROM") or "nudgelab@localhost", env.get("NUDGELAB_SMTP_USERNAME") or None,
                   env.get("NUDGELAB_SMTP_PASSWORD") or None, _truthy(env.get("NUDGELAB_SMTP_STARTTLS")), ssl,
                   float(env.get("NUDGELAB_SMTP_TIMEOUT", "10")), float(rate) if rate else None)

    def _client(self) -> smtplib.SMTP:
        client = getattr(self._local, "client", None)
        if client is not None:
            try:
                if client.noop()[0] == 250:
                    return client
            except (smtplib.SMTPException, OSError):
                pass
            self._drop()
        factory = smtplib.SMTP_SSL if self.ssl else smtplib.SMTP
        try:
            client = factory(self.host, self.port, timeout=self.timeout)
            client.ehlo_or_helo_if_needed()
            if self.starttls:
                client.starttls()
                client.ehlo()
            if self.username:
                client.login(self.username, self.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise PermanentFailure(f"SMTP {self.host}:{self.port} refused the login ({exc.smtp_code})") from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise TemporaryFailure(f"SMTP {self.host}:{self.port} unreachable ({type(exc).__name__}: {exc})") from exc
        self._local.client = client
        with self._lock:
            self._clients.append(client)
        return client

    def _drop(self) -> None:
        client = getattr(self._local, "client", None)
        self._local.client = None
        if client is not None:
            with self._lock:
                if client in self._clients:
                    self._clients.remove(client)
            try:
                client.close()
            except OSError:
                pass

    def send(self, message: Outgoing) -> Accepted:
        email = build_email(message, self.sender)
        client = self._client()
        try:
            code, reply = client.mail(email["From"])
            if code != 250:
                client.rset()
                raise (TemporaryFailure if 400 <= code < 500 else PermanentFailure)(f"SMTP MAIL FROM: {code} {reply[:200]!r}")
            code, reply = client.rcpt(message.to)
            if code not in (250, 251):
                client.rset()
                raise (TemporaryFailure if 400 <= code < 500 else PermanentFailure)(f"SMTP RCPT TO refused: {code}")
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            raise TemporaryFailure(f"SMTP connection lost before the message was sent ({type(exc).__name__})") from exc
        try:
            code, reply = client.data(email.as_bytes(policy=SMTP_POLICY))  # CRLF line ends, as SMTP wants
        except smtplib.SMTPDataError as exc:
            raise (TemporaryFailure if 400 <= exc.smtp_code < 500 else PermanentFailure)(
                f"SMTP refused the message: {exc.smtp_code}") from exc
        except (smtplib.SMTPServerDisconnected, OSError, socket.timeout) as exc:
            self._drop()
            raise AmbiguousFailure(f"SMTP connection lost while the message was being accepted ({type(exc).__name__}); "
                                   "it may have been queued") from exc
        answer = reply.decode("utf-8", "replace")[:200] if isinstance(reply, bytes) else str(reply)[:200]
        if code != 250:
            raise (TemporaryFailure if 400 <= code < 500 else PermanentFailure)(f"SMTP refused the message: {code} {answer}")
        return Accepted(email["Message-ID"], f"{code} {answer}")

    def lookup(self, message_id: str) -> Accepted | None:
        return None

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                try:
                    client.close()
                except OSError:
                    pass
        self._local = threading.local()
