"""Vectorised text building blocks: random hex identifiers, label lookups, sequential ids, IPv4 text.

Building strings row by row in Python would dominate the generator's run time; these helpers
build whole columns at once with numpy bytes and polars string kernels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl


def hex_strings(n: int, length: int, rng: np.random.Generator, upper: bool = False) -> pl.Series:
    """``n`` random lowercase (or uppercase) hex strings of ``length`` characters."""
    if n == 0:
        return pl.Series([], dtype=pl.String)
    nbytes = (length + 1) // 2
    text = rng.bytes(n * nbytes).hex()
    if length % 2:
        raw = np.frombuffer(text.encode("ascii"), dtype=f"S{2 * nbytes}")
        series = pl.Series(raw).cast(pl.String).str.slice(0, length)
    else:
        series = pl.Series(np.frombuffer(text.encode("ascii"), dtype=f"S{length}")).cast(pl.String)
    return series.str.to_uppercase() if upper else series


def labels(values: Sequence[str | None], codes: np.ndarray) -> pl.Series:
    """Text for integer ``codes`` into ``values`` (a code of -1 gives null)."""
    table = pl.Series(list(values) + [None], dtype=pl.String)
    idx = np.where(codes < 0, len(values), codes).astype(np.int64)
    return table.gather(idx)


def sequential_ids(prefix: str, n: int, start: int = 1) -> pl.Series:
    """``prefix1, prefix2, ...`` (e.g. ``snd-42-1``) for ``n`` rows."""
    return pl.DataFrame({"i": np.arange(start, start + n, dtype=np.int64)}).select(
        pl.concat_str(pl.lit(prefix), pl.col("i").cast(pl.String)).alias("id")
    ).to_series()


def ipv4(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> pl.Series:
    """Dotted-quad IPv4 text from four octet arrays."""
    frame = pl.DataFrame({"a": a, "b": b, "c": c, "d": d})
    return frame.select(
        pl.concat_str([pl.col(k).cast(pl.String) for k in "abcd"], separator=".").alias("ip")
    ).to_series()
