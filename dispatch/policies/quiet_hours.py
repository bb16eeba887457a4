"""Quiet hours in the recipient's local time (default 21:00–08:00): a message due inside them is
deferred to the next allowed instant, never dropped.

Where is the recipient? Their profile's time zone when it is a real IANA zone; else their phone
number's zone when the number maps to exactly one; else every zone the number (or, without a
number, their country) may be in, and then an instant is allowed only if it is allowed in all of
them — the most conservative reading. A recipient with no zone, no number and no country cannot be
placed: that is an exclusion with its reason, not a guess.

Everything works on instants (UTC) and converts with ``zoneinfo``, so a daylight-saving change is
handled by the zone rules: on the spring-forward night 08:00 local is simply an hour closer in UTC;
on the fall-back night the first of two equal wall times is taken.

The planner calls these per distinct (zones, due instant) — a few hundred pairs for a million users
— and the worker calls them again before each send, so a message delayed by an outage does not go
out at midnight.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import phonenumbers
from phonenumbers import timezone as number_zones

from dispatch.campaign import QuietHours

UNKNOWN_ZONE = "Etc/Unknown"
MAX_ROUNDS = 8          # deferring in one zone can land in another's quiet hours; this bounds the search


@lru_cache(maxsize=4096)
def zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return None


@lru_cache(maxsize=1)
def _known() -> frozenset[str]:
    return frozenset(available_timezones())


@lru_cache(maxsize=1_000_000)
def zones_for_number(e164: str) -> tuple[str, ...]:
    """The zones ``phonenumbers`` places a number in (empty when it cannot place it)."""
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return ()
    found = tuple(z for z in number_zones.time_zones_for_number(parsed) if z != UNKNOWN_ZONE and zone(z))
    return found


@lru_cache(maxsize=512)
def zones_for_country(country: str) -> tuple[str, ...]:
    """Every zone the numbers of a country (ISO code) map to: where someone there may be."""
    code = phonenumbers.country_code_for_region((country or "").upper())
    if not code:
        return ()
    prefix = str(code)
    from phonenumbers.tzdata import TIMEZONE_DATA

    found: set[str] = set()
    for key, names in TIMEZONE_DATA.items():
        if key.startswith(prefix) and len(key) <= len(prefix) + 3:
            found.update(n for n in names if n != UNKNOWN_ZONE and zone(n))
    return tuple(sorted(found))


def recipient_zones(user_timezone: str | None, phone: str | None, country: str | None) -> tuple[str, ...]:
    """The zone(s) whose quiet hours apply to a recipient (see the module docstring)."""
    if user_timezone and user_timezone in _known():
        return (user_timezone,)
    if phone:
        found = zones_for_number(phone)
        if found:
            return found
    if country:
        return zones_for_country(country)
    return ()


def _quiet_at(local: time, quiet: QuietHours) -> bool:
    if quiet.start > quiet.end:  # wraps midnight: 21:00-08:00
        return local >= quiet.start or local < quiet.end
    return quiet.start <= local < quiet.end


def _next_allowed_in(instant: datetime, zone_name: str, quiet: QuietHours) -> datetime:
    tz = zone(zone_name)
    local = instant.astimezone(tz)
    if not _quiet_at(local.time().replace(tzinfo=None), quiet):
        return instant
    day: date = local.date()
    if quiet.start > quiet.end and local.time().replace(tzinfo=None) >= quiet.start:
        day = day + timedelta(days=1)
    # the end of quiet hours on that local day, as an instant (zoneinfo resolves gaps and folds)
    return datetime.combine(day, quiet.end, tzinfo=tz).astimezone(timezone.utc)


@lru_cache(maxsize=200_000)
def next_allowed(instant: datetime, zones: tuple[str, ...], quiet: QuietHours) -> datetime | None:
    """The first instant at or after ``instant`` outside quiet hours in every zone of ``zones``;
    None when the zones have no allowed hour in common."""
    current = instant
    for _ in range(MAX_ROUNDS):
        moved = max((_next_allowed_in(current, z, quiet) for z in zones), default=current)
        if moved == current:
            return current
        current = moved
    return None


def is_quiet(instant: datetime, zones: tuple[str, ...], quiet: QuietHours) -> bool:
    return next_allowed(instant, zones, quiet) != instant
