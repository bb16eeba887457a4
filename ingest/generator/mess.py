"""The mess of real logs that is not an incident: zone offsets in timestamps and duplicated callbacks.

(Late receipts and one gateway's clock skew are part of receipt timing, in ``engagement``.)
Duplicates repeat an earlier delivery row exactly (same event_id, same values) but arrive later,
so the file's order (by arrival) puts them out of order.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from .clock import HOUR, Window

LOCAL_OFFSET_SHARE = 0.02
DUPLICATE_SHARE = 0.005


def local_offsets(tz: np.ndarray, t: np.ndarray, window: Window, rng: np.random.Generator,
                  share: float = LOCAL_OFFSET_SHARE) -> np.ndarray:
    """Per row -1 (write as UTC "Z") or, for a ``share`` of rows, the user's UTC offset in seconds at ``t``."""
    local = rng.random(t.size) < share
    return np.where(local, window.offset_at(tz, t), -1)


def duplicate_callbacks(frame: pl.DataFrame, arrival: np.ndarray, rng: np.random.Generator,
                        share: float = DUPLICATE_SHARE) -> tuple[pl.DataFrame, int]:
    """Append exact copies of a ``share`` of rows, each arriving 30 s to 2 h after its original; sort by arrival.

    Returns the frame in arrival order and the number of duplicates added.
    """
    n = frame.height
    picks = np.nonzero(rng.random(n) < share)[0]
    retry = rng.integers(30, 2 * HOUR, picks.size)
    keys = np.concatenate([arrival, arrival[picks] + retry])
    rows = np.concatenate([np.arange(n), picks])
    order = np.argsort(keys, kind="stable")
    return frame[rows[order]], int(picks.size)
