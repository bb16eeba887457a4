"""The receiver as a real process (``nudgelab serve`` on 127.0.0.1): delivery reports and tracked
links reach the spool and then the warehouse; hostile requests get 4xx and it keeps running; a
SIGKILL during a burst loses no callback that was answered; and the loop through real Kannel."""

from __future__ import annotations

import http.client
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from dispatch.ops import connect, now_iso, transaction
from dispatch.providers.kannel_local import LocalKannel, missing
from ingest.spool import closed_files
from tests.conftest import query, run_cli
from tests.dispatch.outbox_rows import queue, states
from tests.dispatch.receiver.served import BROWSER, Served, wait_closed


@pytest.fixture
def served(home):
    server = Served(home).start()
    yield server
    server.stop()


def test_a_delivery_report_is_spooled_as_received_and_lands_in_the_warehouse(served, home, settings):
    status, body, _ = served.get("/kannel/dlr?message_id=m-abc&type=1&answer=&ts=1796137594&smsc=fake&id=k-1")
    assert (status, body) == (200, b"ok")
    assert served.request("POST", "/kannel/dlr", b"message_id=m-abc&type=8&answer=ACK%2F&ts=1796137593&smsc=fake&id=k-0",
                          {"Content-Type": "application/x-www-form-urlencoded"})[0] == 200
    files = wait_closed(home)
    lines = [line for f in files for line in f.read_text().splitlines()]
    assert len(lines) == 2 and all("\tmessage_id=m-abc&type=" in line for line in lines)
    assert run_cli("ingest", "--spool").returncode == 0
    assert query(settings, "SELECT message_id, status, provider_message_id FROM raw.deliveries ORDER BY status") == [
        ("m-abc", "accepted", "k-0"), ("m-abc", "delivered", "k-1")]


def test_a_report_settles_an_unknown_outcome_in_the_outbox(served, home):
    ops = connect(home / "ops.sqlite")
    (message_id,) = queue(ops, ["u1"], "kannel")
    with transaction(ops):
        ops.execute("UPDATE messages SET state = 'unknown', last_error = 'crash' WHERE message_id = ?", [message_id])
    assert served.get(f"/kannel/dlr?message_id={message_id}&type=1&id=k-9")[0] == 200
    assert states(ops)[message_id][0] == "sent"
    ops.close()


def test_a_tracked_link_redirects_and_records_a_human_click_and_a_flagged_machine_one(served, home, settings):
    ops = connect(home / "ops.sqlite")
    (message_id,) = queue(ops, ["u7"], "kannel", campaign_id="winter_promo")
    url = "https://shop.example.com/winter?utm_campaign=winter_promo"
    with transaction(ops):
        ops.execute("INSERT INTO links VALUES ('AbC123xyz09', ?, 'offer', ?, ?)", [message_id, url, now_iso()])
    ops.close()
    status, _, headers = served.get("/l/AbC123xyz09", **{"User-Agent": BROWSER})
    assert status == 302 and headers["location"] == url
    assert served.request("HEAD", "/l/AbC123xyz09", headers={"User-Agent": "Slackbot-LinkExpanding 1.0"})[0] == 302
    assert served.get("/l/NotACode42")[0] == 404
    wait_closed(home)
    assert run_cli("ingest", "--spool").returncode == 0
    rows = query(settings, "SELECT message_id, user_id, link_id, is_bot, bot_reason, ip_hash IS NOT NULL FROM raw.clicks "
                           "ORDER BY is_bot")
    assert rows == [(message_id, "u7", "offer", False, None, True), (message_id, "u7", "offer", True, "head_request", True)]
    assert "127.0.0.1" not in json.dumps(query(settings, "SELECT * FROM raw.clicks"), default=str)
    ops = connect(home / "ops.sqlite")   # the live view of the run: one human click, one machine's
    assert sorted(tuple(r) for r in ops.execute("SELECT message_id, kind, detail FROM responses")) == [
        (message_id, "bot_click", "head_request"), (message_id, "click", None)]
    ops.close()


def test_a_fetch_within_seconds_of_delivery_is_flagged_and_a_later_one_is_a_person(served, home, settings):
    ops = connect(home / "ops.sqlite")
    soon, later = queue(ops, ["u1", "u2"], "kannel", campaign_id="parcel")
    with transaction(ops):
        for i, message_id in enumerate((soon, later)):
            ops.execute("UPDATE messages SET state = 'sent', sent_at = '2026-12-01T09:00:00.000000Z' WHERE message_id = ?",
                        [message_id])
            ops.execute("INSERT INTO links VALUES (?, ?, 'track', 'https://track.example.com', ?)",
                        [f"Track000{i}", message_id, now_iso()])
        ops.execute("INSERT INTO receipts VALUES (?, 'delivered', 'k-2', '2026-12-01T09:00:05.000Z', 'kannel')", [later])
    ops.close()
    # a delivery report for the first one arrives through the receiver; a browser fetch follows at once
    assert served.get(f"/kannel/dlr?message_id={soon}&type=1&id=k-1")[0] == 200
    assert served.get("/l/Track0000", **{"User-Agent": BROWSER})[0] == 302
    assert served.get("/l/Track0001", **{"User-Agent": BROWSER})[0] == 302     # delivered long ago
    wait_closed(home)
    assert run_cli("ingest", "--spool").returncode == 0
    assert query(settings, "SELECT message_id, is_bot, bot_reason FROM raw.clicks ORDER BY is_bot") == [
        (later, False, None), (soon, True, "soon_after_delivery")]


def sendgrid_events(message_id: str) -> list[dict]:
    """SendGrid's documented event shapes (delivered, open by Apple's proxy, click), for one message."""
    sg = "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0"
    base = {"email": "ann@example.com", "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>", "sg_message_id": sg,
            "category": ["reminder"], "message_id": message_id}
    return [dict(base, event="delivered", timestamp=1796137594, sg_event_id="sg-d-1", response="250 OK"),
            dict(base, event="open", timestamp=1796137600, sg_event_id="sg-o-1", useragent="Mozilla/5.0",
                 ip="17.58.0.1", sg_machine_open=True),
            dict(base, event="click", timestamp=1796137700, sg_event_id="sg-c-1", url="https://shop.example.com/x",
                 useragent=BROWSER, ip="203.0.113.9")]


def test_sendgrid_events_signed_with_the_webhook_key_are_kept_and_others_refused(home, settings):
    import base64

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    public = base64.b64encode(key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    server = Served(home, NUDGELAB_SENDGRID_PUBLIC_KEY=public).start()
    try:
        body = json.dumps(sendgrid_events("m-mail-1")).encode()
        stamp = "1796137800"
        signed = base64.b64encode(key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
        headers = {"Content-Type": "application/json", "X-Twilio-Email-Event-Webhook-Signature": signed,
                   "X-Twilio-Email-Event-Webhook-Timestamp": stamp}
        assert server.request("POST", "/sendgrid/events", body, headers)[0] == 200
        tampered = body.replace(b"delivered", b"bounce", 1)
        assert server.request("POST", "/sendgrid/events", tampered, headers)[0] == 403
        assert server.request("POST", "/sendgrid/events", body, {**headers, "X-Twilio-Email-Event-Webhook-Timestamp":
                                                                  "1796137801"})[0] == 403
        assert server.request("POST", "/sendgrid/events", body, {"Content-Type": "application/json"})[0] == 403
        wait_closed(home)
    finally:
        server.stop()
    assert [f.parent.name for f in closed_files(home / "spool")] == ["sendgrid"]
    assert run_cli("ingest", "--spool").returncode == 0
    assert query(settings, "SELECT message_id, status FROM raw.deliveries") == [("m-mail-1", "delivered")]
    assert query(settings, "SELECT link_id, is_bot FROM raw.clicks ORDER BY occurred_at") == [
        ("email_open", True), (None, False)]


def test_sendgrid_events_without_a_key_are_checked_for_shape(served, home):
    assert served.request("POST", "/sendgrid/events", json.dumps(sendgrid_events("m-2")).encode())[0] == 200
    assert served.request("POST", "/sendgrid/events", b"[]")[0] == 200
    for bad in (b"{not json", b'[{"email": "a@b.c"}]', b'"delivered"', b"[1, 2]", b"\xff\xfe"):
        assert served.request("POST", "/sendgrid/events", bad)[0] == 400, bad
    try:
        status = served.request("POST", "/sendgrid/events", b"[" + b" " * (5 * 1024 * 1024) + b"]")[0]
    except (ConnectionResetError, BrokenPipeError):
        status = 413
    assert status == 413 and served.get("/healthz")[0] == 200


def test_a_reply_is_matched_to_the_quick_reply_choice_it_answers(served, home, settings):
    ops = connect(home / "ops.sqlite")
    appointment, = queue(ops, ["u5"], "kannel", phone_prefix="+1202572", run_id="appointments", campaign_id="appt")
    promo, = queue(ops, ["u5"], "kannel", phone_prefix="+1202572", run_id="promo", campaign_id="promo")
    choices = json.dumps({"quick_replies": [{"reply": "1", "meaning": "confirm"}, {"reply": "2", "meaning": "reschedule"}]})
    with transaction(ops):
        ops.execute("UPDATE messages SET state = 'sent', sent_at = '2026-12-01T09:00:00.000000Z', extra = ? "
                    "WHERE message_id = ?", [choices, appointment])
        ops.execute("UPDATE messages SET state = 'sent', sent_at = '2026-12-01T10:00:00.000000Z' WHERE message_id = ?", [promo])
    ops.close()
    # "2." answers the appointment reminder's choices, though the promotion came later
    assert served.get("/kannel/mo?from=%2B12025720000&to=12345&text=2.&time=1796137594")[0:2] == (200, b"")
    assert served.get("/kannel/mo?from=%2B12025720000&to=12345&text=thanks&time=1796137595")[0] == 200
    wait_closed(home)
    assert run_cli("ingest", "--spool").returncode == 0
    rows = query(settings, "SELECT keyword, message_id, extra FROM raw.replies ORDER BY occurred_at")
    assert [(k, m) for k, m, _ in rows] == [("2", appointment), ("THANKS", promo)]
    assert json.loads(rows[0][2])["reply_meaning"] == "reschedule" and "reply_meaning" not in (rows[1][2] or "")


def test_a_dwell_beacon_lands_once_per_visit(served, home, settings):
    ops = connect(home / "ops.sqlite")
    (message_id,) = queue(ops, ["u9"], "kannel", campaign_id="bill_due")
    with transaction(ops):
        ops.execute("INSERT INTO links VALUES ('PayLink0001', ?, 'pay', 'https://pay.example.com', ?)", [message_id, now_iso()])
    ops.close()
    body = json.dumps({"code": "PayLink0001", "seconds": 42.5, "page": "/pay", "visit": "visit0001"}).encode()
    assert served.request("POST", "/beacon", body, {"Content-Type": "text/plain"})[0] == 204
    assert served.request("POST", "/beacon", body, {"Content-Type": "text/plain"})[0] == 204      # sent twice
    assert served.request("POST", "/beacon", f"message_id={message_id}&seconds=3".encode(),
                          {"Content-Type": "application/x-www-form-urlencoded"})[0] == 204
    assert served.request("POST", "/beacon", b'{"code": "PayLink0001", "seconds": -1}')[0] == 400
    assert served.request("POST", "/beacon", b'{"code": "PayLink0001", "seconds": "long"}')[0] == 400
    assert served.request("POST", "/beacon", b'{"code": "Unknown00001", "seconds": 5}')[0] == 404
    assert served.request("POST", "/beacon", b'{"seconds": 5}')[0] == 400
    wait_closed(home)
    assert run_cli("ingest", "--spool").returncode == 0
    assert query(settings, "SELECT message_id, user_id, page, dwell_seconds FROM raw.dwells ORDER BY dwell_seconds") == [
        (message_id, "u9", None, 3.0), (message_id, "u9", "/pay", 42.5)]


def test_hostile_requests_get_4xx_and_the_receiver_keeps_running(served):
    cases = [
        ("GET", "/kannel/dlr?message_id=m-1", None, 400),                  # no report type
        ("GET", "/kannel/mo?text=STOP", None, 400),                          # an inbound message without a sender
        ("POST", "/twilio/status", b"MessageSid=SM1", 400),                   # no status
        ("POST", "/twilio/inbound", b"Body=hi", 400),                         # no sender
        ("GET", "/twilio/status", None, 405),
        ("GET", "/kannel/mo?from=not-a-number&text=STOP", None, 200),       # spooled; nobody to suppress
        ("GET", "/kannel/dlr?type=1&" + "x" * 9000, None, 414),            # over 8 KiB of query
        ("POST", "/kannel/dlr", b"type=1&x=" + b"y" * (10 * 1024 * 1024), 413),   # a 10 MB body
        ("POST", "/kannel/dlr", b"type=1&text=\xff\xfe\xfa", 400),         # not UTF-8
        ("GET", "/l/..%2F..%2Fetc%2Fpasswd", None, 404),                     # traversal in a link code
        ("GET", "/l/%00%00", None, 404),
        ("GET", "/nowhere", None, 404),
        ("DELETE", "/kannel/dlr", None, 405),
    ]
    for method, path, body, expected in cases:
        try:
            status = served.request(method, path, body)[0]
        except (ConnectionResetError, BrokenPipeError):
            status = 413 if expected == 413 else None   # the server may close on an oversized body
        assert status == expected, (method, path[:40], status)
    raw = http.client.HTTPConnection("127.0.0.1", served.port, timeout=5)
    raw.sock = None
    raw.connect()
    raw.sock.sendall(b"GET /kannel/dlr?type=1&text=\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n")
    reply = raw.sock.recv(200)
    raw.close()
    assert reply.startswith(b"HTTP/1.1 4"), reply[:40]
    assert served.get("/healthz")[0] == 200 and served.process.poll() is None


def test_a_receiver_killed_during_a_burst_loses_no_answered_callback(home, settings):
    server = Served(home).start()
    answered: list[int] = []

    def one(i: int):
        try:
            status = server.get(f"/kannel/dlr?message_id=m-burst-{i}&type=1&id=k-{i}")[0]
        except (OSError, http.client.HTTPException):   # refused, reset, or cut off mid-answer by the kill
            return
        if status == 200:
            answered.append(i)

    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(one, i) for i in range(3000)]
        while len(answered) < 500:
            time.sleep(0.01)
        server.process.kill()        # SIGKILL mid-burst
        for f in futures:
            f.result()
    server.process.wait()
    assert 500 <= len(answered) < 3000
    again = Served(home).start()     # a new process; the dead one's open file is published by the drain
    again.stop()
    assert run_cli("ingest", "--spool").returncode == 0
    landed = {r[0] for r in query(settings, "SELECT message_id FROM raw.deliveries")}
    assert {f"m-burst-{i}" for i in answered} <= landed
    assert query(settings, "SELECT count(*) FROM raw.quarantine") == [(0,)]     # no half-written line landed


def test_the_loop_through_kannel_reports_every_message_back_through_the_receiver(home, settings, tmp_path):
    if missing():
        pytest.fail("Kannel is not installed: `make test` installs kannel and kannel-extras")
    server = Served(home).start()
    try:
        with LocalKannel(tmp_path / "kannel") as kannel:
            ops = connect(home / "ops.sqlite")
            ids = queue(ops, [f"r{i}" for i in range(40)], "kannel", phone_prefix="+1202570", run_id="loop")
            ops.close()
            env = {**kannel.env(f"http://127.0.0.1:{server.port}"), "NUDGELAB_DISPATCH_PROVIDERS": "sms=kannel"}
            run = run_cli("dispatch", "run", "--once", "--threads", "8", env_extra=env)
            assert run.returncode == 0 and run.stdout.startswith("sent 40,"), run.stderr
            deadline = time.monotonic() + 30
            ops = connect(home / "ops.sqlite")
            while time.monotonic() < deadline:
                got = ops.execute("SELECT count(DISTINCT message_id) FROM receipts WHERE status = 'delivered'").fetchone()[0]
                if got == 40:
                    break
                time.sleep(0.2)
            assert got == 40
            ops.close()
    finally:
        server.stop()
    assert run_cli("ingest", "--spool").returncode == 0
    assert query(settings, "SELECT status, count(DISTINCT message_id) FROM raw.deliveries GROUP BY 1 ORDER BY 1") == [
        ("accepted", 40), ("delivered", 40)]
    assert {r[0] for r in query(settings, "SELECT message_id FROM raw.sends")} == set(ids)


def test_stop_from_a_phone_suppresses_at_once_is_confirmed_and_start_lifts_it(home, settings, tmp_path):
    if missing():
        pytest.fail("Kannel is not installed: `make test` installs kannel and kannel-extras")
    server = Served(home).start()
    receiver = f"http://127.0.0.1:{server.port}"
    try:
        with LocalKannel(tmp_path / "kannel", receiver=receiver) as kannel:
            ops = connect(home / "ops.sqlite")
            users = ["s1", "s2", "s3"]
            queue(ops, users, "kannel", phone_prefix="+1202571", run_id="first")
            env = {**kannel.env(receiver), "NUDGELAB_DISPATCH_PROVIDERS": "sms=kannel"}
            assert run_cli("dispatch", "run", "--once", env_extra=env).stdout.startswith("sent 3,")
            later = queue(ops, users, "kannel", phone_prefix="+1202571", run_id="second")
            kannel.inbound("+12025710001", "12345", "please stop texting me")

            def replies_to(number: str) -> list[str]:   # what reached the phone besides the parcel messages
                return [r.text for r in kannel.received() if r.to == number and not r.text.startswith("Your parcel")]
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not any(t.startswith("You will get no more") for t in replies_to("+12025710001")):
                time.sleep(0.1)
            assert any(t.startswith("You will get no more") for t in replies_to("+12025710001")), kannel.received()
            assert [tuple(r) for r in ops.execute("SELECT user_id, reason FROM suppressions")] == [("s2", "stop_reply")]
            # the very next run: s2's queued message is cancelled, the others go
            run = run_cli("dispatch", "run", "--once", env_extra=env)
            assert run.returncode == 0 and run.stdout.startswith("sent 2,") and "cancelled 1" in run.stdout
            second = states(ops, "second")
            assert second[later[1]][0] == "cancelled" and "opted out" in second[later[1]][1]
            # one at a time: fakesmsc takes the next line of its input after the last one went
            for number, text, answer in (("+12025710000", "HELP", "Reminders from nudgelab"),
                                         ("+12025710001", "START", "You are subscribed again")):
                kannel.inbound(number, "12345", text)
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and not any(t.startswith(answer) for t in replies_to(number)):
                    time.sleep(0.1)
                assert any(t.startswith(answer) for t in replies_to(number)), (text, kannel.received()[-3:])
            assert ops.execute("SELECT count(*) FROM suppressions").fetchone()[0] == 0
            ops.close()
    finally:
        server.stop()
    assert run_cli("ingest", "--spool").returncode == 0
    rows = query(settings, "SELECT user_id, keyword, message_id IS NOT NULL FROM raw.replies ORDER BY occurred_at")
    assert rows == [("s2", "STOP", True), ("s1", "HELP", True), ("s2", "START", True)]


def test_twilio_callbacks_signed_by_the_official_library_are_kept_and_altered_ones_refused(home, settings):
    from urllib.parse import urlencode

    from twilio.request_validator import RequestValidator

    token = "0123456789abcdef0123456789abcdef"
    env_home = dict(os.environ)
    os.environ["NUDGELAB_TWILIO_AUTH_TOKEN"] = token
    os.environ["NUDGELAB_RECEIVER_URL"] = "https://hooks.example.com"   # the public URL Twilio signs
    try:
        server = Served(home).start()
    finally:
        os.environ.clear()
        os.environ.update(env_home)
    ops = connect(home / "ops.sqlite")
    (message_id,) = queue(ops, ["t1"], "twilio", phone_prefix="+1202573")
    with transaction(ops):
        ops.execute("UPDATE messages SET state = 'sent', sent_at = ? WHERE message_id = ?", [now_iso(), message_id])
    ops.close()
    validator = RequestValidator(token)
    try:
        status = {"MessageSid": "SM0123456789abcdef0123456789abcdef", "MessageStatus": "delivered",
                  "AccountSid": "AC0123456789abcdef0123456789abcdef", "To": "+12025730000", "From": "+15005550006",
                  "ApiVersion": "2010-04-01"}
        path = f"/twilio/status?message_id={message_id}"
        signed = validator.compute_signature(f"https://hooks.example.com{path}", status)
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        assert server.request("POST", path, urlencode(status).encode(), {**form, "X-Twilio-Signature": signed})[0] == 200
        altered = dict(status, MessageStatus="failed")
        assert server.request("POST", path, urlencode(altered).encode(), {**form, "X-Twilio-Signature": signed})[0] == 403
        assert server.request("POST", path, urlencode(status).encode(), form)[0] == 403        # unsigned
        inbound = {"MessageSid": "SM9", "SmsStatus": "received", "From": "+12025730000", "To": "+15005550006",
                   "Body": "Stop", "AccountSid": "AC0123456789abcdef0123456789abcdef"}
        signed = validator.compute_signature("https://hooks.example.com/twilio/inbound", inbound)
        code, body, headers = server.request("POST", "/twilio/inbound", urlencode(inbound).encode(),
                                             {**form, "X-Twilio-Signature": signed})
        assert code == 200 and headers["content-type"].startswith("application/xml")
        assert b"<Message>You will get no more messages from us." in body
        wait_closed(home)
    finally:
        server.stop()
    ops = connect(home / "ops.sqlite")
    assert [tuple(r) for r in ops.execute("SELECT user_id, reason FROM suppressions")] == [("t1", "stop_reply")]
    ops.close()
    assert run_cli("ingest", "--spool").returncode == 0
    assert query(settings, "SELECT message_id, status FROM raw.deliveries") == [(message_id, "delivered")]
    assert query(settings, "SELECT user_id, keyword, message_id FROM raw.replies") == [("t1", "STOP", message_id)]


def test_the_openapi_description_lists_the_fixed_routes(served):
    status, body, headers = served.get("/openapi.json")
    assert status == 200 and headers["content-type"].startswith("application/json")
    spec = json.loads(body)
    assert spec["openapi"].startswith("3.") and {p: sorted(v) for p, v in spec["paths"].items()} == {
        "/kannel/dlr": ["get", "post"], "/kannel/mo": ["get", "post"], "/twilio/status": ["post"],
        "/twilio/inbound": ["post"], "/sendgrid/events": ["post"], "/l/{code}": ["get"], "/beacon": ["post"],
        "/healthz": ["get"]}
    assert "414" in spec["paths"]["/kannel/dlr"]["get"]["responses"]
