"""Frequency caps across channels and campaigns: at most ``max`` messages of the campaign's
category per user in the last ``days`` days, counting what was already sent (the warehouse and
ops.sqlite, each message once) and what is queued. Promotional campaigns are capped by default
(3 per 7 days); a transactional campaign only when it says so."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from dispatch.campaign import FrequencyCap


def over_cap(frame: pl.DataFrame, history: pl.DataFrame, cap: FrequencyCap | None, category: str,
             now: datetime) -> tuple[pl.DataFrame, int]:
    """(users still under the cap, how many were at it). ``history`` has user_id, message_id,
    category and at (sent or due, UTC)."""
    if cap is None or history.is_empty():
        return frame, 0
    since = now - timedelta(days=cap.days)
    counts = (history.filter((pl.col("category") == category) & (pl.col("at") >= since))
              .group_by("user_id").agg(pl.col("message_id").n_unique().alias("_in_window")))
    full = counts.filter(pl.col("_in_window") >= cap.max_messages).select("user_id")
    kept = frame.join(full, on="user_id", how="anti")
    return kept, frame.height - kept.height
