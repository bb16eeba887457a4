"""Vendor fixtures land end to end with the right statuses, duplicates dropped, reasons kept."""

from __future__ import annotations

import json

import pytest

from ingest.runner import run_ingest
from tests.conftest import FIXTURES, query

VENDOR = FIXTURES / "vendor"

# file: (format detected, read, loaded, duplicates, quarantined, {status: count} of deliveries)
EXPECTED = {
    "kannel_dlr.log": ("kannel", 14, 10, 1, 3,
                       {"accepted": 3, "delivered": 3, "expired": 1, "rejected": 1, "undelivered": 1, "unknown": 1}),
    "kannel_mo.log": ("kannel", 6, 5, 0, 1, {}),
    "twilio_status.log": ("twilio", 14, 11, 1, 2,
                          {"accepted": 2, "delivered": 3, "failed": 2, "undelivered": 2, "unknown": 1}),
    "twilio_clicks.jsonl": ("twilio", 7, 5, 0, 2, {}),
    "smpp_receipts.log": ("smpp", 13, 12, 0, 1,
                          {"accepted": 3, "delivered": 3, "expired": 1, "rejected": 1, "undelivered": 3, "unknown": 1}),
    "sendgrid_events.json": ("sendgrid", 13, 13, 0, 0,
                             {"accepted": 2, "delivered": 1, "rejected": 2, "undelivered": 1}),
    "sendgrid_events.jsonl": ("sendgrid", 7, 6, 0, 1, {"accepted": 1, "delivered": 2, "unknown": 1}),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_vendor_fixture_lands_with_the_right_statuses(settings, name):
    fmt, read, loaded, duplicates, quarantined, statuses = EXPECTED[name]
    summary = run_ingest(settings, [VENDOR / name], timezone_name="Europe/London")
    assert not summary.errors
    batch = summary.batches[0]
    assert batch.source_format == fmt
    assert (batch.rows_read, batch.loaded, batch.duplicates, batch.quarantined) == (read, loaded, duplicates, quarantined)
    got = dict(query(settings, "SELECT status, count(*) FROM raw.deliveries GROUP BY status"))
    assert got == statuses
    assert all(r[0] for r in query(settings, "SELECT reason FROM raw.quarantine"))
    assert batch.validation_success


def test_a_second_delivery_of_the_same_callbacks_is_all_duplicates(settings):
    first = run_ingest(settings, [VENDOR / "smpp_receipts.log"], timezone_name="UTC").batches[0]
    again = run_ingest(settings, [VENDOR / "smpp_receipts.log"], timezone_name="UTC").batches[0]
    assert (again.loaded, again.duplicates) == (0, first.loaded)


def test_smpp_done_dates_need_a_timezone(settings):
    batch = run_ingest(settings, [VENDOR / "smpp_receipts.log"]).batches[0]
    assert batch.loaded == 0
    reasons = [r[0] for r in query(settings, "SELECT reason FROM raw.quarantine")]
    assert sum("has no time zone" in r for r in reasons) == 12


def test_no_raw_phone_number_or_email_reaches_the_warehouse(settings):
    run_ingest(settings, [VENDOR], timezone_name="Europe/London")
    dump = json.dumps([query(settings, f"SELECT * FROM raw.{t}") for t in ("deliveries", "clicks", "replies")], default=str)
    assert "@example." not in dump
    # the fixtures' recipients and senders are +1 202 555 01xx numbers
    assert "2025550" not in dump


def test_opt_out_replies_keep_their_keyword(settings):
    run_ingest(settings, [VENDOR / "kannel_mo.log", VENDOR / "sendgrid_events.json"], timezone_name="Europe/London")
    keywords = sorted(r[0] for r in query(settings, "SELECT keyword FROM raw.replies"))
    assert keywords.count("STOP") >= 3 and "SPAM" in keywords and "HELP" in keywords


def test_esp_opens_and_clicks_carrying_only_the_vendor_id_are_joined_to_their_send(settings, tmp_path):
    sends = tmp_path / "sends.jsonl"
    sends.write_text("\n".join(json.dumps(r) for r in [
        {"event_type": "sends", "event_id": "s-1", "occurred_at": "2026-11-30T09:00:00Z", "message_id": "m-mail",
         "user_id": "u-1", "campaign_id": "bill_due", "channel": "email", "provider": "sendgrid",
         "provider_message_id": "14c5d75ce93.dfd.64b469"},
        {"event_type": "sends", "event_id": "s-2", "occurred_at": "2026-11-30T09:00:00Z", "message_id": "m-sms",
         "user_id": "u-2", "campaign_id": "parcel", "channel": "sms", "provider": "twilio",
         "provider_message_id": "SM0123456789abcdef0123456789abcdef"}]) + "\n")
    assert not run_ingest(settings, [sends]).errors
    sg = "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0"
    events = tmp_path / "sendgrid.json"
    events.write_text(json.dumps([
        {"email": "ann@example.com", "event": "open", "timestamp": 1796115600, "sg_event_id": "o-1", "sg_message_id": sg,
         "useragent": "Mozilla/5.0 (iPhone)", "ip": "203.0.113.5"},
        {"email": "ann@example.com", "event": "click", "timestamp": 1796115700, "sg_event_id": "c-1", "sg_message_id": sg,
         "url": "https://pay.example.com", "useragent": "Mozilla/5.0 (iPhone)", "ip": "203.0.113.5"},
        {"email": "bob@example.com", "event": "click", "timestamp": 1796115800, "sg_event_id": "c-2",
         "sg_message_id": "ffffffffffff.filter0002.1.2.0", "url": "https://pay.example.com"}]))
    clicks = tmp_path / "twilio_clicks.jsonl"
    clicks.write_text(json.dumps({"event_type": "click", "message_sid": "SM0123456789abcdef0123456789abcdef",
                                  "to": "+12025550100", "link": "https://track.example.com/p/1",
                                  "click_time": "2026-12-01T09:05:00.000Z", "user_agent": "Mozilla/5.0 (Android 14)"})
                      + "\n")
    summary = run_ingest(settings, [events, clicks])
    assert not summary.errors
    assert [(b.loaded, b.quarantined) for b in summary.batches] == [(2, 1), (1, 0)]
    assert query(settings, "SELECT message_id, user_id, campaign_id, link_id, provider_message_id FROM raw.clicks "
                           "ORDER BY occurred_at") == [
        ("m-mail", "u-1", "bill_due", "email_open", "14c5d75ce93.dfd.64b469"),
        ("m-mail", "u-1", "bill_due", None, "14c5d75ce93.dfd.64b469"),
        ("m-sms", "u-2", "parcel", None, "SM0123456789abcdef0123456789abcdef")]
    (reason,) = query(settings, "SELECT reason FROM raw.quarantine")[0]
    assert "names only the provider's message id" in reason and "load the sends first" in reason
