"""Consent and opt-out per channel, and the channel each user gets.

A user can receive a channel when their profile consents to it (``consent_sms`` also covers RCS,
which goes to the phone number), they have not opted out (a STOP reply in the warehouse, or a row
in ops.sqlite's suppression list for that channel or for every channel), and their contact has an
address for it. The campaign lists channels in preference order; each user gets the first one
they can receive. A user who can receive none is excluded with the reason of their most
preferred channel: ``opted_out`` before ``no_consent`` before ``no_address``.
"""

from __future__ import annotations

from collections import Counter

import polars as pl

CONSENT_COLUMN = {"sms": "consent_sms", "rcs": "consent_sms", "email": "consent_email", "push": "consent_push"}
ADDRESS_COLUMN = {"sms": "phone", "rcs": "phone", "email": "email", "push": "push_token"}
PHONE_CHANNELS = ("sms", "rcs")


def choose_channel(frame: pl.DataFrame, channels: tuple[str, ...], suppressions: pl.DataFrame) -> tuple[pl.DataFrame, Counter, Counter]:
    """(users with ``channel`` and ``address``, exclusions by reason, users per channel chosen).

    ``frame`` needs user_id, the consent columns, is_opted_out and the address columns;
    ``suppressions`` has user_id and channel (``*`` for every channel)."""
    everywhere = suppressions.filter(pl.col("channel") == "*")["user_id"].unique()
    checks = []
    for ch in channels:
        per_channel = suppressions.filter(pl.col("channel") == ch)["user_id"].unique()
        suppressed = pl.col("user_id").is_in(per_channel.implode()) | pl.col("user_id").is_in(everywhere.implode())
        if ch in PHONE_CHANNELS:
            suppressed = suppressed | pl.col("is_opted_out").fill_null(False)
        reason = (pl.when(suppressed).then(pl.lit("opted_out"))
                  .when(~pl.col(CONSENT_COLUMN[ch]).fill_null(False)).then(pl.lit("no_consent"))
                  .when(pl.col(ADDRESS_COLUMN[ch]).is_null()).then(pl.lit("no_address"))
                  .otherwise(pl.lit(None, pl.String)))
        checks.append(reason.alias(f"_why_{ch}"))
    frame = frame.with_columns(checks)
    chosen = pl.lit(None, pl.String)
    for ch in reversed(channels):  # the first channel without a reason wins
        chosen = pl.when(pl.col(f"_why_{ch}").is_null()).then(pl.lit(ch)).otherwise(chosen)
    frame = frame.with_columns(chosen.alias("channel"))
    excluded = frame.filter(pl.col("channel").is_null())
    reasons = Counter(dict(excluded.group_by(f"_why_{channels[0]}").len().iter_rows()))
    kept = frame.filter(pl.col("channel").is_not_null())
    address = pl.lit(None, pl.String)
    for ch in channels:
        address = pl.when(pl.col("channel") == ch).then(pl.col(ADDRESS_COLUMN[ch])).otherwise(address)
    kept = kept.with_columns(address.alias("address")).drop([f"_why_{ch}" for ch in channels])
    per_channel = Counter(dict(kept.group_by("channel").len().iter_rows()))
    return kept, reasons, per_channel
