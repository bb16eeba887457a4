"""Priority and conflicts: two messages to one person too close together (across channels and
campaigns) — the lower-priority one yields.

A conflict is a pair of messages to the same user whose times are closer than the yielding
message's conflict window (its campaign's ``conflict.window_hours``). The yielding message is
the one with the lower priority (equal priorities do not conflict: frequency caps govern those).
It is deferred to the window's end after the other message, or dropped, as its campaign's
``conflict.action`` says. A new message can yield to one already queued or sent; a queued message
of lower priority (not yet being sent) yields to a new one, and is deferred or cancelled in
ops.sqlite when the new campaign is queued. A message already handed to a provider never moves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import polars as pl


@dataclass
class Resolution:
    """What the conflicts changed: the new messages (some deferred), how many new ones were
    dropped, and what happens to queued ones that yield (message id → new due time, or cancel)."""

    frame: pl.DataFrame
    dropped: int = 0
    deferred: int = 0
    defer_existing: dict[str, object] = field(default_factory=dict)
    cancel_existing: list[str] = field(default_factory=list)


def resolve(frame: pl.DataFrame, priority: int, window: timedelta, action: str, existing: pl.DataFrame) -> Resolution:
    """``frame``: user_id, due_at; ``existing``: user_id, message_id, at, priority, movable,
    conflict_action, conflict_window_s."""
    if existing.is_empty():
        return Resolution(frame)
    pairs = frame.select("user_id", "due_at").join(existing, on="user_id", how="inner")
    gap = (pl.col("at") - pl.col("due_at")).abs()
    higher = pairs.filter((pl.col("priority") > priority) & (gap < window))
    yield_to = higher.group_by("user_id").agg(pl.col("at").max().alias("_blocker_at"))
    out = Resolution(frame)
    if not yield_to.is_empty():
        if action == "drop":
            kept = frame.join(yield_to, on="user_id", how="anti")
            out.dropped = frame.height - kept.height
            out.frame = kept
        else:
            out.frame = (frame.join(yield_to, on="user_id", how="left")
                         .with_columns(pl.when(pl.col("_blocker_at").is_not_null())
                                       .then(pl.max_horizontal("due_at", pl.col("_blocker_at") + window))
                                       .otherwise(pl.col("due_at")).alias("due_at"))
                         .drop("_blocker_at"))
            out.deferred = yield_to.height
    lower = pairs.filter((pl.col("priority") < priority) & pl.col("movable")
                         & (gap < pl.duration(seconds=pl.col("conflict_window_s"))))
    for message_id, due, how, seconds in lower.select("message_id", "due_at", "conflict_action",
                                                       "conflict_window_s").iter_rows():
        if how == "drop":
            out.cancel_existing.append(message_id)
        else:
            target = due + timedelta(seconds=seconds)
            previous = out.defer_existing.get(message_id)
            out.defer_existing[message_id] = max(previous, target) if previous else target
    out.cancel_existing = sorted(set(out.cancel_existing))
    for message_id in out.cancel_existing:
        out.defer_existing.pop(message_id, None)
    return out
