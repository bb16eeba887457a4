"""The webhook provider against a local HTTP server, and the file provider's lines and lookup."""

from __future__ import annotations

import http.server
import json
import threading

import pytest

from dispatch.providers.base import Outgoing, PermanentFailure, TemporaryFailure
from dispatch.providers.file import FileProvider, mask
from dispatch.providers.webhook import WebhookProvider


class Recorder(http.server.BaseHTTPRequestHandler):
    answers: list[tuple[int, bytes]] = []
    seen: list[tuple[dict, dict]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).seen.append((dict(self.headers), json.loads(body)))
        status, text = type(self).answers.pop(0) if type(self).answers else (200, b'{"id": "push-1"}')
        self.send_response(status)
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    def log_message(self, *args):
        pass


@pytest.fixture
def endpoint():
    Recorder.answers, Recorder.seen = [], []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/push"
    finally:
        server.shutdown()
        server.server_close()


def test_a_push_is_one_json_post_with_an_idempotency_key_and_the_token(endpoint):
    provider = WebhookProvider(endpoint, token="s3cret", name="push-webhook")
    accepted = provider.send(Outgoing("m-1", "push", "tok-abc", "Your parcel is out for delivery", None, "parcel",
                                      None, {"title": "Parcel", "quick_replies": [{"reply": "1", "label": "Track"}]}))
    assert accepted.provider_message_id == "push-1"
    headers, body = Recorder.seen[0]
    assert headers["Idempotency-Key"] == "m-1" and headers["Authorization"] == "Bearer s3cret"
    assert body["to"] == "tok-abc" and body["title"] == "Parcel" and body["campaign_id"] == "parcel"
    assert body["quick_replies"] == [{"reply": "1", "label": "Track"}]


def test_rcs_carries_the_card_and_its_sms_fallback(endpoint):
    card = {"title": "Appointment", "description": "Tomorrow 10:00", "fallback_text": "Appointment tomorrow 10:00"}
    WebhookProvider(endpoint).send(Outgoing("m-2", "rcs", "+12025550101", "Tomorrow 10:00", None, "appt", None,
                                            {"card": card}))
    body = Recorder.seen[0][1]
    assert body["card"] == card and body["fallback_text"] == "Appointment tomorrow 10:00"


@pytest.mark.parametrize("status, failure", [(503, TemporaryFailure), (429, TemporaryFailure),
                                             (408, TemporaryFailure), (400, PermanentFailure),
                                             (401, PermanentFailure)])
def test_answers_map_to_retry_or_refusal(endpoint, status, failure):
    Recorder.answers = [(status, b"{}")]
    with pytest.raises(failure, match=f"HTTP {status}"):
        WebhookProvider(endpoint).send(Outgoing("m-3", "push", "tok", "hi"))


def test_an_unreachable_webhook_is_temporary():
    from dispatch.providers.kannel_local import free_port

    with pytest.raises(TemporaryFailure, match="unreachable"):
        WebhookProvider(f"http://127.0.0.1:{free_port()}/x", timeout=2).send(Outgoing("m-4", "push", "tok", "hi"))


def test_the_file_provider_masks_recipients_and_finds_its_sends_after_a_torn_line(tmp_path):
    provider = FileProvider(tmp_path / "outbox")
    provider.send(Outgoing("m-1", "sms", "+12025550158", "Hello", encoding="gsm7"))
    with open(tmp_path / "outbox" / "sms.jsonl", "a") as handle:
        handle.write('{"message_id": "m-torn", "chan')          # a crash mid-line
    again = FileProvider(tmp_path / "outbox")                    # a new process after the crash
    again.send(Outgoing("m-2", "sms", "+12025550159", "World"))
    lines = (tmp_path / "outbox" / "sms.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["to"] == "+1202•••••58" and "+12025550158" not in lines[0]
    assert json.loads(lines[-1])["message_id"] == "m-2"          # not glued to the torn line
    fresh = FileProvider(tmp_path / "outbox")
    assert fresh.lookup("m-1") is not None and fresh.lookup("m-2") is not None
    assert fresh.lookup("m-torn") is None and fresh.lookup("m-never") is None
    assert mask("rosa@example.test") == "r•••@example.test"
    assert (tmp_path / "outbox" / "sms.jsonl").stat().st_mode & 0o777 == 0o600
