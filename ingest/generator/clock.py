"""Time for the generator: the scenario window, per-time-zone UTC offsets (DST-aware) and ISO text.

Times are int64 seconds since the Unix epoch (UTC) throughout. Offsets come from a table of
hourly UTC offsets per time zone built once with ``zoneinfo``, so converting millions of local
wall-clock times is a vectorised lookup that still honours the October DST changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

HOUR = 3600
DAY = 86400
DEFAULT_START = datetime(2026, 10, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Window:
    """The scenario's half-open window [start, end) plus an offset table covering some margin."""

    start: int
    end: int
    days: int
    table_t0: int
    offsets: np.ndarray  # shape (n_timezones, n_hours), seconds east of UTC

    @property
    def start_weekday(self) -> int:
        """Monday=0 weekday of the first UTC day (also the first local day's weekday)."""
        return datetime.fromtimestamp(self.start, timezone.utc).weekday()

    def offset_at(self, tz: np.ndarray, utc: np.ndarray) -> np.ndarray:
        """UTC offset in seconds of time zone codes ``tz`` at UTC instants ``utc``."""
        idx = np.clip((utc - self.table_t0) // HOUR, 0, self.offsets.shape[1] - 1)
        return self.offsets[tz, idx]

    def local_to_utc(self, tz: np.ndarray, local: np.ndarray) -> np.ndarray:
        """UTC instants for naive local wall times (seconds, as if local were UTC) in zones ``tz``."""
        guess = local - self.offset_at(tz, local)
        return local - self.offset_at(tz, guess)

    def local_hour(self, tz: np.ndarray, utc: np.ndarray) -> np.ndarray:
        """Local hour of day (0..23) of UTC instants in zones ``tz``."""
        return ((utc + self.offset_at(tz, utc)) // HOUR) % 24


def make_window(start: datetime, days: int, timezones: tuple[str, ...]) -> Window:
    """Build the window and the hourly offset table (two days before start to six days after end)."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    t_start = int(start.timestamp())
    t_end = t_start + days * DAY
    t0 = t_start - 2 * DAY
    n_hours = (t_end + 6 * DAY - t0) // HOUR
    table = np.zeros((len(timezones), n_hours), dtype=np.int64)
    base = datetime.fromtimestamp(t0, timezone.utc)
    for z, name in enumerate(timezones):
        zone = ZoneInfo(name)
        # Offsets only change on hour boundaries for these zones; sample each hour.
        table[z] = [int((base + timedelta(hours=h)).astimezone(zone).utcoffset().total_seconds()) for h in range(n_hours)]
    return Window(t_start, t_end, days, t0, table)


def iso(seconds: np.ndarray) -> str:
    """One instant as ISO-8601 UTC text (for the ground truth)."""
    return datetime.fromtimestamp(int(seconds), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_series(name: str, utc: np.ndarray, offset: np.ndarray | None = None) -> pl.Series:
    """ISO-8601 text for UTC instants: "...Z", or local time with "+HH:MM" where ``offset`` (seconds) is set.

    ``offset`` holds, per row, either -1 (write UTC with "Z") or an offset in seconds east of UTC in
    [-14 h, +14 h] (write the same instant as local time with that offset).
    """
    frame = pl.DataFrame({"t": utc.astype(np.int64)})
    if offset is None:
        return frame.select(pl.from_epoch("t", time_unit="s").dt.strftime("%Y-%m-%dT%H:%M:%SZ").alias(name)).to_series()
    shift = np.where(offset == -1, 0, offset).astype(np.int64)
    codes = np.where(offset == -1, -1, offset // 60).astype(np.int32)
    mapping = {-1: "Z"}
    for minutes in np.unique(codes).tolist():
        if minutes != -1:
            sign = "+" if minutes >= 0 else "-"
            mapping[minutes] = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    frame = pl.DataFrame({"t": utc.astype(np.int64) + shift, "c": codes})
    return frame.select(
        pl.concat_str(
            pl.from_epoch("t", time_unit="s").dt.strftime("%Y-%m-%dT%H:%M:%S"),
            pl.col("c").replace_strict(mapping, return_dtype=pl.String),
        ).alias(name)
    ).to_series()
