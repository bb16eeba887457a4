"""Opening DuckDB files, with one-line errors when the file's storage format is not this DuckDB's.

DuckDB 2.0 reads files written by 0.9 and later (storage versions 64 and up) and keeps writing
them in their own format; DuckDB 1.x cannot read a file 2.0 created. A file from a newer DuckDB
than the installed one, from a DuckDB older than 0.9, or one that is not a DuckDB database at
all is refused by DuckDB with a paragraph; here it becomes one line that says which DuckDB
wrote it (the header records it) and what to do.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

import duckdb

MAGIC = b"DUCK"
_VERSION_REFUSED = re.compile(
    r"storage version number (\d+), but we can only read storage versions between (\d+) and (\d+)")


class StorageError(RuntimeError):
    """A database file this DuckDB cannot open; the message is one actionable line."""


@dataclass(frozen=True)
class Header:
    storage_version: int
    written_by: str | None  # the DuckDB release that created the file, as its header records it


def read_header(path: Path) -> Header | None:
    """The storage version and creating DuckDB release from a file's main header, or None."""
    try:
        with open(path, "rb") as handle:
            block = handle.read(116)
    except OSError:
        return None
    if len(block) < 20 or block[8:12] != MAGIC:
        return None
    version = struct.unpack("<Q", block[12:20])[0]
    desc = block[52:84].split(b"\0", 1)[0].decode("ascii", errors="replace") if len(block) >= 84 else ""
    return Header(version, desc or None)


def _what_to_do(role: str) -> str:
    if role == "snapshot":
        return "run `nudgelab build` to publish a snapshot this DuckDB can read"
    return ("move it aside, re-ingest the sources and run `nudgelab build --full-refresh`, "
            "or open it with the DuckDB that wrote it and EXPORT DATABASE")


def explain(path: Path, exc: duckdb.Error, role: str = "warehouse") -> str:
    """One line for a DuckDB refusal to open ``path`` (``role``: warehouse or snapshot)."""
    text = str(exc)
    first = text.splitlines()[0] if text else type(exc).__name__
    header = read_header(path)
    mine = f"DuckDB {duckdb.__version__}"
    refused = _VERSION_REFUSED.search(text)
    if refused:
        version, low, high = (int(g) for g in refused.groups())
        who = f"DuckDB {header.written_by}" if header and header.written_by else "another DuckDB"
        if version > high:
            return (f"{path} was written by a newer DuckDB ({who}, storage version {version}) than {mine} reads "
                    f"(storage versions {low}-{high}): run `make setup` to install the locked DuckDB, "
                    f"or {_what_to_do(role)}")
        return (f"{path} was written by a DuckDB older than 0.9 (storage version {version}; {mine} reads "
                f"{low}-{high}): {_what_to_do(role)}")
    if "not a valid DuckDB database file" in text or (path.exists() and header is None and path.stat().st_size):
        return f"{path} is not a DuckDB database: {_what_to_do(role)}"
    if "Corrupt database file" in text or "checksum" in text:
        return f"{path} is damaged ({first}): {_what_to_do(role)}"
    return f"cannot open {path}: {first}"


def open_database(path: Path, *, read_only: bool = False, role: str = "warehouse") -> duckdb.DuckDBPyConnection:
    """duckdb.connect, with a StorageError carrying one line when the file cannot be opened as a
    database of this DuckDB. A lock held by another process is re-raised as it is (the caller
    knows who the other writers are)."""
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        if "Conflicting lock" in str(exc):
            raise
        raise StorageError(explain(path, exc, role)) from exc
    except duckdb.Error as exc:
        raise StorageError(explain(path, exc, role)) from exc
