"""The RCS rich card of an ``rcs`` message: title, description, an image, suggested replies (the
quick replies when the template names none), and the SMS text a handset without RCS receives.

The shape follows the RCS Business Messaging card (standalone card with a media URL and reply
suggestions carrying postback data); providers turn it into their API's JSON.
"""

from __future__ import annotations

from collections.abc import Sequence

from dispatch.campaign import QuickReply


def card(title: str | None, description: str, image_url: str | None, suggestions: Sequence[str],
         quick_replies: Sequence[QuickReply], fallback: str) -> dict:
    """The card as stored with the message and handed to the provider."""
    # a button shows the meaning ("Confirm") and posts back what the SMS reply would be ("1")
    replies = [{"text": s, "postback": s} for s in suggestions] or [
        {"text": q.meaning.replace("_", " ").capitalize(), "postback": q.reply} for q in quick_replies]
    out: dict = {"title": title, "description": description, "suggestions": replies, "fallback_text": fallback}
    if image_url:
        out["media"] = {"url": image_url, "height": "MEDIUM"}
    return out
