"""Write the event frames as CSV, JSON lines or Parquet with polars (deterministic bytes for equal input)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

EXTENSIONS = {"csv": "csv", "jsonl": "jsonl", "parquet": "parquet"}


def file_name(kind: str, fmt: str) -> str:
    """``<type>.<ext>`` for an event type and format."""
    return f"{kind}.{EXTENSIONS[fmt]}"


def write_frame(frame: pl.DataFrame, path: Path, fmt: str) -> None:
    """Write one frame: CSV with a header (empty = null), one JSON object per line, or zstd Parquet."""
    if fmt == "csv":
        frame.write_csv(path)
    elif fmt == "jsonl":
        frame.write_ndjson(path)
    elif fmt == "parquet":
        frame.write_parquet(path, compression="zstd", statistics=True)
    else:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(EXTENSIONS)}")
