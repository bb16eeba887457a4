"""SMS encoding and segment count of a text, as a handset and an SMSC count them.

GSM-7 (3GPP TS 23.038): 160 septets in one segment, 153 per segment of a concatenated message;
the extension table's characters (``^ { } \\ [ ~ ] | €`` and form feed) take two septets (an
escape and the character) and are never split across segments. Any character outside GSM-7
(Chinese, Cyrillic, emoji, curly quotes) switches the whole message to UCS-2: 70 UTF-16 code units
in one segment, 67 per segment; a character outside the BMP (most emoji) is a surrogate pair of two
units, never split across segments.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\x0c")
GSM7 = GSM7_BASIC | GSM7_EXTENSION
SINGLE = {"gsm7": 160, "ucs2": 70}
PART = {"gsm7": 153, "ucs2": 67}


@dataclass(frozen=True)
class Encoded:
    encoding: str     # gsm7 or ucs2
    units: int        # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int
    characters: int   # what a person would count
    first_non_gsm: str | None = None  # the character that forced UCS-2

    @property
    def per_segment(self) -> int:
        return SINGLE[self.encoding] if self.segments <= 1 else PART[self.encoding]


def _unit_sizes(text: str) -> tuple[str, list[int], str | None]:
    """(encoding, size of each character in units, the first character outside GSM-7)."""
    sizes: list[int] = []
    for char in text:
        if char in GSM7_BASIC:
            sizes.append(1)
        elif char in GSM7_EXTENSION:
            sizes.append(2)
        else:
            return "ucs2", [2 if ord(c) > 0xFFFF else 1 for c in text], char
    return "gsm7", sizes, None


def _segments(sizes: list[int], single: int, part: int) -> int:
    total = sum(sizes)
    if total <= single:
        return 1 if sizes else 0
    segments, used = 1, 0
    for size in sizes:  # greedy: a two-unit character that does not fit opens the next segment
        if used + size > part:
            segments += 1
            used = 0
        used += size
    return segments


def encode(text: str) -> Encoded:
    """How ``text`` goes over SMS: encoding, units, segments."""
    chars = set(text)
    if chars <= GSM7_BASIC:
        # the common case, without a loop in Python: one septet per character
        n = len(text)
        return Encoded("gsm7", n, (1 if n else 0) if n <= SINGLE["gsm7"] else -(-n // PART["gsm7"]), n)
    if chars <= GSM7 or max(text) > "\uffff":
        encoding, sizes, culprit = _unit_sizes(text)
        return Encoded(encoding, sum(sizes), _segments(sizes, SINGLE[encoding], PART[encoding]), len(text), culprit)
    # UCS-2 within the BMP: one unit per character
    n = len(text)
    culprit = next(c for c in text if c not in GSM7)
    return Encoded("ucs2", n, 1 if n <= SINGLE["ucs2"] else -(-n // PART["ucs2"]), n, culprit)
