"""The file provider: messages appended as JSON lines to ``NUDGELAB_HOME/outbox/<channel>.jsonl``
— the embedded default (``make demo`` sends through it) and what an operator can read to see
exactly what would have gone out.

The recipient is masked (``+1202•••••58``, ``r•••@example.com``): raw addresses live only in
ops.sqlite. Each line is flushed and fsync'd before ``send`` returns, so a line present means the
message was handed over; ``lookup`` finds it again after a crash, which settles a send whose
outcome the crash left open.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from dispatch.providers.base import Accepted, Outgoing


def mask(address: str) -> str:
    """A recipient as the file shows it: enough to recognise, not enough to contact."""
    if "@" in address:
        local, _, domain = address.partition("@")
        return f"{local[:1]}•••@{domain}"
    if address.startswith("+") and len(address) > 7:
        return address[:5] + "•" * (len(address) - 7) + address[-2:]
    return address[:4] + "•••"


@dataclass
class FileProvider:
    folder: Path
    rate_per_second: float | None = None
    name: str = "file"
    fixed_path: Path | None = None      # one file for every channel (the operators' alert log)
    masked: bool = True                 # False only for operators' own destinations
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _known: set[str] | None = field(default=None, repr=False)
    _checked: set[str] = field(default_factory=set, repr=False)

    def path(self, channel: str) -> Path:
        return self.fixed_path if self.fixed_path is not None else self.folder / f"{channel}.jsonl"

    def send(self, message: Outgoing) -> Accepted:
        line = {"message_id": message.message_id, "channel": message.channel,
                "to": mask(message.to) if self.masked else message.to,
                "campaign_id": message.campaign_id, "subject": message.subject, "body": message.body,
                "encoding": message.encoding,
                "sent_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")}
        for key in ("title", "card", "quick_replies", "payload"):
            if message.extra.get(key) is not None:
                line[key] = message.extra[key]
        text = json.dumps(line, ensure_ascii=False, default=str) + "\n"
        with self._lock:
            path = self.path(message.channel)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                if message.channel not in self._checked:
                    # a line torn by a crash must not swallow the next one: end it first
                    size = os.fstat(fd).st_size
                    if size and os.pread(fd, 1, size - 1) != b"\n":
                        os.write(fd, b"\n")
                    self._checked.add(message.channel)
                os.write(fd, text.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
            if self._known is not None:
                self._known.add(message.message_id)
        return Accepted(f"file:{message.message_id}", f"appended to {self.path(message.channel).name}")

    def lookup(self, message_id: str) -> Accepted | None:
        with self._lock:
            if self._known is None:
                self._known = set()
                paths = [self.fixed_path] if self.fixed_path is not None else sorted(self.folder.glob("*.jsonl"))
                for path in (p for p in paths if p.exists()):
                    with open(path, encoding="utf-8") as handle:
                        for raw in handle:
                            try:
                                self._known.add(json.loads(raw)["message_id"])
                            except (ValueError, KeyError, TypeError):
                                continue  # a torn last line from a crash is not a send
            found = message_id in self._known
        return Accepted(f"file:{message_id}", "found in the outbox file") if found else None

    def close(self) -> None:
        pass
