"""The Anomalies page on a copy of the session's published scenario (AppTest): each incident's operator
state, acknowledging and silencing from the page into the same ops.sqlite store that
``nudgelab incidents`` reads, and a send_share incident drawn against its campaign's sends in
its region."""

from __future__ import annotations

import json
from datetime import timedelta

import duckdb
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from experiments.anomalies.job import COLUMNS
from experiments.anomalies.series import CAMPAIGN_SENT, build_slices
from tests.conftest import ROOT, run_cli
from warehouse.connections import connect_build
from warehouse.publish import current_snapshot, publish
from warehouse.sql import frame as sql_frame


@pytest.fixture
def share(scenario_copy):
    """The copy, with a critical send_share incident on a campaign × provider slice, published."""
    settings, _ = scenario_copy
    settings.ops_path.unlink(missing_ok=True)   # no alert state yet
    conn = connect_build(settings)
    try:
        campaign, provider = conn.execute(
            "SELECT campaign_id, provider FROM marts.fct_metric_timeseries WHERE campaign_id IS NOT NULL "
            "AND provider IS NOT NULL GROUP BY 1, 2 ORDER BY sum(sent) DESC LIMIT 1").fetchone()
        last = conn.execute("SELECT max(hour_at) FROM marts.fct_metric_timeseries").fetchone()[0]
        start, end = last - timedelta(hours=48), last - timedelta(hours=42)
        row = {"incident_id": "share0000000001", "metric": "send_share", "direction": "drop",
               "slice": f"campaign_id={campaign}, provider={provider}", "campaign_id": campaign, "channel": None,
               "provider": provider, "region": None, "carrier": None, "start_at": start, "end_at": end,
               "is_open": True, "observed": 10.0, "expected": 40.0, "denominator": 100.0, "observed_value": 0.1,
               "expected_value": 0.4, "messages_affected": 300.0, "severity": "critical", "score": 12.0,
               "folded_alerts": 1, "first_seen_at": last, "updated_at": last}
        conn.execute(f"INSERT INTO experiments.anomaly_alerts ({', '.join(COLUMNS)}) VALUES "
                     f"({', '.join('?' for _ in COLUMNS)})", [row[c] for c in COLUMNS])
        publish(settings, conn)
    finally:
        conn.close()
    return settings, row


def page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("app_pages/anomalies.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def choose(at: AppTest, incident_id: str) -> AppTest:
    at.selectbox(key="anomaly_incident").set_value(incident_id).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown]


def test_a_send_share_incident_is_drawn_against_its_campaigns_sends(share):
    settings, row = share
    at = choose(page(), row["incident_id"])
    conn = duckdb.connect(str(current_snapshot(settings)), read_only=True)
    try:
        carried, of = conn.execute(
            "SELECT sum(sent) FILTER (WHERE provider = ?), sum(sent) FROM marts.fct_metric_timeseries "
            "WHERE campaign_id = ? AND hour_at BETWEEN ? AND ?",
            [row["provider"], row["campaign_id"], row["start_at"], row["end_at"]]).fetchall()[0]
        frame = sql_frame(conn, "SELECT hour_at, campaign_id, channel, provider, region, carrier, "
                             "CAST(sent AS DOUBLE) AS sent, CAST(delivered AS DOUBLE) AS delivered, "
                             "CAST(clicked AS DOUBLE) AS clicked, CAST(converted AS DOUBLE) AS converted "
                             "FROM marts.fct_metric_timeseries")
    finally:
        conn.close()
    # the page's denominator is the job's: build_slices' campaign_sent for this slice over the window
    ss = build_slices(frame, {})
    s = ss.index[(("campaign_id", "provider"), (row["campaign_id"], row["provider"]))]
    hours = ss.hours
    window = (hours >= int(row["start_at"].timestamp()) // 3600) & (hours <= int(row["end_at"].timestamp()) // 3600)
    assert int(np.sum(ss.counts[CAMPAIGN_SENT][s][window])) == of
    said = next(t for t in texts(at) if t.startswith("Share of sends"))
    assert f"carried {int(carried):,} of the {int(of):,} sends of campaign {row['campaign_id']}" in said
    assert f"({carried / of * 100:.2f} %)" in said
    table = at.dataframe[0].value
    shown = table[table["incident_id"] == row["incident_id"]].iloc[0]
    assert shown["observed"] == "10.00 %" and shown["expected"] == "40.00 %"   # a share, not messages an hour


def test_without_ops_sqlite_the_page_says_so_and_acknowledging_creates_it(share):
    settings, row = share
    at = choose(page(), row["incident_id"])
    assert any("No alert state yet" in i.value for i in at.info)
    at.button(key="anomaly_ack").click().run()           # nobody named: refused, nothing written
    assert not at.exception and any("say who acknowledges" in w.value for w in at.warning)
    at.text_input(key="anomaly_by").set_value("alice")
    at.text_input(key="anomaly_comment").set_value("rerouting")
    at.button(key="anomaly_ack").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Acknowledged by alice" in s.value for s in at.success)
    assert settings.ops_path.exists() and not any("No alert state yet" in i.value for i in at.info)
    assert any("Acknowledged by **alice**" in t for t in texts(at))
    table = at.dataframe[0].value
    assert table[table["incident_id"] == row["incident_id"]].iloc[0]["state"].startswith("acknowledged by alice")
    listing = json.loads(run_cli("incidents", "list", "--json", check=True).stdout)
    (mine,) = [i for i in listing if i["incident_id"] == row["incident_id"]]
    assert mine["acknowledged_by"] == "alice"
    assert all(i["acknowledged_by"] is None for i in listing if i["incident_id"] != row["incident_id"])


def test_silencing_from_the_page_shows_in_the_cli_and_can_be_ended(share):
    settings, row = share
    at = choose(page(), row["incident_id"])
    at.text_input(key="anomaly_by").set_value("bob")
    at.selectbox(key="anomaly_silence_for").set_value("1d")
    at.button(key="anomaly_silence").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Silenced until" in s.value for s in at.success)
    silences = json.loads(run_cli("incidents", "silences", "--json", check=True).stdout)
    (silence,) = silences
    assert silence["matchers"] == [f"incident_id={row['incident_id']}"] and silence["created_by"] == "bob"
    assert any(t.startswith("Silenced until **") and silence["silence_id"] in t for t in texts(at))
    at.button(key="anomaly_unsilence").click().run()
    assert not at.exception and any("ended" in s.value for s in at.success)
    assert json.loads(run_cli("incidents", "silences", "--json", check=True).stdout) == []


def test_an_unreadable_ops_sqlite_is_one_line_not_a_traceback(share):
    settings, row = share
    settings.ops_path.write_bytes(b"this is not a database" * 100)
    at = choose(page(), row["incident_id"])
    assert any("operator state cannot be read" in e.value for e in at.error)
