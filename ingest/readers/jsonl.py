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
        except RecursionError:
            yield Record(line, text[:2000], event_type, reason="a record nested too deeply to read")
            continue
        yield record_from_object(line, text, obj, event_type)


def record_from_object(line: int, raw: str, obj: object, event_type: str | None) -> Record:
    """A Record from one parsed JSON value (an object in the contract's input names)."""
    if not isinstance(obj, dict):
        return Record(line, raw, event_type, reason=f"expected a JSON object per record, got {type(obj).__name__}")
    try:
        values = {str(k).strip().lower(): _text(v) for k, v in obj.items()}
    except RecursionError:
        return Record(line, raw[:2000], event_type, reason="a record nested too deeply to read")
    kind = values.pop("event_type", None) or event_type
    return Record(line, raw, kind, values=values)
