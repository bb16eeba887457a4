"""When each message goes: now, at a fixed instant, or at each user's learned best hour — always
inside allowed hours — and, for journeys, each later step a fixed delay after the previous one.

Times are computed per distinct (zones, hour) and joined back, so a million users cost a few
hundred zone conversions. ``zone_key`` is the recipient's zones joined with ``|`` (see
``policies.quiet_hours.recipient_zones``); the best hour is read in the first of them.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import lru_cache

import polars as pl

from dispatch.campaign import QuietHours, Schedule
from dispatch.policies.quiet_hours import next_allowed, zone


class TimingError(ValueError):
    """A schedule that cannot be met (one line)."""


@lru_cache(maxsize=100_000)
def next_local_hour(after: datetime, zone_name: str, hour: int) -> datetime:
    """The first instant at or after ``after`` whose wall time in ``zone_name`` is ``hour``:00."""
    tz = zone(zone_name) or timezone.utc
    local = after.astimezone(tz)
    for days in range(0, 3):
        candidate = datetime.combine(local.date() + timedelta(days=days), datetime.min.time().replace(hour=hour), tzinfo=tz)
        instant = candidate.astimezone(timezone.utc)
        if instant >= after:
            return instant
    raise AssertionError("an hour of the day recurs within three days")


def event_due(frame: pl.DataFrame, schedule: Schedule, now: datetime) -> pl.Series:
    """Each user's own event time (the users file's ``schedule.column``) plus the delay, never
    before now. A missing column, or a value that is not an instant with its zone, is an error that
    names the user: a reminder must not go out at a guessed time."""
    if schedule.column not in frame.columns:
        raise TimingError(f"the users file has no {schedule.column!r} column for schedule.after "
                          f"(columns: {', '.join(c for c in frame.columns if not c.startswith('_'))})")
    due, problems = [], []
    for user, text in frame.select("user_id", schedule.column).iter_rows():
        try:
            at = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00")) if text not in (None, "") else None
        except ValueError:
            at = None
        if at is None or at.tzinfo is None:
            if len(problems) < 5:
                problems.append(f"user {user}: {schedule.column}={text!r} is not an ISO 8601 instant with its zone")
            due.append(None)
            continue
        due.append(max(at.astimezone(timezone.utc) + schedule.delay, now))
    if problems:
        raise TimingError(f"{sum(d is None for d in due)} users have no usable {schedule.column}: " + "; ".join(problems))
    return pl.Series("due_at", due, pl.Datetime("us", "UTC"))


def first_due(frame: pl.DataFrame, schedule: Schedule, now: datetime) -> pl.DataFrame:
    """``frame`` with ``due_at`` (UTC) for the first step. Needs zone_key and best_send_hour."""
    if schedule.mode == "at":
        if schedule.at < now - timedelta(minutes=5):
            raise TimingError(f"the schedule's time {schedule.at.isoformat()} is in the past: give a later time, or now")
        return frame.with_columns(pl.lit(max(schedule.at, now)).dt.cast_time_unit("us").alias("due_at"))
    if schedule.mode == "now":
        return frame.with_columns(pl.lit(now).dt.cast_time_unit("us").alias("due_at"))
    if schedule.mode == "after":
        return frame.with_columns(event_due(frame, schedule, now))
    hours = frame.select("zone_key", pl.col("best_send_hour").fill_null(schedule.fallback_hour).cast(pl.Int64).alias("_hour"))
    keys = hours.unique()
    due = [next_local_hour(now, (key or "UTC").split("|")[0], hour) for key, hour in keys.iter_rows()]
    table = keys.with_columns(pl.Series("due_at", due, pl.Datetime("us", "UTC")))
    return (frame.with_columns(hours["_hour"])
            .join(table, left_on=["zone_key", "_hour"], right_on=["zone_key", "_hour"], how="left", nulls_equal=True)
            .drop("_hour"))


def defer_quiet(frame: pl.DataFrame, quiet: QuietHours, may_pass: bool) -> tuple[pl.DataFrame, int, int]:
    """(``frame`` with ``due_at`` moved out of quiet hours, how many moved, how many have no
    allowed hour at all — those get a null ``due_at``)."""
    if may_pass:
        return frame, 0, 0
    keys = frame.select("zone_key", "due_at").unique()
    moved = []
    for key, due in keys.iter_rows():
        zones = tuple(key.split("|")) if key else ()
        moved.append(next_allowed(due, zones, quiet) if zones else None)
    table = keys.with_columns(pl.Series("_allowed", moved, pl.Datetime("us", "UTC")))
    out = frame.join(table, on=["zone_key", "due_at"], how="left", nulls_equal=True)
    changed = out.filter(pl.col("_allowed").is_not_null() & (pl.col("_allowed") != pl.col("due_at"))).height
    impossible = out.filter(pl.col("_allowed").is_null()).height
    return out.with_columns(pl.col("_allowed").alias("due_at")).drop("_allowed"), changed, impossible


def journey_due(previous_sent_at: datetime, after: timedelta) -> datetime:
    """A later step's due time: the previous step's send plus the step's delay."""
    return previous_sent_at + after
