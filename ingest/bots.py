"""Which clicks are not people: link previews, scanners and crawlers, known by their user agents.

Bot clicks are flagged and kept (``is_bot``, ``bot_reason``); only human clicks count in rates.
The patterns are matched case-insensitively by DuckDB in the loader; the first matching group
names the reason.
"""

from __future__ import annotations

import re

# (reason, regular expression) pairs, most specific first.
BOT_PATTERNS: tuple[tuple[str, str], ...] = (
    ("link_preview", r"facebookexternalhit|facebot|whatsapp|telegrambot|slackbot|slack-imgproxy|discordbot"
                     r"|twitterbot|linkedinbot|skypeuripreview|google-pagerenderer|googleother|applebot"
                     r"|imessage|viber|snapchat|pinterestbot|redditbot|embedly|iframely|vkshare|line-poker"),
    ("security_scanner", r"proofpoint|mimecast|barracuda|safelinks|urldefense|forcepoint|symantec|zscaler"
                         r"|trendmicro|fortiguard|virustotal|checkpoint"),
    ("crawler", r"googlebot|bingbot|yandex|baiduspider|duckduckbot|ahrefs|semrush|petalbot|bytespider|gptbot"
                r"|ccbot|crawler|spider|\bbot\b|bot/|robot"),
    ("automation", r"headlesschrome|phantomjs|python-requests|python-urllib|aiohttp|curl/|wget/|go-http-client"
                   r"|java/|okhttp|libwww-perl|httpclient|node-fetch|axios/|scrapy"),
    ("prefetch", r"prefetch|preview"),
)


def bot_case_sql(column: str) -> str:
    """A SQL CASE naming the first bot reason whose pattern matches ``column`` (NULL if none)."""
    arms = " ".join(
        f"WHEN regexp_matches({column}, '{pattern}', 'i') THEN '{reason}'" for reason, pattern in BOT_PATTERNS
    )
    return f"CASE WHEN {column} IS NULL OR trim({column}) = '' THEN NULL {arms} ELSE NULL END"


_COMPILED = tuple((reason, re.compile(pattern, re.IGNORECASE)) for reason, pattern in BOT_PATTERNS)


def agent_reason(user_agent: str | None) -> str | None:
    """The same patterns in Python (the receiver's live view of a run): the first reason, or None."""
    if not user_agent or not user_agent.strip():
        return None
    return next((reason for reason, pattern in _COMPILED if pattern.search(user_agent)), None)
