"""Which files to read, in which format, holding which event type; the one reader registry."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from ingest.contract import EVENT_TYPES, TYPE_ALIASES
from ingest.readers.base import ReaderError, read_sample

TABULAR = ("csv", "jsonl", "json", "parquet")
VENDORS = ("kannel", "twilio", "smpp", "sendgrid")
PYTHON_READERS = ("jsonl", "json", "definitions") + VENDORS  # formats read record by record in Python
FORMATS = ("auto",) + TABULAR + ("definitions",) + VENDORS
_EXTENSIONS = {
    ".csv": "csv", ".tsv": "csv", ".txt": None, ".log": None,
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json",
    ".parquet": "parquet", ".pq": "parquet",
    ".yml": "definitions", ".yaml": "definitions",
}
SKIP_NAMES = {"ground_truth.json"}


def reader_module(name: str):
    """The reader module of a record-by-record format (imported lazily: most runs need few)."""
    from ingest.readers import definitions, json_array, jsonl, kannel, sendgrid, smpp, twilio

    return {"jsonl": jsonl, "json": json_array, "definitions": definitions, "kannel": kannel, "twilio": twilio,
            "smpp": smpp, "sendgrid": sendgrid}[name]


def expand(paths: list[Path]) -> tuple[list[Path], list[str]]:
    """Files under ``paths`` (directories walked recursively, hidden files and ground truth skipped),
    and one error line for each path that is missing or not a regular file (a FIFO would block a
    reader for ever; a device or socket is not data)."""
    files: list[Path] = []
    errors: list[str] = []
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if any(p.startswith(".") for p in child.relative_to(path).parts) or child.is_dir():
                    continue
                if child.name in SKIP_NAMES or child.name.endswith((".tmp", ".partial")):
                    continue
                problem = _not_regular(child)
                if problem:
                    errors.append(problem)
                else:
                    files.append(child)
        elif os.path.lexists(path):
            problem = _not_regular(path)
            if problem:
                errors.append(problem)
            else:
                files.append(path)
        else:
            errors.append(f"{path}: no such file or directory")
    return files, errors


def _not_regular(path: Path) -> str | None:
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return f"{path}: cannot read ({exc.strerror or exc})"
    if stat.S_ISREG(mode):
        return None
    kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")
    return f"{path}: is {kind}, not a file of records: skipped"


def _stem_and_ext(path: Path) -> tuple[str, str]:
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    stem, dot, ext = name.rpartition(".")
    return (stem, "." + ext) if dot else (name, "")


def detect_format(path: Path, requested: str = "auto") -> str:
    """The format of ``path``: as requested, else by extension, else by content. Binary data is
    refused here, in one line, rather than read as an empty CSV."""
    if requested != "auto":
        if requested not in FORMATS:
            raise ReaderError(f"unknown format {requested!r}; expected one of {', '.join(FORMATS)}")
        return requested
    _, ext = _stem_and_ext(path)
    by_ext = _EXTENSIONS.get(ext, None)
    if by_ext in ("parquet", "definitions"):
        return by_ext
    if type_from_name(path) == "experiments" and ext in (".csv", ".json"):
        return "definitions"  # experiment definitions keep nested arms and metrics: their own reader
    with open(path, "rb") as handle:
        if handle.read(4) == b"PAR1":
            return "parquet"
    sample = read_sample(path)
    if "\x00" in sample:
        raise ReaderError(f"{path}: unknown format: binary data (NUL bytes), not text records; pass --format if it is Parquet")
    if by_ext == "csv":
        return by_ext
    for vendor in VENDORS:
        if reader_module(vendor).sniff(sample):
            return vendor
    stripped = sample.lstrip("\ufeff \t\r\n")
    if stripped.startswith("["):
        return "json"
    if by_ext:
        return "jsonl" if by_ext == "json" and stripped.startswith("{") else by_ext
    if stripped.startswith("{"):
        return "jsonl"
    if not stripped:
        return "csv"
    first = stripped.splitlines()[0]
    if any(d in first for d in (",", ";", "\t")):
        return "csv"
    raise ReaderError(f"{path}: unknown format (not CSV, JSON lines, a JSON array, Parquet or a known vendor log); "
                      "pass --format")


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
