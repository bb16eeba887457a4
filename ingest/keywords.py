"""The reply-keyword grammar, one for the whole project: what an inbound message means.

``keyword(text)`` is what a reply record's ``keyword`` holds: an opt-out, opt-in or help word when
the message says one (as its whole content, or inside a short sentence: "please stop texting me"
is STOP; "OPT OUT" is OPTOUT), else the message's first word, upper-cased. ``meaning(keyword)``
says what it asks for. The receiver acts on it at once (suppress, restore, answer with help);
ingestion stores the keyword; ``dim_users`` reads the meanings from the dbt seed
``reply_keywords``, which a test keeps equal to these lists.
"""

from __future__ import annotations

import re

OPT_OUT = ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "SPAM")
OPT_IN = ("START", "UNSTOP", "YES")
HELP = ("HELP", "INFO")
SHORT = 6  # words: a longer message is a conversation, not a command ("I'll stop by the shop at the end…")

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


def _words(text: str) -> list[str]:
    return [w.upper() for w in _WORD.findall(text)]


def keyword(text: str | None) -> str | None:
    """The keyword of an inbound message (see the module docstring)."""
    if not text:
        return None
    words = _words(text)
    if not words:
        return None
    joined = [a + b for a, b in zip(words, words[1:])]  # OPT OUT → OPTOUT
    if len(words) <= SHORT:
        for vocabulary in (OPT_OUT, OPT_IN, HELP):
            for word in (*joined, *words):
                if word in vocabulary:
                    if vocabulary is OPT_IN and word == "YES" and words[0] != "YES":
                        continue  # "yes" inside a sentence is an answer, not an opt-in
                    return word
    return words[0]


def meaning(word: str | None) -> str | None:
    """opt_out, opt_in, help, or None for any other keyword."""
    if word in OPT_OUT:
        return "opt_out"
    if word in OPT_IN:
        return "opt_in"
    if word in HELP:
        return "help"
    return None
