"""Click user agents: previews, scanners, crawlers and scripts are bots; browsers are people."""

from __future__ import annotations

import duckdb
import pytest

from ingest.bots import agent_reason, bot_case_sql

BOTS = {
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)": "link_preview",
    "WhatsApp/2.23.20.0": "link_preview",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)": "link_preview",
    "TelegramBot (like TwitterBot)": "link_preview",
    "Mozilla/5.0 (compatible; Google-PageRenderer; +https://www.google.com/...)": "link_preview",
    "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)": "link_preview",
    "SkypeUriPreview Preview/0.5": "link_preview",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)": "crawler",
    "Proofpoint URL Defense": "security_scanner",
    "python-requests/2.31.0": "automation",
    "curl/8.4.0": "automation",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0 Safari/537.36": "automation",
}
PEOPLE = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
]


def reason(user_agent: str | None) -> str | None:
    conn = duckdb.connect()
    return conn.execute(f"SELECT {bot_case_sql('ua')} FROM (SELECT ?::VARCHAR AS ua)", [user_agent]).fetchone()[0]


@pytest.mark.parametrize("user_agent,expected", sorted(BOTS.items()))
def test_known_bots_are_flagged_with_their_reason(user_agent, expected):
    assert reason(user_agent) == expected
    assert agent_reason(user_agent) == expected  # the receiver's live view reads the same patterns


@pytest.mark.parametrize("user_agent", PEOPLE)
def test_real_browsers_are_people(user_agent):
    assert reason(user_agent) is None
    assert agent_reason(user_agent) is None
