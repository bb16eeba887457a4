"""Dedupe: a campaign never reaches the same person twice on a channel (per journey step, and per
value of the campaign's ``dedupe_key`` when it has one, e.g. one message per order number).

"Reached" means anything sent or possibly sent: a message of the campaign in ops.sqlite that is
queued, being sent, sent or of unknown outcome (a cancelled or dead one never reached anyone), and
— for campaigns without a dedupe key — the campaign's messages in the warehouse (sent by an
earlier installation or another system under the same campaign id).
"""

from __future__ import annotations

import polars as pl


def drop_reached(frame: pl.DataFrame, reached: pl.DataFrame, keys: list[str]) -> tuple[pl.DataFrame, int]:
    """(the users of ``frame`` not in ``reached`` on ``keys``, how many were dropped)."""
    if reached.is_empty():
        return frame, 0
    kept = frame.join(reached.select(keys).unique(), on=keys, how="anti", nulls_equal=True)
    return kept, frame.height - kept.height
