"""A JSON document holding an array of records in the contract's shape (an API export, say).

Streamed: the array is read element by element from a growing buffer, so a file of millions of
records never sits in memory as one string. Each record keeps the line it starts on. An element
that is not an object is quarantined with its reason; a document that stops being JSON part-way
quarantines the rest of the file as one record with the reason (the records before it land).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from ingest.contract import Record
from ingest.readers.base import ReaderError, open_binary
from ingest.readers.jsonl import record_from_object

FORMAT = "json"
CHUNK = 1 << 20
NEWLINE = b"\n"
_DECODER = json.JSONDecoder()


def sniff(sample: str) -> bool:
    return sample.lstrip("\ufeff \t\r\n").startswith("[")


def read(path: Path, event_type: str | None = None) -> Iterator[Record]:
    with open_binary(path) as handle:
        reader = _Elements(handle)
        yield from reader.records(event_type)


class _Elements:
    """Walks a top-level JSON array over a byte stream, keeping line numbers."""

    def __init__(self, handle) -> None:
        self.handle = handle
        self.text = ""
        self.pos = 0
        self.line = 1  # the line of self.text[self.counted]
        self.counted = 0
        self.eof = False
        self._pending = b""

    def _more(self) -> bool:
        if self.eof:
            return False
        data = self._pending + self.handle.read(CHUNK)
        if not data:
            self.eof = True
            return False
        if data.startswith(b"\xef\xbb\xbf") and not self.text and self.pos == 0:
            data = data[3:]
        try:  # keep an incomplete UTF-8 sequence for the next read
            decoded = data.decode("utf-8")
            self._pending = b""
        except UnicodeDecodeError as exc:
            if exc.start >= len(data) - 3 and not exc.reason.startswith("invalid"):
                decoded, self._pending = data[:exc.start].decode("utf-8"), data[exc.start:]
            else:
                near = self._line_at(len(self.text)) + data[:exc.start].count(NEWLINE)
                raise ReaderError(f"invalid UTF-8 near line {near}: re-export the file as UTF-8") from exc
        # drop what has been consumed, so the buffer holds one chunk and the element being read
        self._line_at(self.pos)
        self.text = self.text[self.pos:] + decoded
        self.pos = self.counted = 0
        return True

    def _skip(self, allow_comma: bool) -> None:
        while True:
            while self.pos < len(self.text) and (self.text[self.pos].isspace() or (allow_comma and self.text[self.pos] == ",")):
                self.pos += 1
            if self.pos < len(self.text) or not self._more():
                return

    def _line_at(self, pos: int) -> int:
        """The line of ``self.text[pos]`` (positions only move forward between chunks)."""
        if pos > self.counted:
            self.line += self.text.count("\n", self.counted, pos)
            self.counted = pos
        return self.line

    def records(self, event_type: str | None) -> Iterator[Record]:
        self._skip(False)
        if self.pos >= len(self.text) or self.text[self.pos] != "[":
            raise ReaderError("not a JSON array of records (expected '[' at the start)")
        self.pos += 1
        while True:
            self._skip(True)
            if self.pos >= len(self.text):
                yield Record(self._line_at(self.pos), "", event_type,
                             reason="the JSON array is not closed: the file ends before its ']'")
                return
            if self.text[self.pos] == "]":
                return
            start_line = self._line_at(self.pos)
            while True:
                try:
                    value, end = _DECODER.raw_decode(self.text, self.pos)
                    break
                except RecursionError:
                    yield Record(start_line, self.text[self.pos:self.pos + 2000], event_type,
                                 reason="a record nested too deeply to read; the records after it cannot be "
                                        "found either: fix or re-export the file from here on")
                    return
                except ValueError as exc:
                    if self._more():
                        continue
                    yield Record(start_line, self.text[self.pos:self.pos + 2000], event_type,
                                 reason=f"the JSON cannot be read from line {start_line} on ({exc.msg}); "
                                        "the records before it were read: fix or re-export the rest")
                    return
            raw = self.text[self.pos:end]
            self.pos = end
            yield record_from_object(start_line, raw, value, event_type)
