"""What every reader shares: opening files (gzip transparently), numbered lines, time formats.

A reader is a module with ``FORMAT`` (its name), ``sniff(sample: str) -> bool`` (does this text
look like mine?) and ``read(path, event_type=None) -> Iterator[Record]``. Readers never decide
whether a record is acceptable: they only translate the source's vocabulary into the contract's
(see ``ingest.contract.Record``) and set ``Record.reason`` when a record cannot be understood.
"""

from __future__ import annotations

import gzip
import io
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

GZIP_MAGIC = b"\x1f\x8b"


class ReaderError(Exception):
    """A whole file cannot be read (missing, unknown format, not text). One line, actionable."""


def open_binary(path: Path) -> io.BufferedIOBase:
    """Open ``path`` for reading bytes, unwrapping gzip when the file starts with its magic."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError as exc:
        raise ReaderError(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise ReaderError(f"{path}: is a directory") from exc
    if handle.peek(2)[:2] == GZIP_MAGIC:
        handle.close()
        return gzip.open(path, "rb")  # type: ignore[return-value]  (closing it closes the file)
    return handle


def read_sample(path: Path, size: int = 65536) -> str:
    """The first ``size`` bytes of a file as text (undecodable bytes replaced), for sniffing."""
    with open_binary(path) as handle:
        try:
            data = handle.read(size)
        except (OSError, EOFError) as exc:
            raise ReaderError(f"{path}: cannot read ({exc})") from exc
    return data.decode("utf-8", errors="replace").lstrip("\ufeff")


def numbered_lines(path: Path) -> Iterator[tuple[int, str | None, str]]:
    """Yield ``(line_number, text_or_None, raw_repr)`` for each non-blank line.

    ``text`` is None when the line is not valid UTF-8; ``raw_repr`` is then the line with the bad
    bytes escaped, so that quarantine keeps a faithful copy. A UTF-8 BOM and CRLF endings are
    accepted.
    """
    with open_binary(path) as handle:
        for number, data in enumerate(handle, start=1):
            if number == 1 and data.startswith(b"\xef\xbb\xbf"):
                data = data[3:]
            data = data.rstrip(b"\r\n")
            if not data.strip():
                continue
            try:
                yield number, data.decode("utf-8"), data.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield number, None, data.decode("utf-8", errors="backslashreplace") + f"  [invalid UTF-8 at byte {exc.start}]"


_DIGITS = re.compile(r"^\d{10}(?:\d{2}(?:\d{2})?)?$")


def _valid(iso: str) -> bool:
    try:
        datetime.fromisoformat(iso)
    except ValueError:
        return False
    return True


def compact_to_iso(value: str) -> str | None:
    """``YYMMDDhhmm``, ``YYMMDDhhmmss`` or ``YYYYMMDDhhmmss`` (SMPP and Twilio done dates; SMSCs
    send all three) as a naive ISO string; twelve digits that are no valid ``YYMMDDhhmmss`` are
    read as ``YYYYMMDDhhmm``.

    The result has no zone: the loader applies the operator's ``--timezone`` or quarantines it.
    Returns None when the value is not in one of these forms.
    """
    text = value.strip()
    if not _DIGITS.match(text):
        return None
    d = text
    readings = {10: [f"20{d[0:2]}-{d[2:4]}-{d[4:6]}T{d[6:8]}:{d[8:10]}:00"],
                12: [f"20{d[0:2]}-{d[2:4]}-{d[4:6]}T{d[6:8]}:{d[8:10]}:{d[10:12]}",
                     f"{d[0:4]}-{d[4:6]}-{d[6:8]}T{d[8:10]}:{d[10:12]}:00"],
                14: [f"{d[0:4]}-{d[4:6]}-{d[6:8]}T{d[8:10]}:{d[10:12]}:{d[12:14]}"]}[len(d)]
    return next((iso for iso in readings if _valid(iso)), readings[0])
