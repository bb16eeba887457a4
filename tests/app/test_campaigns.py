"""The Campaigns page's own behaviour (the closed loop through it is tests/test_closed_loop.py): the
form maps to a campaign the loader checks, its problems are shown as the loader words them and
never as a traceback, a campaign file can be pasted and previewed, and nothing is queued before
the operator confirms."""

from __future__ import annotations

import re
from datetime import date, time

import pytest
from streamlit.testing.v1 import AppTest

from app_pages import campaign_form
from dispatch.campaign import campaign_from_dict
from tests.conftest import ROOT


def page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("app_pages/campaigns.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_form_becomes_a_campaign_the_loader_accepts_with_its_experiment_and_schedule():
    form = campaign_form.Form(
        campaign_id="bill_nudge", name="Bill nudge", category="promotional", channels=("sms", "email"),
        sms="Pay now {{ link('link') }}", subject="Your bill", email="Pay it here {{ link('link') }}",
        link_url="https://pay.example.com", segments=("loyal",), limit=300, experiment=True,
        sms_b="Settle your bill {{ link('link') }}", subject_b="Bill due", email_b="Settle it {{ link('link') }}",
        share_b=0.3, holdout=0.1, goal_metric="converted", schedule="at", at_date=date(2026, 12, 3), at_time=time(11, 0))
    campaign = campaign_from_dict(campaign_form.document(form))
    assert (campaign.campaign_id, campaign.category, campaign.channels) == ("bill_nudge", "promotional", ("sms", "email"))
    assert campaign.audience.segments == ("loyal",) and campaign.audience.limit == 300
    assert campaign.experiment.variants == ("a", "b") and campaign.experiment.control == "a"
    assert campaign.experiment.weights == {"a": 0.7, "b": 0.3} and campaign.experiment.holdout == 0.1
    assert campaign.experiment.goal_metrics == ("converted",)
    assert campaign.schedule.mode == "at" and campaign.schedule.at.isoformat() == "2026-12-03T11:00:00+00:00"
    assert campaign.links == {"link": "https://pay.example.com"}


def test_the_goal_metrics_offered_are_the_ones_the_marts_compute():
    sql = (ROOT / "dbt_project" / "models" / "marts" / "fct_experiment_stats.sql").read_text()
    computed = set(re.findall(r"'([a-z_]+)'(?: as metric)?, '(?:ratio|proportion|mean)'", sql))
    assert computed == set(campaign_form.METRICS)


@pytest.fixture
def home(scenario_copy):
    return scenario_copy[0]


def test_a_form_with_problems_says_them_as_the_loader_does_and_queues_nothing(home):
    at = page()
    at.text_input(key="cmp_id").input("bad id with spaces").run()
    at.button(key="cmp_preview").click().run()
    assert not at.exception
    (error,) = [e.value for e in at.error]
    assert "is not an id of letters" in error and "the message text is missing" in error
    assert "cmp_confirm" not in [b.key for b in at.button]
    assert not (home.ops_path.exists() and __import__("sqlite3").connect(home.ops_path)
                .execute("SELECT count(*) FROM messages").fetchone()[0])


def test_a_pasted_campaign_file_is_previewed_with_its_exclusions_and_samples(home):
    at = page()
    at.radio(key="cmp_mode").set_value("from a campaign file").run()
    at.selectbox(key="cmp_example").set_value("winter_promo.yml").run()
    assert "id: winter_promo" in at.text_area(key="cmp_yaml").value
    at.button(key="cmp_preview").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    tiles = {m.label: m.value for m in at.metric}
    assert tiles["Audience"] == "500" and tiles["Would queue"] == "0"   # no contacts imported: no addresses
    (table,) = [d.value for d in at.dataframe if "reason" in d.value.columns]
    assert int(table["users"].sum()) + int(tiles["Held out"]) == 500
    assert any("Nothing would be sent" in w.value for w in at.warning)
    broken = at.text_area(key="cmp_yaml").value.replace("category: promotional", "category: loud")
    at.text_area(key="cmp_yaml").input(broken).run()
    at.button(key="cmp_preview").click().run()
    assert not at.exception and any("give transactional or promotional" in e.value for e in at.error)
    line = next(i for i, text in enumerate(broken.splitlines(), 1) if "category: loud" in text)
    assert any(f"the campaign file:{line}: campaign.category" in e.value for e in at.error)   # names the line


def test_following_before_any_run_says_so(home):
    at = page()
    assert any("No campaign has been queued yet" in i.value for i in at.info)
