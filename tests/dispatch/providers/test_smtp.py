"""The SMTP provider against a real SMTP server (aiosmtpd on 127.0.0.1): what arrives, and how
the server's answers become retry, dead or accepted."""

from __future__ import annotations

import email
from email import policy

import pytest
from aiosmtpd.controller import Controller

from dispatch.providers.base import Outgoing, PermanentFailure, TemporaryFailure
from dispatch.providers.kannel_local import free_port
from dispatch.providers.smtp import SmtpProvider


class Mailbox:
    """Keeps every message; refuses recipients at refused.test (550) and busy.test (451)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.endswith("@refused.test"):
            return "550 5.1.1 no such user"
        if address.endswith("@busy.test"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 2.0.0 queued as 42"


@pytest.fixture
def smtp_server():
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, box
    finally:
        controller.stop()


BODY = "Your bill of $42.10 is due on 3 Dec.\nPay: https://n.test/l/abc\n" + "Line of the statement.\n" * 80


def outgoing(message_id: str, to: str, **extra) -> Outgoing:
    # longer than one SMTP line (1,000 bytes): the message must go out with CRLF line ends
    return Outgoing(message_id, "email", to, BODY, "Bill due — 3 Dec", "bill_due", None, extra)


def test_an_email_arrives_with_its_headers_text_and_html(smtp_server):
    controller, box = smtp_server
    provider = SmtpProvider("127.0.0.1", controller.port, sender="bills@nudgelab.test")
    try:
        accepted = provider.send(outgoing("m-1", "ana@example.test", html="<p>Your bill is <b>due</b></p>"))
        provider.send(outgoing("m-2", "bo@example.test"))   # the same connection, reused
    finally:
        provider.close()
    assert accepted.provider_message_id == "<m-1@nudgelab>" and accepted.detail.startswith("250")
    assert [m[1] for m in box.messages] == [["ana@example.test"], ["bo@example.test"]]
    parsed = email.message_from_bytes(box.messages[0][2], policy=policy.default)
    assert box.messages[0][0] == "bills@nudgelab.test"
    assert parsed["Subject"] == "Bill due — 3 Dec"
    assert parsed["X-Nudgelab-Message-Id"] == "m-1" and parsed["X-Nudgelab-Campaign"] == "bill_due"
    assert parsed.get_body(("plain",)).get_content().replace("\r\n", "\n") == BODY
    assert "<b>due</b>" in parsed.get_body(("html",)).get_content()


def test_a_refused_recipient_is_permanent_and_a_busy_one_is_temporary(smtp_server):
    controller, box = smtp_server
    provider = SmtpProvider("127.0.0.1", controller.port)
    try:
        with pytest.raises(PermanentFailure, match="550"):
            provider.send(outgoing("m-3", "nobody@refused.test"))
        with pytest.raises(TemporaryFailure, match="451"):
            provider.send(outgoing("m-4", "later@busy.test"))
        provider.send(outgoing("m-5", "ok@example.test"))   # the session survived both refusals
    finally:
        provider.close()
    assert [m[1] for m in box.messages] == [["ok@example.test"]]


def test_no_server_is_a_temporary_failure_that_names_the_address():
    provider = SmtpProvider("127.0.0.1", free_port(), timeout=2)
    with pytest.raises(TemporaryFailure, match=r"127\.0\.0\.1:\d+ unreachable"):
        provider.send(outgoing("m-6", "ana@example.test"))
