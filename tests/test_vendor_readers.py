"""Vendor readers (Kannel, Twilio, SMPP, SendGrid) and the vendor status table, as specifications.

Fixtures live in tests/fixtures/vendor/; the counts asserted here are the ones the loader's
end-to-end test can rely on.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from ingest import vendor_statuses as vs
from ingest.contract import DELIVERY_STATUSES, EVENT_TYPES, Record
from ingest.readers import base, kannel, sendgrid, smpp, twilio

FIXTURES = Path(__file__).parent / "fixtures" / "vendor"
READERS = {"kannel": kannel, "twilio": twilio, "smpp": smpp, "sendgrid": sendgrid}
FIXTURE_FORMAT = {
    "kannel_dlr.log": "kannel",
    "kannel_mo.log": "kannel",
    "twilio_status.log": "twilio",
    "twilio_clicks.jsonl": "twilio",
    "smpp_receipts.log": "smpp",
    "sendgrid_events.json": "sendgrid",
    "sendgrid_events.jsonl": "sendgrid",
}
CONTRACT_CSV = "event_id,occurred_at,message_id\ne1,2026-10-01T00:00:00Z,m-1\n"
CONTRACT_JSONL = '{"event_id": "e1", "occurred_at": "2026-10-01T00:00:00Z"}\n'

TIME_FORMS = (
    re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?[+-]\d{2}:\d{2}$"),  # ISO with offset
    re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$"),  # naive ISO
    re.compile(r"^\d+(\.\d+)?$"),  # Unix seconds
)


def read(name: str, path: Path | None = None) -> list[Record]:
    return list(READERS[FIXTURE_FORMAT[name]].read(path or FIXTURES / name))


def ok(records: list[Record]) -> list[Record]:
    return [r for r in records if r.reason is None]


def by_line(records: list[Record], line: int) -> Record:
    (record,) = [r for r in records if r.line == line]
    return record


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def all_records() -> list[tuple[str, Record]]:
    return [(name, record) for name in FIXTURE_FORMAT for record in read(name)]


# --------------------------------------------------------------------------- the status table


@pytest.mark.parametrize(
    ("dlr_type", "expected"),
    [("1", "delivered"), ("2", "undelivered"), ("4", "accepted"), ("8", "accepted"), ("16", "rejected"), ("32", "unknown")],
)
def test_kannel_dlr_type_maps_to_contract_status(dlr_type, expected):
    assert vs.map_status("kannel", dlr_type) == expected


def test_kannel_smpp_stat_in_answer_takes_precedence_over_dlr_type():
    assert vs.kannel_status("2", "EXPIRED") == "expired"
    assert vs.kannel_status("2", None) == "undelivered"


@pytest.mark.parametrize(
    ("stat", "expected"),
    [
        ("DELIVRD", "delivered"), ("EXPIRED", "expired"), ("DELETED", "undelivered"), ("UNDELIV", "undelivered"),
        ("ACCEPTD", "accepted"), ("UNKNOWN", "unknown"), ("REJECTD", "rejected"), ("SKIPPED", "undelivered"),
        ("SCHEDLD", "accepted"), ("ENROUTE", "accepted"), ("delivrd", "delivered"), ("BOGUS", "unknown"),
    ],
)
def test_smpp_stat_maps_to_contract_status(stat, expected):
    assert vs.map_status("smpp", stat) == expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("queued", "accepted"), ("sending", "accepted"), ("sent", "accepted"), ("accepted", "accepted"),
        ("scheduled", "accepted"), ("delivered", "delivered"), ("read", "delivered"),
        ("undelivered", "undelivered"), ("failed", "failed"), ("canceled", "failed"),
        ("partially_delivered", "undelivered"), ("received", "unknown"), ("receiving", "unknown"),
        ("foo", "unknown"),
    ],
)
def test_twilio_message_status_maps_to_contract_status(status, expected):
    assert vs.map_status("twilio", status) == expected


@pytest.mark.parametrize(
    ("event", "bounce_type", "expected"),
    [
        ("processed", None, "accepted"), ("deferred", None, "accepted"), ("delivered", None, "delivered"),
        ("bounce", "bounce", "undelivered"), ("bounce", "blocked", "rejected"), ("bounce", None, "undelivered"),
        ("dropped", None, "rejected"), ("something_new", None, "unknown"),
    ],
)
def test_sendgrid_event_maps_to_contract_status(event, bounce_type, expected):
    assert vs.sendgrid_status(event, bounce_type) == expected


def test_every_mapped_status_is_in_the_contract_vocabulary():
    for table in vs.STATUS_TABLES.values():
        assert set(table.values()) <= set(DELIVERY_STATUSES)


def test_module_docstring_documents_every_named_vendor_value():
    doc = vs.__doc__
    named = [k for table in vs.STATUS_TABLES.values() for k in table if not k.isdigit() and "/" not in k]
    assert [k for k in named if k not in doc] == []
    assert all(code in doc for code in vs.TWILIO_ERROR_BUCKETS)


@pytest.mark.parametrize(
    ("code", "bucket"),
    [
        ("21211", "invalid_number"), ("21610", "unsubscribed"), ("21614", "not_mobile"), ("30003", "unreachable"),
        ("30004", "blocked"), ("30005", "unknown_handset"), ("30006", "landline"), ("30007", "spam_filtered"),
        ("30008", "unknown"), ("30024", "sender_registration"), ("30032", "sender_registration"),
        ("30034", "sender_registration"), ("63016", "unknown"), (30003, "unreachable"),
    ],
)
def test_twilio_error_code_maps_to_bucket(code, bucket):
    assert vs.error_bucket("twilio", code) == bucket


def test_no_error_code_has_no_bucket():
    assert vs.error_bucket("twilio", None) is None
    assert vs.error_bucket("twilio", "0") is None


def test_reply_keyword_is_first_word_upper_cased_without_punctuation():
    assert vs.reply_keyword("stop.") == "STOP"
    assert vs.reply_keyword("  Yes please") == "YES"
    assert vs.reply_keyword("") is None


# --------------------------------------------------------------------------- Kannel DLR


def test_kannel_dlr_fixture_statuses_and_counts():
    records = read("kannel_dlr.log")
    assert len(records) == 14
    assert Counter(r.values["status"] for r in ok(records)) == {
        "delivered": 4, "accepted": 3, "rejected": 1, "expired": 1, "undelivered": 1, "unknown": 1,
    }
    assert [r.line for r in records if r.reason] == [12, 13, 14]
    assert {r.event_type for r in ok(records)} == {"deliveries"}


def test_kannel_ts_is_the_event_time_and_receipt_time_prefix_goes_to_extra():
    record = by_line(read("kannel_dlr.log"), 1)
    assert record.values["occurred_at"] == "1790848803"
    assert record.extra["received_at"] == "2026-10-01T10:00:04+00:00"


def test_kannel_receipt_time_prefix_is_the_event_time_without_ts():
    record = by_line(read("kannel_dlr.log"), 9)
    assert record.values["occurred_at"] == "2026-10-01T12:02:00+02:00"


def test_kannel_smpp_done_date_is_the_event_time_without_ts_or_prefix():
    record = by_line(read("kannel_dlr.log"), 10)
    assert record.values["occurred_at"] == "2026-10-01T10:17:30"
    assert record.values["provider"] == "kannel"


def test_kannel_request_line_is_read_like_a_query_string():
    record = by_line(read("kannel_dlr.log"), 3)
    assert record.values["status"] == "accepted"
    assert record.values["message_id"] == "m-0002"  # from msgid=
    assert record.values["provider_message_id"] == "2b209bfb-63cc-4940-95f1-28603387a18f"


def test_kannel_json_line_is_read_with_the_same_keys():
    record = by_line(read("kannel_dlr.log"), 6)
    assert record.values["status"] == "rejected"
    assert record.values["provider"] == "smsc-b"
    assert record.values["occurred_at"] == "1790848820"


def test_kannel_nack_answer_gives_the_error_code():
    record = by_line(read("kannel_dlr.log"), 6)
    assert record.values["error_code"] == "0x0000000b"
    assert record.extra["answer"] == "NACK/0x0000000b/Invalid Destination Address"


def test_kannel_url_encoded_utf8_values_are_decoded():
    record = by_line(read("kannel_dlr.log"), 9)
    assert record.values["campaign_id"] == "rentrée-2026"
    assert record.extra["label"] == "Café ☕ déjà"


def test_kannel_percent_encoded_latin1_is_read_and_noted(tmp_path):
    path = write(tmp_path, "dlr.log", "type=1&id=k-1&ts=1790848800&label=caf%E9\n")
    (record,) = kannel.read(path)
    assert record.extra["label"] == "café"
    assert "Latin-1" in record.extra["decoding"]


def test_kannel_smpp_receipt_in_answer_gives_stat_and_keeps_the_smsc_id():
    record = by_line(read("kannel_dlr.log"), 7)
    assert record.values["status"] == "expired"  # type=2, stat:EXPIRED
    assert record.values["provider_status"] == "EXPIRED"
    assert record.extra["dlr_type"] == "2"
    assert record.extra["smsc_message_id"] == "0A1B2C3F"
    assert record.values["provider_message_id"] == "80f3ca45-4bcc-49b0-88d3-9dc96cb8d7fc"  # from kid=


def test_kannel_type_2_without_receipt_is_undelivered():
    record = by_line(read("kannel_dlr.log"), 8)
    assert (record.values["status"], record.values["provider_status"]) == ("undelivered", "2")


def test_kannel_out_of_order_ack_after_delivery_is_kept_as_its_own_record():
    records = read("kannel_dlr.log")
    first, second = by_line(records, 1), by_line(records, 2)
    assert first.values["provider_message_id"] == second.values["provider_message_id"]
    assert [first.values["status"], second.values["status"]] == ["delivered", "accepted"]


def test_kannel_duplicate_callback_yields_identical_values_for_the_loader_to_dedupe():
    records = read("kannel_dlr.log")
    assert by_line(records, 4).values == by_line(records, 5).values


def test_kannel_smsc_id_is_the_provider():
    assert by_line(read("kannel_dlr.log"), 1).values["provider"] == "smsc-a"


def test_kannel_recipient_gives_country_and_never_reaches_extra():
    record = by_line(read("kannel_dlr.log"), 1)
    assert record.values["country"] == "US"
    assert "to" not in record.extra and "to" in record.extra["pii_dropped"]
    assert record.extra["from"] == "55501"  # our short code is not personal data


def test_kannel_unparseable_line_has_a_reason_and_the_rest_still_reads():
    records = read("kannel_dlr.log")
    assert "not a Kannel callback" in by_line(records, 12).reason
    assert by_line(records, 11).reason is None and by_line(records, 13).line == 13


def test_kannel_callback_without_any_message_id_has_an_actionable_reason():
    reason = by_line(read("kannel_dlr.log"), 13).reason
    assert "no message id" in reason and "dlr-url" in reason


def test_kannel_callback_without_any_time_has_an_actionable_reason():
    reason = by_line(read("kannel_dlr.log"), 14).reason
    assert "no event time" in reason and "ts=%T" in reason


def test_kannel_invalid_utf8_line_has_a_reason_and_raw_repr(tmp_path):
    path = write(tmp_path, "dlr.log", b"type=1&id=k-1&ts=1790848800&note=\xff\xfe\ntype=8&id=k-1&ts=1790848801\n")
    first, second = kannel.read(path)
    assert first.reason.startswith("invalid UTF-8") and "\\xff" in first.raw
    assert second.values["status"] == "accepted"


def test_kannel_line_without_type_or_text_follows_the_event_type_hint(tmp_path):
    path = write(tmp_path, "dlr.log", "id=k-1&ts=1790848800&smsc=smsc-a\n")
    (without,) = kannel.read(path)
    (hinted,) = kannel.read(path, event_type="deliveries")
    assert "neither a delivery report" in without.reason
    assert hinted.reason is None and hinted.values["status"] == "unknown"


# --------------------------------------------------------------------------- Kannel MO


def test_kannel_mo_lines_are_replies_with_keyword_and_sender():
    records = read("kannel_mo.log")
    assert len(records) == 6 and len(ok(records)) == 5
    assert {r.event_type for r in ok(records)} == {"replies"}
    assert [r.values["keyword"] for r in ok(records)] == ["STOP", "YES", "HELP", "ARRÊT", "STOP"]
    assert by_line(records, 1).values["sender"] == "+12025550101"


def test_kannel_mo_time_is_naive_iso_from_kannel_time_format():
    records = read("kannel_mo.log")
    assert by_line(records, 1).values["occurred_at"] == "2026-10-01T10:04:58"
    assert by_line(records, 3).values["occurred_at"] == "2026-10-01T10:07:00"  # "YYYY-MM-DD hh:mm"


def test_kannel_mo_without_time_uses_the_receipt_time_prefix():
    assert by_line(read("kannel_mo.log"), 5).values["occurred_at"] == "2026-10-01T10:09:30+00:00"


def test_kannel_mo_decodes_emoji_text():
    assert by_line(read("kannel_mo.log"), 2).values["text"] == "Yes please, confirm 👍"


def test_kannel_mo_without_any_time_has_a_reason():
    assert "no event time" in by_line(read("kannel_mo.log"), 6).reason


# --------------------------------------------------------------------------- Twilio status


def test_twilio_status_fixture_statuses_and_counts():
    records = read("twilio_status.log")
    assert len(records) == 14
    deliveries = [r for r in ok(records) if r.event_type == "deliveries"]
    assert Counter(r.values["status"] for r in deliveries) == {
        "accepted": 2, "delivered": 4, "undelivered": 2, "failed": 2, "unknown": 1,
    }
    assert [r.event_type for r in ok(records)].count("replies") == 1
    assert [r.line for r in records if r.reason] == [13, 14]


def test_twilio_raw_dlr_done_date_is_the_naive_event_time():
    record = by_line(read("twilio_status.log"), 2)
    assert record.values["occurred_at"] == "2026-10-01T10:00:00"
    assert record.extra["received_at"] == "2026-10-01T10:00:09+00:00"


def test_twilio_receipt_time_prefix_is_the_event_time_without_done_date():
    assert by_line(read("twilio_status.log"), 1).values["occurred_at"] == "2026-10-01T10:00:02+00:00"


def test_twilio_json_line_received_at_key_is_the_receipt_time():
    record = by_line(read("twilio_status.log"), 7)
    assert record.values["occurred_at"] == "2026-10-01T10:03:30+00:00"


def test_twilio_callback_without_any_time_has_the_documented_reason():
    reason = by_line(read("twilio_status.log"), 13).reason
    assert "no event time: Twilio callbacks carry none; log the receipt time" in reason


def test_twilio_duplicate_delivered_callbacks_share_their_event_time():
    records = read("twilio_status.log")
    assert by_line(records, 2).values == by_line(records, 3).values


def test_twilio_out_of_order_sent_after_delivered_is_kept():
    records = read("twilio_status.log")
    assert [by_line(records, n).values["status"] for n in (4, 5)] == ["delivered", "accepted"]


def test_twilio_error_code_and_bucket():
    record = by_line(read("twilio_status.log"), 6)
    assert (record.values["status"], record.values["error_code"]) == ("undelivered", "30003")
    assert record.extra["error_bucket"] == "unreachable"


def test_twilio_unknown_status_is_kept_as_unknown_with_raw_value():
    record = by_line(read("twilio_status.log"), 9)
    assert (record.values["status"], record.values["provider_status"]) == ("unknown", "foo")


def test_twilio_partially_delivered_is_undelivered():
    assert by_line(read("twilio_status.log"), 8).values["status"] == "undelivered"


def test_twilio_unknown_fields_are_kept_in_extra():
    extra = by_line(read("twilio_status.log"), 9).extra
    assert extra["FutureField"] == "42" and extra["StructuredMessage"] == "false"
    assert extra["AccountSid"].startswith("AC")


def test_twilio_numbers_never_reach_extra_but_a_short_code_sender_does():
    records = read("twilio_status.log")
    assert {"To", "From"} <= set(by_line(records, 1).extra["pii_dropped"])
    assert by_line(records, 11).extra["From"] == "55501"


def test_twilio_whatsapp_address_sets_the_channel_prefix():
    record = by_line(read("twilio_status.log"), 10)
    assert "channel" not in record.values  # the contract has no whatsapp channel
    assert record.extra["twilio_channel"] == "whatsapp"
    assert record.values["status"] == "delivered"  # "read"


def test_twilio_inbound_message_is_a_reply_with_the_opt_out_keyword():
    record = by_line(read("twilio_status.log"), 12)
    assert record.event_type == "replies"
    assert record.values["keyword"] == "STOP" and record.values["sender"] == "+12025550111"
    assert "status" not in record.values


def test_twilio_malformed_line_has_a_reason():
    assert "not a Twilio callback" in by_line(read("twilio_status.log"), 14).reason


# --------------------------------------------------------------------------- Twilio clicks


def test_twilio_click_fixture_counts():
    records = read("twilio_clicks.jsonl")
    assert len(records) == 7
    assert {r.event_type for r in records} == {"clicks"}
    assert len(ok(records)) == 6
    assert sum("message_id" in r.values for r in ok(records)) == 5


def test_twilio_click_maps_link_user_agent_and_click_time():
    record = by_line(read("twilio_clicks.jsonl"), 1)
    assert record.values["url"].startswith("https://nudge.example.com/r/appt")
    assert "Google-PageRenderer" in record.values["user_agent"]
    assert record.values["occurred_at"] == "2026-10-01T10:00:07.512000+00:00"
    assert "is_bot" not in record.values  # bot detection is the loader's job


def test_twilio_click_takes_our_ids_from_the_link_query():
    record = by_line(read("twilio_clicks.jsonl"), 3)
    assert (record.values["message_id"], record.values["user_id"], record.values["campaign_id"]) == (
        "m-0102", "u-0102", "c-renewal",
    )


def test_twilio_cloudevent_click_id_is_the_event_id():
    record = by_line(read("twilio_clicks.jsonl"), 3)
    assert record.values["event_id"] == "NO00000000000000000000000000abc001"


def test_twilio_cloudevent_array_gives_one_record_per_element():
    records = [r for r in read("twilio_clicks.jsonl") if r.line == 4]
    assert [r.values["message_id"] for r in records] == ["m-0103", "m-0104"]


def test_twilio_click_recipient_is_dropped():
    record = by_line(read("twilio_clicks.jsonl"), 1)
    assert "to" not in record.extra and "recipient" not in record.values


def test_twilio_click_without_time_has_a_reason():
    assert "click_time" in by_line(read("twilio_clicks.jsonl"), 5).reason


# --------------------------------------------------------------------------- SMPP


def test_smpp_fixture_statuses_and_counts():
    records = read("smpp_receipts.log")
    assert len(records) == 13
    assert Counter(r.values["status"] for r in ok(records)) == {
        "delivered": 3, "expired": 1, "undelivered": 3, "accepted": 3, "unknown": 1, "rejected": 1,
    }
    assert {r.values["provider_status"] for r in ok(records)} >= {
        "DELIVRD", "EXPIRED", "DELETED", "UNDELIV", "ACCEPTD", "UNKNOWN", "REJECTD", "SKIPPED", "SCHEDLD", "ENROUTE",
    }


def test_smpp_done_date_is_naive_event_time_with_or_without_seconds():
    records = read("smpp_receipts.log")
    assert by_line(records, 1).values["occurred_at"] == "2026-10-01T10:01:00"
    assert by_line(records, 2).values["occurred_at"] == "2026-10-02T10:00:05"


def test_smpp_receipt_time_prefix_goes_to_extra():
    record = by_line(read("smpp_receipts.log"), 11)
    assert record.values["occurred_at"] == "2026-10-01T10:06:58"
    assert record.extra["received_at"] == "2026-10-01T10:07:02+00:00"


def test_smpp_capitalised_text_field_is_read():
    assert by_line(read("smpp_receipts.log"), 3).extra["text"] == "Reminder: pay by Fri"


def test_smpp_receipt_without_sub_dlvrd_and_text_is_read():
    record = by_line(read("smpp_receipts.log"), 5)
    assert record.values["status"] == "accepted" and "sub" not in record.extra


def test_smpp_text_may_contain_field_names():
    record = by_line(read("smpp_receipts.log"), 11)
    assert (record.values["provider_status"], record.extra["text"]) == ("DELIVRD", "Your code: stat:fake")


def test_smpp_long_hex_id_is_kept_verbatim():
    record = by_line(read("smpp_receipts.log"), 11)
    assert len(record.values["provider_message_id"]) == 65


def test_smpp_error_code_zero_is_no_error_and_others_are_kept():
    records = read("smpp_receipts.log")
    assert "error_code" not in by_line(records, 1).values
    assert by_line(records, 4).values["error_code"] == "034"


def test_smpp_leading_smsc_field_is_the_provider_and_address_is_dropped():
    record = by_line(read("smpp_receipts.log"), 12)
    assert record.values["provider"] == "smsc-b" and record.values["country"] == "US"
    assert "source_addr" not in record.extra


def test_smpp_malformed_line_has_a_reason_and_is_the_only_one():
    records = read("smpp_receipts.log")
    assert [r.line for r in records if r.reason] == [13]
    assert "not an SMPP delivery receipt" in by_line(records, 13).reason


def test_smpp_receipt_without_stat_has_a_reason(tmp_path):
    path = write(tmp_path, "receipts.log", "id:42 sub:001 dlvrd:001 done date:2610011000 err:000\n")
    (record,) = smpp.read(path)
    assert "no 'stat:'" in record.reason


def test_smpp_receipt_without_done_date_uses_the_receipt_time(tmp_path):
    path = write(tmp_path, "receipts.log", "2026-10-01T10:00:00Z\tid:42 stat:DELIVRD err:000\nid:43 stat:DELIVRD\n")
    first, second = smpp.read(path)
    assert first.values["occurred_at"] == "2026-10-01T10:00:00+00:00"
    assert "no event time" in second.reason


# --------------------------------------------------------------------------- SendGrid


def test_sendgrid_array_fixture_has_every_event_type():
    records = read("sendgrid_events.json")
    assert len(records) == 13 and all(r.reason is None for r in records)
    assert Counter(r.event_type for r in records) == {"deliveries": 6, "clicks": 3, "replies": 4}
    assert Counter(r.values["status"] for r in records if r.event_type == "deliveries") == {
        "accepted": 2, "delivered": 1, "undelivered": 1, "rejected": 2,
    }


def test_sendgrid_pretty_printed_array_records_start_on_their_element_line():
    text = (FIXTURES / "sendgrid_events.json").read_text().splitlines()
    for record in read("sendgrid_events.json"):
        assert text[record.line - 1].strip() == "{"
        assert json.loads(record.raw)["sg_event_id"] == record.values["event_id"]


def test_sendgrid_timestamp_and_event_id():
    record = read("sendgrid_events.json")[0]
    assert (record.values["occurred_at"], record.values["event_id"]) == ("1790848800", "proc-0001-Zm9vYmFyLWV2Z")


def test_sendgrid_message_id_loses_its_filter_suffix_and_full_value_is_kept():
    record = read("sendgrid_events.json")[0]
    assert record.values["provider_message_id"] == "Xk3nR0qGSrKw9Z2mB7yT1A"
    assert record.extra["sg_message_id"].startswith("Xk3nR0qGSrKw9Z2mB7yT1A.filterdrecv-")


def test_sendgrid_legacy_message_id_keeps_its_own_dots():
    record = sendgrid.record_from_event(1, "{}", {
        "event": "delivered", "timestamp": 1790848800,
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
    })
    assert record.values["provider_message_id"] == "14c5d75ce93.dfd.64b469"


def test_sendgrid_custom_args_become_values():
    record = read("sendgrid_events.json")[0]
    assert (record.values["message_id"], record.values["user_id"], record.values["campaign_id"]) == (
        "m-0201", "u-0201", "c-autumn-checkup",
    )


def test_sendgrid_nested_custom_args_become_values():
    record = by_line(read("sendgrid_events.jsonl"), 6)
    assert (record.values["message_id"], record.values["user_id"]) == ("m-0303", "u-0303")
    assert "custom_args" not in record.extra


def test_sendgrid_bounce_blocked_is_rejected_with_smtp_status_as_error_code():
    record = [r for r in read("sendgrid_events.json") if r.extra.get("type") == "blocked"][0]
    assert (record.values["status"], record.values["error_code"]) == ("rejected", "5.7.1")


def test_sendgrid_open_is_a_click_on_the_open_pixel_and_machine_opens_are_bots():
    opens = [r for r in read("sendgrid_events.json") if r.extra.get("sendgrid_event") == "open"]
    assert [r.event_type for r in opens] == ["clicks", "clicks"]
    assert {r.values["link_id"] for r in opens} == {vs.OPEN_LINK_ID}
    machine, human = opens
    assert (machine.values["is_bot"], machine.values["bot_reason"]) == ("true", "apple_mpp")
    assert "is_bot" not in human.values


def test_sendgrid_click_has_url_user_agent_and_ip_and_no_bot_flag():
    (click,) = [r for r in read("sendgrid_events.json") if r.extra.get("sendgrid_event") == "click"]
    assert click.values["url"] == "https://nudge.example.com/r/appt?message_id=m-0201"
    assert click.values["ip"] == "198.51.100.23" and click.values["user_agent"].startswith("Mozilla/5.0")
    assert "is_bot" not in click.values and "link_id" not in click.values


def test_sendgrid_unsubscribes_and_spam_reports_are_replies_with_keywords():
    replies = {r.extra["sendgrid_event"]: r for r in read("sendgrid_events.json") if r.event_type == "replies"}
    assert {event: r.values["keyword"] for event, r in replies.items()} == {
        "spamreport": "SPAM", "unsubscribe": "STOP", "group_unsubscribe": "STOP", "group_resubscribe": "START",
    }
    assert replies["unsubscribe"].values["sender"] == "alan.turing@example.net"
    assert replies["unsubscribe"].values["in_reply_to"] == "m-0206"


def test_sendgrid_sending_ip_and_email_on_delivery_events_are_dropped():
    record = read("sendgrid_events.json")[2]  # delivered
    assert "ip" not in record.values and "ip" not in record.extra and "email" not in record.extra
    assert record.extra["pii_dropped"] == ["email", "ip"]


def test_sendgrid_jsonl_fixture_counts_and_malformed_line():
    records = read("sendgrid_events.jsonl")
    assert len(records) == 7
    assert [r.line for r in records] == [1, 2, 3, 3, 4, 5, 6]
    assert "not a JSON event" in by_line(records, 5).reason
    assert Counter(r.values.get("status") for r in ok(records) if r.event_type == "deliveries") == {
        "accepted": 1, "delivered": 2, "unknown": 1,
    }


def test_sendgrid_unknown_event_is_a_delivery_with_unknown_status():
    record = by_line(read("sendgrid_events.jsonl"), 4)
    assert (record.event_type, record.values["status"], record.values["provider_status"]) == (
        "deliveries", "unknown", "account_review",
    )


def test_sendgrid_event_without_event_field_has_a_reason(tmp_path):
    path = write(tmp_path, "events.jsonl", '{"email": "a@example.com", "timestamp": 1790848800}\n[1]\n')
    missing, not_object = sendgrid.read(path)
    assert "no 'event' field" in missing.reason
    assert "must be a JSON object" in not_object.reason


def test_sendgrid_truncated_array_keeps_the_events_before_the_break(tmp_path):
    path = write(tmp_path, "events.json", '[\n  {"event": "processed", "timestamp": 1790848800, "sg_event_id": "a"},\n  {"event": "deliv\n')
    first, broken = sendgrid.read(path)
    assert first.values["event_id"] == "a" and first.line == 2
    assert broken.line == 3 and "cannot be read from here on" in broken.reason


def test_sendgrid_compact_array_on_one_line_gives_one_record_per_element(tmp_path):
    events = [{"event": "processed", "timestamp": 1790848800 + i, "sg_event_id": f"e{i}"} for i in range(3)]
    path = write(tmp_path, "events.json", json.dumps(events))
    assert [(r.line, r.values["event_id"]) for r in sendgrid.read(path)] == [(1, "e0"), (1, "e1"), (1, "e2")]


def test_sendgrid_pretty_array_with_crlf_and_bom_keeps_line_numbers(tmp_path):
    text = (FIXTURES / "sendgrid_events.json").read_text().replace("\n", "\r\n")
    path = write(tmp_path, "events.json", "\ufeff".encode() + text.encode())
    assert [r.line for r in sendgrid.read(path)] == [r.line for r in read("sendgrid_events.json")]


# --------------------------------------------------------------------------- every reader


@pytest.mark.parametrize("name", sorted(FIXTURE_FORMAT))
def test_gzipped_fixture_reads_like_the_plain_one(tmp_path, name):
    path = tmp_path / (name + ".gz")
    path.write_bytes(gzip.compress((FIXTURES / name).read_bytes()))
    assert [(r.line, r.values, r.reason) for r in read(name, path)] == [(r.line, r.values, r.reason) for r in read(name)]


@pytest.mark.parametrize("name", sorted(FIXTURE_FORMAT))
def test_sniff_claims_its_own_fixture(name):
    assert READERS[FIXTURE_FORMAT[name]].sniff(base.read_sample(FIXTURES / name))


@pytest.mark.parametrize(("fmt", "name"), [(f, n) for f in READERS for n in FIXTURE_FORMAT if FIXTURE_FORMAT[n] != f])
def test_sniff_rejects_other_formats_fixtures(fmt, name):
    assert not READERS[fmt].sniff(base.read_sample(FIXTURES / name))


@pytest.mark.parametrize("fmt", sorted(READERS))
@pytest.mark.parametrize("sample", [CONTRACT_CSV, CONTRACT_JSONL], ids=["csv", "jsonl"])
def test_sniff_rejects_contract_shaped_csv_and_json_lines(fmt, sample):
    assert not READERS[fmt].sniff(sample)


@pytest.mark.parametrize("name", sorted(FIXTURE_FORMAT))
def test_values_use_contract_input_names_of_their_event_type_and_are_text(name):
    for record in ok(read(name)):
        allowed = {f.input_name for f in EVENT_TYPES[record.event_type].input_fields}
        assert set(record.values) <= allowed, (record.line, set(record.values) - allowed)
        assert all(isinstance(v, str) for v in record.values.values())


@pytest.mark.parametrize("name", sorted(FIXTURE_FORMAT))
def test_event_times_are_in_a_form_the_loader_accepts(name):
    for record in ok(read(name)):
        assert any(form.match(record.values["occurred_at"]) for form in TIME_FORMS), record.values["occurred_at"]


def test_no_phone_number_email_or_ip_ever_reaches_extra():
    personal = re.compile(r"\+1202555\d{4}|[\w.]+@example\.(com|org|net)|\b\d{1,3}(\.\d{1,3}){3}\b")
    leaks = [(name, r.line, m.group(0)) for name, r in all_records()
             if (m := personal.search(json.dumps(r.extra, ensure_ascii=False)))]
    assert leaks == []


def test_every_record_has_an_event_type_or_a_reason():
    assert all(r.event_type or r.reason for _, r in all_records())


def test_records_that_cannot_be_understood_say_on_which_line():
    for _, record in all_records():
        if record.reason and not record.reason.startswith("invalid UTF-8"):
            assert f"line {record.line}" in record.reason


def test_sendgrid_invalid_utf8_inside_a_pretty_array_only_spoils_its_element(tmp_path):
    text = (
        b'[\n  {"event": "processed", "timestamp": 1790848800, "sg_event_id": "a"},\n'
        b'  {"event": "delivered", "timestamp": 1790848801, "sg_event_id": "b", "note": "\xff"},\n'
        b'  {"event": "delivered", "timestamp": 1790848802, "sg_event_id": "c"}\n]\n'
    )
    first, bad, last = sendgrid.read(write(tmp_path, "events.json", text))
    assert (first.values["event_id"], last.values["event_id"]) == ("a", "c")
    assert bad.line == 3 and bad.reason.startswith("invalid UTF-8 on line 3")


def test_receipt_dates_in_the_three_lengths_smscs_send():
    assert base.compact_to_iso("2610011030") == "2026-10-01T10:30:00"          # YYMMDDhhmm (SMPP 3.4)
    assert base.compact_to_iso("261001103012") == "2026-10-01T10:30:12"        # YYMMDDhhmmss
    assert base.compact_to_iso("20261001103012") == "2026-10-01T10:30:12"      # YYYYMMDDhhmmss
    assert base.compact_to_iso("202610011030") == "2026-10-01T10:30:00"        # not YYMMDDhhmmss: YYYYMMDDhhmm
    assert base.compact_to_iso("2610011") is None and base.compact_to_iso("26100110301") is None
    line = "id:0123456789 sub:001 dlvrd:001 submit date:20261001103000 done date:20261001103512 stat:DELIVRD err:000 text:Hi"
    record = smpp.record_from_line(1, line)
    assert record.reason is None and record.values["occurred_at"] == "2026-10-01T10:35:12"


@pytest.mark.parametrize("stat, status", [("BUFFRED", "accepted"), ("FAILED", "failed"), ("DELETD", "undelivered"),
                                          ("EXPIRD", "expired"), ("DELIVRD", "delivered")])
def test_receipt_states_smscs_send_beyond_the_smpp_list(stat, status):
    line = f"id:0123456789 sub:001 dlvrd:000 submit date:2610011030 done date:2610011035 stat:{stat} err:000 text:Hi"
    assert smpp.record_from_line(1, line).values["status"] == status


def test_a_kannel_dlr_url_that_names_the_type_status_as_the_user_guide_does():
    record = kannel.record_from_line(1, "2026-10-01T10:00:03Z\tmessage_id=m-1&status=1&smsc=a&id=k-1")
    assert (record.event_type, record.values["status"], record.values["message_id"]) == ("deliveries", "delivered", "m-1")


# Bearerbox's access log as Kannel 1.4.5 on this machine writes it (default access-log-format,
# access-log-time = gmt): a send, its two reports, and an inbound message.
ACCESS_LOG = """\
2026-12-01 18:16:35 Log begins
2026-12-01 18:16:36 Sent SMS [SMSC:fake] [SVC:nudgelab] [ACT:] [BINF:] [FID:] [META:] [from:12345] [to:+12025550100] [flags:-1:0:-1:-1:31] [msg:23:Your parcel ships today] [udh:0:]
2026-12-01 18:16:36 Receive DLR [SMSC:fake] [SVC:nudgelab] [ACT:] [BINF:] [FID:] [META:?orig_msg?dlr_mask=31&] [from:12345] [to:+12025550100] [flags:-1:-1:-1:-1:8] [msg:4:ACK/] [udh:0:]
2026-12-01 18:16:36 Receive DLR [SMSC:fake] [SVC:nudgelab] [ACT:] [BINF:] [FID:cac81285-3123-41f4-b0fe-996c13441ae2] [META:?orig_msg?dlr_mask=31&] [from:12345] [to:+12025550100] [flags:-1:-1:-1:-1:1] [msg:0:] [udh:0:]
2026-12-01 18:16:39 Receive SMS [SMSC:fake] [SVC:] [ACT:] [BINF:] [FID:] [META:] [from:+12025550100] [to:12345] [flags:-1:0:-1:-1:-1] [msg:11:STOP please] [udh:0:]
2026-12-01 18:16:42 Log ends
"""


def test_bearerbox_access_log_reports_and_inbound_messages_are_read(tmp_path):
    path = write(tmp_path, "access.log", ACCESS_LOG)
    assert kannel.sniff(ACCESS_LOG)
    records = list(kannel.read(path))
    assert [r.line for r in records] == [2, 3, 4, 5]            # the Log begins/ends markers are not records
    sent, ack, delivered, stop = records
    assert "'Sent SMS' is neither" in sent.reason
    assert ack.event_type == "deliveries" and "without the SMSC's message id" in ack.reason
    assert delivered.reason is None and delivered.values == {
        "channel": "sms", "status": "delivered", "provider_status": "1", "provider": "fake", "country": "US",
        "provider_message_id": "cac81285-3123-41f4-b0fe-996c13441ae2", "occurred_at": "2026-12-01T18:16:36"}
    assert "+12025550100" not in json.dumps(delivered.extra)
    assert (stop.event_type, stop.values["keyword"], stop.values["sender"], stop.values["occurred_at"]) == (
        "replies", "STOP", "+12025550100", "2026-12-01T18:16:39")


def test_bearerbox_access_log_of_kannel_1_4_with_an_smpp_receipt_and_a_ucs2_reply():
    # Kannel 1.4 has no FID/META fields; the SMPP receipt gives the provider id and the state
    dlr = ("2026-10-01 10:35:12 Receive DLR [SMSC:smsc-a] [SVC:tester] [ACT:] [BINF:] [from:12345] [to:+447700900123] "
           "[flags:-1:0:-1:0:2] [msg:94:id:0A1B2C3D sub:001 dlvrd:000 submit date:2610011030 done date:2610011035 "
           "stat:UNDELIV err:001 text:Your bill] [udh:0:]")
    record = kannel.record_from_line(1, dlr)
    assert record.reason is None
    assert (record.values["status"], record.values["provider_message_id"], record.values["error_code"]) == (
        "undelivered", "0A1B2C3D", "001")
    # coding 2 (UCS-2): bb_alog writes the text as hex
    mo = ("2026-10-01 10:40:00 Receive SMS [SMSC:smsc-a] [SVC:] [ACT:] [BINF:] [FID:] [META:] [from:+447700900123] "
          "[to:12345] [flags:-1:2:-1:0:-1] [msg:8:00530054004F0050] [udh:0:]")
    reply = kannel.record_from_line(2, mo)
    assert (reply.values["text"], reply.values["keyword"]) == ("STOP", "STOP")


@pytest.mark.parametrize("value, expected", [
    ("14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0", "14c5d75ce93.dfd.64b469"),
    ("Yy2sx1lkQgONwNIOXIjjqg.filterdrecv-p3mdw1-756b745b58-kmzbs-18-5F5FC3A7-1A.0", "Yy2sx1lkQgONwNIOXIjjqg"),
    ("filterdrecv-p3mdw1-756b745b58-kmzbs-18-5F5FC3A7-1A.0", None),     # only the filter server's part
    ("filter0001.16648.5515E0B88.0", None),
    ("recvd-7f5b8c9d-abcde-1-5F5FC3A7-2.0", None),
])
def test_a_sendgrid_message_id_is_the_send_s_id_and_a_server_prefix_names_no_message(value, expected):
    event = {"event": "delivered", "timestamp": 1790848800, "sg_event_id": "e1", "sg_message_id": value}
    record = sendgrid.record_from_event(1, json.dumps(event), event)
    assert record.values.get("provider_message_id") == expected
    if expected is None:   # two such events of different messages must not share an id
        assert record.extra["sg_message_id"] == value
