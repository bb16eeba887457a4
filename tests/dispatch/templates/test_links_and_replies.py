"""Tracked links (one code per message x link, deep links with campaign parameters) and quick replies."""

from urllib.parse import parse_qs, urlsplit

from dispatch.campaign import QuickReply
from dispatch.templates import replies
from dispatch.templates.links import code_for, deep_link, short_url
from dispatch.templates.rich_card import card

KEY = b"k"


def test_codes_are_stable_per_message_and_link_and_differ_otherwise():
    assert code_for(KEY, "m-1", "pay") == code_for(KEY, "m-1", "pay")
    codes = {code_for(KEY, f"m-{i}", name) for i in range(20_000) for name in ("pay", "track")}
    assert len(codes) == 40_000
    assert code_for(b"other key", "m-1", "pay") != code_for(KEY, "m-1", "pay")


def test_short_url_sits_on_the_receiver():
    assert short_url("https://r.example.com/", "AbC") == "https://r.example.com/l/AbC"


def test_deep_link_adds_campaign_parameters_and_keeps_the_urls_own():
    url = deep_link("https://pay.example.com/bill?src=sms&utm_source=partner#top", campaign_id="bill_due",
                    channel="sms", variant="friendly", message_id="m-9")
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert query["src"] == ["sms"] and query["utm_source"] == ["partner"]  # not overwritten
    assert query["utm_medium"] == ["sms"] and query["utm_campaign"] == ["bill_due"]
    assert query["utm_content"] == ["friendly"] and query["nl_mid"] == ["m-9"]
    assert parts.fragment == "top" and parts.path == "/bill"


def test_quick_replies_text_and_matching():
    choices = [QuickReply("1", "confirm"), QuickReply("2", "reschedule"), QuickReply("YES", "confirm")]
    assert replies.text(choices[:2]) == "Reply 1 to confirm, 2 to reschedule"
    assert replies.match(" 2. ", choices) == "reschedule"
    assert replies.match("yes!", choices) == "confirm"
    assert replies.match("3", choices) is None
    assert replies.match("1", replies.as_json(choices)) == "confirm"


def test_rich_card_uses_quick_replies_as_suggestions_and_keeps_the_fallback():
    built = card("Your appointment", "Tomorrow 10:00", "https://img.example.com/a.png", (),
                 [QuickReply("1", "confirm"), QuickReply("2", "reschedule")], "Appointment tomorrow 10:00. Reply 1/2")
    assert built["suggestions"] == [{"text": "Confirm", "postback": "1"}, {"text": "Reschedule", "postback": "2"}]
    assert built["media"]["url"] == "https://img.example.com/a.png"
    assert built["fallback_text"].startswith("Appointment tomorrow")
