"""Tracked links: each ``{{ link('name') }}`` in a message becomes a short link on the receiver,
``{base}/l/{code}``, one code per message × link, redirecting to the campaign's URL with the
campaign's parameters added (``utm_source=nudgelab``, ``utm_medium`` = channel, ``utm_campaign``,
``utm_content`` = variant, ``nl_mid`` = our message id, so a landing page's dwell beacon and a
conversion can name the message).

Codes are derived, not drawn: a keyed hash (the installation's hash key) of message id and link
name, so planning the same message again gives the same code, and codes cannot be guessed or
walked. 64 bits: at a million messages with two links each the chance of any collision is ~1e-7,
and the links table's primary key refuses one rather than mix two messages up.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
DEFAULT_BASE = "http://127.0.0.1:8600"


def code_for(key: bytes, message_id: str, link_name: str) -> str:
    """The short code of one link of one message (11 characters of base 62)."""
    number = int.from_bytes(hmac.new(key, f"{message_id}\x00{link_name}".encode(), hashlib.sha256).digest()[:8], "big")
    out = []
    for _ in range(11):
        number, digit = divmod(number, 62)
        out.append(_ALPHABET[digit])
    return "".join(out)


def short_url(base: str, code: str) -> str:
    return f"{base.rstrip('/')}/l/{code}"


def deep_link(url: str, *, campaign_id: str, channel: str, variant: str, message_id: str) -> str:
    """``url`` with the campaign's parameters (those the URL already sets are kept as they are)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {k for k, _ in query}
    added = [(k, v) for k, v in (("utm_source", "nudgelab"), ("utm_medium", channel), ("utm_campaign", campaign_id),
                                 ("utm_content", variant), ("nl_mid", message_id)) if k not in present]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query + added), parts.fragment))
