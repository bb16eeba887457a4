"""The users: where they live, their carrier, segment, consent per channel, active hours and contacts.

One vectorised draw per attribute. Codes index the tuples in ``catalog``; text (phone, e-mail,
device token) is built as polars series because it is only needed when files are written.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from . import catalog as C
from .clock import DAY, Window
from .phones import draw_numbers
from .textgen import hex_strings


@dataclass
class Population:
    """Per-user attributes as parallel arrays (index = user number)."""

    n: int
    country: np.ndarray
    region: np.ndarray
    timezone: np.ndarray
    carrier: np.ndarray
    segment: np.ndarray
    consent: np.ndarray  # (n, 3) bool: sms, email, push
    active_start: np.ndarray
    active_end: np.ndarray
    signup: np.ndarray
    has_bill: np.ndarray
    bill_day: np.ndarray
    bill_amount: np.ndarray
    money_scale: np.ndarray
    user_id: pl.Series
    phone: pl.Series
    email: pl.Series
    device_token: pl.Series


def choose_within(group: np.ndarray, options: list[list[float]], offsets: list[int], rng: np.random.Generator) -> np.ndarray:
    """For each row pick an option of its group by the group's weights; returns global option codes."""
    u = rng.random(group.size)
    out = np.empty(group.size, dtype=np.int32)
    for g, weights in enumerate(options):
        rows = np.nonzero(group == g)[0]
        cum = np.cumsum(weights) / np.sum(weights)
        out[rows] = offsets[g] + np.minimum(np.searchsorted(cum, u[rows], side="right"), len(weights) - 1)
    return out


def draw_population(n: int, window: Window, rng: np.random.Generator) -> Population:
    """Draw ``n`` users."""
    country = rng.choice(len(C.COUNTRIES), size=n, p=_norm([c.weight for c in C.COUNTRIES])).astype(np.int16)
    region_offsets = np.cumsum([0] + [len(c.regions) for c in C.COUNTRIES]).tolist()
    carrier_offsets = np.cumsum([0] + [len(c.carriers) for c in C.COUNTRIES]).tolist()
    region = choose_within(country, [[r.weight for r in c.regions] for c in C.COUNTRIES], region_offsets, rng)
    carrier = choose_within(country, [[k.weight for k in c.carriers] for c in C.COUNTRIES], carrier_offsets, rng)
    tz_of_region = np.array([C.TIMEZONES.index(r.timezone) for r in C.REGIONS], dtype=np.int16)
    timezone = tz_of_region[region]

    segment = rng.choice(len(C.SEGMENTS), size=n, p=_norm(C.SEGMENT_WEIGHTS)).astype(np.int8)
    consent = rng.random((n, 3)) < np.array(C.SEGMENT_CONSENT)[segment]
    active_start = rng.choice(C.ACTIVE_START_HOURS, size=n, p=_norm(C.ACTIVE_START_WEIGHTS)).astype(np.int8)
    active_end = rng.choice(C.ACTIVE_END_HOURS, size=n, p=_norm(C.ACTIVE_END_WEIGHTS)).astype(np.int8)

    age = np.where(segment == 0, rng.uniform(0.5, 30, n), rng.uniform(30, 3 * 365, n))
    signup = window.start - (age * DAY).astype(np.int64)

    has_bill = rng.random(n) < 0.6
    bill_day = rng.integers(1, 29, n).astype(np.int8)
    money_scale = np.array([c.money_scale for c in C.COUNTRIES])[country]
    bill_amount = np.round(np.exp(rng.normal(np.log(C.CONVERSION_VALUE["payment"][0]), C.CONVERSION_VALUE["payment"][1], n)) * money_scale, 2)

    user_id = pl.DataFrame({"i": np.arange(1, n + 1)}).select(
        pl.concat_str(pl.lit("u"), pl.col("i").cast(pl.String).str.zfill(7)).alias("user_id")
    ).to_series()
    phone = _phones(country, rng)
    email = _emails(country, rng)
    device_token = pl.DataFrame({"a": hex_strings(n, 22, rng), "b": hex_strings(n, 64, rng)}).select(
        pl.concat_str("a", pl.lit(":APA91b"), "b").alias("device_token")
    ).to_series()
    return Population(
        n, country, region, timezone, carrier, segment, consent, active_start, active_end, signup,
        has_bill, bill_day, bill_amount, money_scale, user_id, phone, email, device_token,
    )


def _norm(weights) -> np.ndarray:
    """Weights as probabilities summing to one."""
    w = np.asarray(weights, dtype=float)
    return w / w.sum()


def _phones(country: np.ndarray, rng: np.random.Generator) -> pl.Series:
    """Unique valid E.164 mobile numbers, one per user, matching the user's country."""
    parts = []
    for code, spec in enumerate(C.COUNTRIES):
        rows = np.nonzero(country == code)[0]
        parts.append(pl.DataFrame({"row": rows, "phone": draw_numbers(spec.code, rows.size, rng)}))
    return pl.concat(parts).sort("row")["phone"]


def _emails(country: np.ndarray, rng: np.random.Generator) -> pl.Series:
    """Raw e-mail addresses like ``maria.silva123@uol.com.br`` (unique by a trailing user number)."""
    n = country.size
    first = pl.Series(C.FIRST_NAMES).gather(rng.integers(0, len(C.FIRST_NAMES), n))
    last = pl.Series(C.LAST_NAMES).gather(rng.integers(0, len(C.LAST_NAMES), n))
    sep = pl.Series([".", "", "_"]).gather(rng.choice(3, size=n, p=[0.6, 0.3, 0.1]))
    domains = [d for c in C.COUNTRIES for d in c.email_domains]
    offsets = np.cumsum([0] + [len(c.email_domains) for c in C.COUNTRIES])
    counts = np.array([len(c.email_domains) for c in C.COUNTRIES])
    pick = offsets[country] + (rng.random(n) ** 1.6 * counts[country]).astype(np.int64)
    domain = pl.Series(domains).gather(pick)
    return pl.DataFrame({"f": first, "s": sep, "l": last, "n": np.arange(1, n + 1), "d": domain}).select(
        pl.concat_str("f", "s", "l", pl.col("n").cast(pl.String), pl.lit("@"), "d").alias("email")
    ).to_series()
