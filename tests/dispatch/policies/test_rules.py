"""Consent, dedupe, frequency caps and priority, each on a small hand-made frame whose answer is
known without running the code."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl

from dispatch.campaign import FrequencyCap
from dispatch.policies import ORDER, consent, dedupe, frequency_caps, priority

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def people() -> pl.DataFrame:
    return pl.DataFrame({
        "user_id": ["a", "b", "c", "d", "e", "f"],
        "consent_sms": [True, True, False, True, True, None],
        "consent_email": [True, False, True, True, False, True],
        "consent_push": [False] * 6,
        "is_opted_out": [False, True, False, False, False, False],
        "phone": ["+12025550101", "+12025550102", "+12025550103", None, "+12025550105", "+12025550106"],
        "email": ["a@x.test", "b@x.test", "c@x.test", "d@x.test", None, "f@x.test"],
        "push_token": [None] * 6,
    })


def no_suppressions() -> pl.DataFrame:
    return pl.DataFrame(schema={"user_id": pl.String, "channel": pl.String})


def test_the_documented_order_is_consent_first_and_priority_last():
    assert ORDER == ("consent", "dedupe", "frequency_caps", "quiet_hours", "priority")


def test_consent_gives_each_user_the_first_channel_they_can_receive():
    kept, reasons, per_channel = consent.choose_channel(people(), ("sms", "email"), no_suppressions())
    chosen = dict(kept.select("user_id", "channel").iter_rows())
    # a: sms; b opted out of sms (STOP) -> email refused consent -> excluded; c: no sms consent -> email;
    # d: no phone -> email; e: sms; f: sms consent unknown (null = no) -> email
    assert chosen == {"a": "sms", "c": "email", "d": "email", "e": "sms", "f": "email"}
    assert dict(kept.select("user_id", "address").iter_rows())["d"] == "d@x.test"
    assert reasons == {"opted_out": 1}
    assert per_channel == {"sms": 2, "email": 3}


def test_consent_reasons_follow_the_most_preferred_channel():
    kept, reasons, _ = consent.choose_channel(people(), ("sms",), no_suppressions())
    assert sorted(kept["user_id"]) == ["a", "e"]
    assert reasons == {"opted_out": 1, "no_consent": 2, "no_address": 1}


def test_the_suppression_list_blocks_one_channel_or_every_channel():
    suppressions = pl.DataFrame({"user_id": ["a", "e"], "channel": ["sms", "*"]})
    kept, reasons, _ = consent.choose_channel(people(), ("sms", "email"), suppressions)
    chosen = dict(kept.select("user_id", "channel").iter_rows())
    assert chosen["a"] == "email"          # opted out of SMS only
    assert "e" not in chosen               # out of everything; e has no e-mail anyway
    assert reasons["opted_out"] == 2


def test_dedupe_drops_who_the_campaign_already_reached_on_that_channel():
    frame = pl.DataFrame({"user_id": ["a", "a", "b", "c"], "channel": ["sms", "email", "sms", "sms"],
                          "dedupe_value": ["o1", "o1", "o2", "o3"]})
    reached = pl.DataFrame({"user_id": ["a", "c"], "channel": ["sms", "sms"], "dedupe_value": ["o1", "o9"]})
    kept, dropped = dedupe.drop_reached(frame, reached, ["user_id", "channel"])
    assert dropped == 2 and kept.select("user_id", "channel").rows() == [("a", "email"), ("b", "sms")]
    # with a dedupe key, c's new order o3 is a different message from o9
    kept, dropped = dedupe.drop_reached(frame, reached, ["user_id", "channel", "dedupe_value"])
    assert dropped == 1 and sorted(kept["user_id"]) == ["a", "b", "c"]


def test_frequency_cap_counts_every_channel_in_the_window_and_only_the_category():
    frame = pl.DataFrame({"user_id": ["a", "b", "c"]})
    history = pl.DataFrame({
        "user_id": ["a", "a", "a", "b", "b", "b", "b", "c", "c", "c"],
        "message_id": ["1", "2", "3", "4", "5", "6", "6", "7", "8", "9"],
        "category": ["promotional"] * 3 + ["promotional"] * 2 + ["transactional"] + ["transactional"]
                    + ["promotional"] * 3,
        "at": [NOW - timedelta(days=1), NOW - timedelta(days=2), NOW - timedelta(days=6),   # a: 3 in 7 days
               NOW - timedelta(days=1), NOW - timedelta(days=3), NOW - timedelta(days=1), NOW - timedelta(days=1),
               NOW - timedelta(days=1), NOW - timedelta(days=8), NOW - timedelta(days=9)],  # c: 1 in window
    })
    kept, capped = frequency_caps.over_cap(frame, history, FrequencyCap(3, 7), "promotional", NOW)
    # a is at the cap; b has 2 promotional (the transactional one and its duplicate row do not count); c has 1
    assert capped == 1 and sorted(kept["user_id"]) == ["b", "c"]
    kept, capped = frequency_caps.over_cap(frame, history, FrequencyCap(2, 7), "promotional", NOW)
    assert capped == 2 and kept["user_id"].to_list() == ["c"]
    kept, capped = frequency_caps.over_cap(frame, history, None, "promotional", NOW)
    assert capped == 0 and kept.height == 3


def _existing(rows):
    return pl.DataFrame(rows, schema={"user_id": pl.String, "message_id": pl.String, "at": pl.Datetime("us", "UTC"),
                                      "priority": pl.Int64, "movable": pl.Boolean, "conflict_action": pl.String,
                                      "conflict_window_s": pl.Float64}, orient="row")


def test_a_higher_priority_message_nearby_defers_the_new_lower_one_to_its_window_end():
    frame = pl.DataFrame({"user_id": ["a", "b"], "due_at": [NOW, NOW]}).with_columns(pl.col("due_at").dt.cast_time_unit("us"))
    existing = _existing([("a", "bill", NOW + timedelta(hours=1), 9, False, "defer", 4 * 3600.0),
                          ("b", "far", NOW + timedelta(hours=10), 9, False, "defer", 4 * 3600.0)])
    out = priority.resolve(frame, 2, timedelta(hours=4), "defer", existing)
    due = dict(out.frame.select("user_id", "due_at").iter_rows())
    assert due["a"] == NOW + timedelta(hours=5) and due["b"] == NOW
    assert out.deferred == 1 and out.dropped == 0
    dropped = priority.resolve(frame, 2, timedelta(hours=4), "drop", existing)
    assert dropped.dropped == 1 and dropped.frame["user_id"].to_list() == ["b"]


def test_a_new_higher_priority_message_moves_or_cancels_queued_lower_ones_but_never_a_sent_one():
    frame = pl.DataFrame({"user_id": ["a", "b", "c"], "due_at": [NOW] * 3}).with_columns(pl.col("due_at").dt.cast_time_unit("us"))
    existing = _existing([
        ("a", "promo-a", NOW + timedelta(minutes=30), 1, True, "defer", 6 * 3600.0),
        ("b", "promo-b", NOW - timedelta(minutes=30), 1, True, "drop", 6 * 3600.0),
        ("c", "promo-c", NOW - timedelta(minutes=10), 1, False, "defer", 6 * 3600.0),   # already handed over
    ])
    out = priority.resolve(frame, 9, timedelta(hours=1), "defer", existing)
    assert out.frame.height == 3 and out.deferred == 0       # the new one does not yield to lower ones
    assert out.defer_existing == {"promo-a": NOW + timedelta(hours=6)}
    assert out.cancel_existing == ["promo-b"]


def test_equal_priorities_do_not_conflict():
    frame = pl.DataFrame({"user_id": ["a"], "due_at": [NOW]}).with_columns(pl.col("due_at").dt.cast_time_unit("us"))
    existing = _existing([("a", "same", NOW, 5, True, "defer", 3600.0)])
    out = priority.resolve(frame, 5, timedelta(hours=1), "defer", existing)
    assert out.deferred == 0 and not out.defer_existing and not out.cancel_existing
