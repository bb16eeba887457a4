"""Quiet hours in the recipient's local time, across daylight-saving changes and for numbers that
map to several zones. Expected instants are worked out by hand from the zones' UTC offsets."""

from datetime import datetime, time, timezone

import pytest

from dispatch.campaign import QuietHours
from dispatch.policies.quiet_hours import next_allowed, recipient_zones, zones_for_number

QUIET = QuietHours()  # 21:00-08:00


def utc(*args):
    return datetime(*args, tzinfo=timezone.utc)


@pytest.mark.parametrize("due, zone, expected", [
    # New York, spring forward (8 March 2026, 02:00 EST -> 03:00 EDT): 00:00 EST is quiet; 08:00 EDT is 12:00 UTC
    (utc(2026, 3, 8, 5, 0), "America/New_York", utc(2026, 3, 8, 12, 0)),
    # New York, fall back (1 November 2026): 01:30 EDT (05:30 UTC) is quiet; 08:00 EST is 13:00 UTC
    (utc(2026, 11, 1, 5, 30), "America/New_York", utc(2026, 11, 1, 13, 0)),
    # Berlin, spring forward (29 March 2026): 23:00 CET on the 28th; 08:00 CEST on the 29th is 06:00 UTC
    (utc(2026, 3, 28, 22, 0), "Europe/Berlin", utc(2026, 3, 29, 6, 0)),
    # Berlin, the day before: 08:00 CET is 07:00 UTC
    (utc(2026, 3, 27, 22, 0), "Europe/Berlin", utc(2026, 3, 28, 7, 0)),
    # allowed as it is: noon in New York in June
    (utc(2026, 6, 1, 16, 0), "America/New_York", utc(2026, 6, 1, 16, 0)),
    # 08:00 local exactly is allowed; 21:00 local exactly is quiet (to 08:00 the next day)
    (utc(2026, 6, 1, 12, 0), "America/New_York", utc(2026, 6, 1, 12, 0)),
    (utc(2026, 6, 2, 1, 0), "America/New_York", utc(2026, 6, 2, 12, 0)),
    # Kolkata (UTC+5:30): 06:00 local is 00:30 UTC; 08:00 local is 02:30 UTC
    (utc(2026, 12, 1, 0, 30), "Asia/Kolkata", utc(2026, 12, 1, 2, 30)),
])
def test_a_message_in_quiet_hours_waits_for_the_local_morning(due, zone, expected):
    assert next_allowed(due, (zone,), QUIET) == expected


def test_a_number_with_several_zones_waits_until_it_is_allowed_in_all():
    zones = zones_for_number("+61412345678")  # an Australian mobile: every Australian zone
    assert {"Australia/Perth", "Australia/Sydney", "Indian/Cocos"} <= set(zones)
    # 23:00 UTC on 1 Dec: Sydney (UTC+11) is at 10:00, but Cocos (UTC+6:30) at 05:30 and Perth (UTC+8)
    # at 07:00. The westernmost, Cocos, reaches 08:00 at 01:30 UTC, when Lord Howe (UTC+11) is at 12:30.
    assert next_allowed(utc(2026, 12, 1, 23, 0), zones, QUIET) == utc(2026, 12, 2, 1, 30)


def test_zones_with_no_common_allowed_hour_have_no_time():
    # London (UTC+0), Shanghai (UTC+8) and Los Angeles (UTC-8) in winter: 08-21 local is
    # [08,21), [00,13) and [16,05) in UTC, which have no hour in common
    assert next_allowed(utc(2026, 12, 1, 12, 0), ("Europe/London", "Asia/Shanghai", "America/Los_Angeles"), QUIET) is None


def test_a_daytime_quiet_window_works_too():
    lunch = QuietHours(time(12, 0), time(14, 0))
    assert next_allowed(utc(2026, 6, 1, 11, 30), ("Europe/London",), lunch) == utc(2026, 6, 1, 13, 0)  # 12:30 BST
    assert next_allowed(utc(2026, 6, 1, 10, 59), ("Europe/London",), lunch) == utc(2026, 6, 1, 10, 59)


def test_the_profile_zone_wins_then_the_number_then_the_country():
    assert recipient_zones("Europe/Lisbon", "+4915112345678", "DE") == ("Europe/Lisbon",)
    assert recipient_zones(None, "+4915112345678", "DE") == ("Europe/Berlin",)
    assert recipient_zones("Not/AZone", "+4915112345678", "DE") == ("Europe/Berlin",)
    assert recipient_zones(None, None, "DE") == ("Europe/Berlin",)
    assert "America/New_York" in recipient_zones(None, None, "US") and len(recipient_zones(None, None, "US")) > 3
    assert recipient_zones(None, None, None) == ()
