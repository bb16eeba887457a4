"""Which files to read, in which format, holding which event type."""

from __future__ import annotations

import re
from pathlib import Path

from ingest.contract import EVENT_TYPES, TYPE_ALIASES
from ingest.readers.base import ReaderError, read_sample

TABULAR = ("csv", "jsonl", "parquet")
VENDORS = ("kannel", "twilio", "smpp", "sendgrid")
FORMATS = ("auto",) + TABULAR + VENDORS
_EXTENSIONS = {
    ".csv": "csv", ".tsv": "csv", ".txt": None, ".log": None,
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": None,
    ".parquet": "parquet", ".pq": "parquet",
}
SKIP_NAMES = {"ground_truth.json"}


def vendor_module(name: str):
    """The reader module for a vendor format (imported lazily: most runs need none)."""
    from ingest.readers import kannel, sendgrid, smpp, twilio

    return {"kannel": kannel, "twilio": twilio, "smpp": smpp, "sendgrid": sendgrid}[name]


def expand(paths: list[Path]) -> list[Path]:
    """Files under ``paths`` (directories walked recursively, hidden files and ground truth skipped)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and not any(p.startswith(".") for p in child.relative_to(path).parts):
                    if child.name not in SKIP_NAMES and not child.name.endswith((".tmp", ".partial")):
                        files.append(child)
        elif path.exists():
            files.append(path)
        else:
            raise ReaderError(f"{path}: no such file or directory")
    return files


def _stem_and_ext(path: Path) -> tuple[str, str]:
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    stem, dot, ext = name.rpartition(".")
    return (stem, "." + ext) if dot else (name, "")


def detect_format(path: Path, requested: str = "auto") -> str:
    """The format of ``path``: as requested, else by extension, else by content."""
    if requested != "auto":
        if requested not in FORMATS:
            raise ReaderError(f"unknown format {requested!r}; expected one of {', '.join(FORMATS)}")
        return requested
    _, ext = _stem_and_ext(path)
    by_ext = _EXTENSIONS.get(ext, None)
    if by_ext in ("parquet", "csv"):
        return by_ext
    sample = read_sample(path)
    with open(path, "rb") as handle:
        if handle.read(4) == b"PAR1":
            return "parquet"
    for vendor in VENDORS:
        if vendor_module(vendor).sniff(sample):
            return vendor
    if by_ext:
        return by_ext
    stripped = sample.lstrip()
    if stripped.startswith("{"):
        return "jsonl"
    if not stripped:
        return by_ext or "csv"
    first = stripped.splitlines()[0]
    if any(d in first for d in (",", ";", "\t")):
        return "csv"
    raise ReaderError(f"{path}: unknown format (not CSV, JSON lines, Parquet or a known vendor log); pass --format")


def type_from_name(path: Path) -> str | None:
    """The event type a file's name (or its folder's) speaks of, if any."""
    for part in (path.name, path.parent.name):
        words = re.split(r"[^a-z]+", part.lower())
        for word in words:
            if word in EVENT_TYPES:
                return word
        for word in words:
            for alias, canonical in TYPE_ALIASES.items():
                if word == alias or word == alias + "s" or word.startswith(alias):
                    return canonical
    return None
