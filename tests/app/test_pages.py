"""Every page on the session's published scenario through Streamlit's AppTest: no exception, the key
elements there, and the numbers shown equal an independent DuckDB query on the snapshot."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT, TEST_KEY
from warehouse.publish import current_snapshot

PAGES = {"overview": "Overview", "funnel": "Funnel", "engagement": "Engagement", "experiments": "Experiments",
         "anomalies": "Anomalies", "data_health": "Data health", "campaigns": "Campaigns"}


@pytest.fixture
def home(scenario, monkeypatch):
    settings = scenario[0]
    monkeypatch.setenv("NUDGELAB_HOME", str(settings.home))
    monkeypatch.setenv("NUDGELAB_HASH_KEY", TEST_KEY)
    return settings


def app(page: str = "overview") -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    if page != "overview":
        at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def snapshot_query(settings, sql: str, params: list | None = None):
    conn = duckdb.connect(str(current_snapshot(settings)), read_only=True)
    try:
        return conn.execute(sql, params or []).fetchall()
    finally:
        conn.close()


def tile(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def last_week(settings):
    last = snapshot_query(settings, "SELECT max(send_date) FROM marts.fct_funnel_daily")[0][0]
    return last - timedelta(days=6), last


@pytest.mark.parametrize("page, title", PAGES.items())
def test_every_page_renders_with_its_title_and_no_exception(home, page, title):
    at = app(page)
    assert [t.value for t in at.title] == [title]
    assert len(at.main.children) > 2
    assert all("open incident" in e.value for e in at.error)  # the only red box: open major alerts


def test_the_overview_tiles_equal_an_independent_query_over_the_last_week(home):
    start, end = last_week(home)
    sent, delivered, clicked = snapshot_query(
        home, "SELECT sum(sent), sum(delivered), sum(clicked) FROM marts.fct_funnel_daily "
              "WHERE send_date BETWEEN ? AND ?", [start, end])[0]
    at = app()
    assert tile(at, "Sent") == f"{sent:,}"
    assert tile(at, "Delivery rate") == f"{delivered / sent * 100:.2f} %"
    assert tile(at, "Human click rate") == f"{clicked / delivered * 100:.2f} %"
    before = snapshot_query(home, "SELECT sum(sent) FROM marts.fct_funnel_daily WHERE send_date BETWEEN ? AND ?",
                            [start - timedelta(days=7), start - timedelta(days=1)])[0][0]
    assert next(m.delta for m in at.metric if m.label == "Sent") == f"{(sent - before) / before * 100:+.1f} %"


def test_a_campaign_filter_changes_the_numbers_as_a_query_says(home):
    start, end = last_week(home)
    at = app()
    at.multiselect(key="filter_campaign_id").set_value(["promotions"]).run()
    (sent,) = snapshot_query(home, "SELECT sum(sent) FROM marts.fct_funnel_daily WHERE send_date BETWEEN ? AND ? "
                                   "AND campaign_id = 'promotions'", [start, end])[0]
    assert tile(at, "Sent") == f"{sent:,}"
    at.switch_page("app_pages/funnel.py").run()  # the filter persists across pages
    assert at.multiselect(key="filter_campaign_id").value == ["promotions"]
    steps = at.dataframe[0].value
    expected = snapshot_query(home, "SELECT sum(sent), sum(delivered), sum(clicked), sum(engaged), sum(converted) "
                                    "FROM marts.fct_funnel_daily WHERE send_date BETWEEN ? AND ? "
                                    "AND campaign_id = 'promotions'", [start, end])[0]
    assert list(steps["count"]) == [int(v) for v in expected]


def test_the_funnel_compares_any_dimension_side_by_side(home):
    at = app("funnel")
    at.selectbox(key="funnel_by").set_value("Carrier").run()
    start, end = last_week(home)
    carriers = snapshot_query(home, "SELECT count(DISTINCT carrier) FROM marts.fct_funnel_daily "
                                    "WHERE send_date BETWEEN ? AND ?", [start, end])[0][0]
    table = at.dataframe[1].value
    assert len(table) == min(carriers, 25) and "clicked / delivered" in table.columns


def test_filters_that_select_nothing_say_so(home):
    empty = snapshot_query(home, "SELECT c.campaign_id, h.channel FROM (SELECT DISTINCT campaign_id FROM "
                                 "marts.fct_funnel_daily) c CROSS JOIN (SELECT DISTINCT channel FROM marts.fct_funnel_daily) h "
                                 "ANTI JOIN marts.fct_funnel_daily f USING (campaign_id, channel) ORDER BY ALL")
    assert empty, "the scenario has no campaign x channel without messages"
    campaign, channel = empty[0]
    at = app()
    at.multiselect(key="filter_campaign_id").set_value([campaign])
    at.multiselect(key="filter_channel").set_value([channel]).run()
    assert any("No messages match these filters" in i.value for i in at.info) and not at.metric


def test_the_planted_wording_effect_is_significant_and_the_aa_test_is_not(home):
    at = app("experiments")
    at.selectbox(key="experiment").set_value("exp_promo_wording").run()
    assert any("exclusive_privilege raises click_through" in s.value for s in at.success)
    at.selectbox(key="experiment").set_value("exp_parcel_aa").run()
    assert not at.success and any("No detectable difference in click_through" in i.value for i in at.info)
    assert any(b.label == "Download the report (HTML)" for b in at.get("download_button"))


def test_the_anomalies_page_lists_the_planted_gateway_outage(home):
    at = app("anomalies")
    options = at.selectbox(key="anomaly_incident").options
    assert any("delivery_rate drop · provider=kannel-a" in o for o in options)


def test_data_health_reconciles_the_ingest_and_shows_the_builds_tests(home):
    at = app("data_health")
    assert any("every record accounted for" in s.value for s in at.success)
    assert any("data tests passed" in s.value for s in at.success)


def test_a_fresh_install_says_what_to_run_instead_of_failing(tmp_path, monkeypatch):
    monkeypatch.setenv("NUDGELAB_HOME", str(tmp_path / "empty"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert any("Nothing is published yet" in i.value for i in at.info)
    assert any("make demo" in c.value for c in at.code)


def test_a_build_started_while_the_app_is_open_completes_and_the_app_then_shows_it(scenario_copy, tmp_path):
    settings, truth = scenario_copy
    last_day = snapshot_query(settings, "SELECT max(send_date) FROM marts.fct_funnel_daily")[0][0]
    user = snapshot_query(settings, "SELECT min(user_id) FROM marts.dim_users")[0][0]
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "sends.csv").write_text("message_id,user_id,channel,campaign_id,provider,occurred_at\n"
                                     f"while-open-1,{user},sms,bill_due,kannel-a,{last_day}T09:00:00Z\n")
    env = dict(os.environ, NUDGELAB_HOME=str(settings.home), NUDGELAB_HASH_KEY=TEST_KEY)
    subprocess.run([sys.executable, "-m", "nudgelab.cli", "ingest", str(extra)], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    at = app()
    before = tile(at, "Sent")
    old_snapshot = current_snapshot(settings)
    build = subprocess.Popen([sys.executable, "-m", "nudgelab.cli", "build", "--quiet"], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    answers = 0
    while build.poll() is None:
        published = current_snapshot(settings)
        at.run()  # the app answers from the published snapshot while the build holds the warehouse
        assert not at.exception
        if published == old_snapshot and current_snapshot(settings) == old_snapshot:
            assert tile(at, "Sent") == before
            answers += 1
        time.sleep(0.2)
    assert build.returncode == 0, build.stderr
    assert answers >= 3 and current_snapshot(settings) != old_snapshot
    at.run()  # the next rerun reads the new snapshot: one more message sent on the last day
    assert tile(at, "Sent") == f"{int(before.replace(',', '')) + 1:,}"


def test_the_sample_size_calculator_plans_for_the_test_and_the_family_as_the_engine_does(home):
    from experiments.power import sample_size

    at = app("experiments")

    def units() -> int:
        return int(tile(at, "Units needed").replace(",", ""))

    two_sided = units()
    assert two_sided == 2 * int(sample_size(0.10, baseline=0.05, relative=True))
    at.selectbox(key="calc_alternative").set_value("greater").run()
    assert units() == 2 * int(sample_size(0.10, baseline=0.05, relative=True, alternative="greater")) < two_sided
    at.number_input(key="calc_comparisons").set_value(3).run()
    assert units() == 2 * int(sample_size(0.10, baseline=0.05, relative=True, alternative="greater", comparisons=3))
    assert not at.exception
    # the post-stratified estimate is shown beside CUPED's variance reduction
    assert any("strata_variance_reduction" in d.value.columns and "cuped_reduction" in d.value.columns
               for d in at.dataframe)
