"""Twilio's request signature (``X-Twilio-Signature``): HMAC-SHA1, keyed with the account's auth
token, over the URL Twilio called followed by every POST parameter's name and value, sorted by
name; base64. Twilio signs the public URL it was given, so the receiver checks against
``NUDGELAB_RECEIVER_URL`` + the path and query when that is set (behind a proxy the URL the
receiver sees differs), else the URL as received."""

from __future__ import annotations

import base64
import hashlib
import hmac


def signature(token: str, url: str, params: list[tuple[str, str]]) -> str:
    data = url + "".join(f"{key}{value}" for key, value in sorted(params, key=lambda kv: kv[0]))
    return base64.b64encode(hmac.new(token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()).decode()


def valid(token: str, url: str, params: list[tuple[str, str]], given: str | None) -> bool:
    if not given:
        return False
    return hmac.compare_digest(signature(token, url, params), given.strip())
