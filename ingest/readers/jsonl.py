"""JSON Lines in the contract's shape: one JSON object per line (the spool's format too)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from ingest.contract import Record
from ingest.readers.base import numbered_lines

FORMAT = "jsonl"


def sniff(sample: str) -> bool:
    first = next((line for line in sample.splitlines() if line.strip()), "")
    return first.lstrip().startswith("{")


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def read(path: Path, event_type: str | None = None) -> Iterator[Record]:
    """One Record per line; every key is kept (unknown ones end in ``extra`` at staging)."""
    for line, text, raw in numbered_lines(path):
        if text is None:
            yield Record(line, raw, event_type, reason=f"invalid UTF-8 on line {line}: re-export the file as UTF-8")
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            yield Record(line, text, event_type, reason=f"not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(obj, dict):
            yield Record(line, text, event_type, reason=f"expected a JSON object per line, got {type(obj).__name__}")
            continue
        values = {str(k).strip().lower(): _text(v) for k, v in obj.items()}
        kind = values.pop("event_type", None) or event_type
        yield Record(line, text, kind, values=values)
