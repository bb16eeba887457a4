"""Quick replies: the choices a message offers ("Reply 1 to confirm, 2 to reschedule"), stored with
the message so that an inbound reply can be matched to its meaning.

``text(choices)`` is the sentence a template can show (``{{ quick_replies_text }}``);
``match(reply, choices)`` the meaning of what a recipient sent back, tolerant of case, spaces and
trailing punctuation ("1.", " yes!"), or None.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from dispatch.campaign import QuickReply

_EDGES = re.compile(r"^[\s\"'.,!?()\[\]-]+|[\s\"'.,!?()\[\]-]+$")


def as_json(choices: Sequence[QuickReply]) -> list[dict[str, str]]:
    return [{"reply": c.reply, "meaning": c.meaning} for c in choices]


def text(choices: Sequence[QuickReply]) -> str:
    """``Reply 1 to confirm, 2 to reschedule``."""
    if not choices:
        return ""
    parts = [f"{c.reply} to {c.meaning.replace('_', ' ')}" for c in choices]
    return "Reply " + ", ".join(parts)


def normalise(reply: str) -> str:
    return _EDGES.sub("", reply or "").upper()


def match(reply: str, choices: Sequence[QuickReply | dict]) -> str | None:
    """The meaning of ``reply`` among ``choices`` (QuickReply or {"reply", "meaning"}), else None."""
    wanted = normalise(reply)
    for choice in choices:
        key, meaning = (choice.reply, choice.meaning) if isinstance(choice, QuickReply) else (choice["reply"], choice["meaning"])
        if normalise(key) == wanted:
            return meaning
    return None
