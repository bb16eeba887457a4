"""Reading a users file — contacts to import, or a campaign's list of users with per-user
variables: CSV (every column as text), JSON lines or Parquet, optionally gzipped, with a
``user_id`` column."""

from __future__ import annotations

from pathlib import Path

import polars as pl


class UsersFileError(ValueError):
    """The file cannot be used (one line, naming the file)."""


def read(path: Path, lower_names: bool = False) -> pl.DataFrame:
    """The file's rows; column names stripped (and lower-cased when asked)."""
    if not path.is_file():
        raise UsersFileError(f"{path}: no such file")
    name = path.name.lower().removesuffix(".gz")
    try:
        if name.endswith((".parquet", ".pq")):
            data = pl.read_parquet(path)
        elif name.endswith((".jsonl", ".ndjson")):
            data = pl.read_ndjson(path, infer_schema_length=None)
        else:
            data = pl.read_csv(path, infer_schema=False)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise UsersFileError(f"{path}: cannot be read ({str(exc).splitlines()[0]})") from exc
    data = data.rename({c: (c.strip().lower() if lower_names else c.strip()) for c in data.columns})
    if "user_id" not in data.columns:
        raise UsersFileError(f"{path}: no user_id column (columns: {', '.join(data.columns)})")
    return data
