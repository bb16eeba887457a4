"""The app's pure helpers: rates on the right denominators, changes, funnel drop-offs, formatting."""

from __future__ import annotations

import pytest

from app_pages import kpis


def test_rates_have_no_value_without_a_denominator():
    assert kpis.rate(3, 4) == 0.75
    assert kpis.rate(3, 0) is None and kpis.rate(None, 4) is None


def test_tiles_use_delivered_as_the_denominator_of_clicks_and_conversions():
    totals = {"sent": 200, "delivered": 160, "clicked": 40, "engaged": 20, "converted": 8, "revenue": 90.0}
    tiles = {k.label: k for k in kpis.kpis(totals, None)}
    assert tiles["Delivery rate"].value == 0.8
    assert tiles["Human click rate"].value == 0.25 and tiles["Conversion rate"].value == 0.05
    assert tiles["Engagement rate"].value == 0.125 and tiles["Revenue"].value == 90.0
    assert all(k.delta() is None for k in tiles.values())


def test_changes_are_relative_for_counts_and_in_points_for_rates():
    now = {"sent": 150, "delivered": 120, "clicked": 30, "engaged": 10, "converted": 3, "revenue": 50.0}
    before = {"sent": 100, "delivered": 90, "clicked": 18, "engaged": 9, "converted": 3, "revenue": 100.0}
    tiles = {k.label: k for k in kpis.kpis(now, before)}
    assert tiles["Sent"].change == pytest.approx(0.5) and tiles["Sent"].delta() == "+50.0 %"
    assert tiles["Delivery rate"].change == pytest.approx(0.8 - 0.9) and tiles["Delivery rate"].delta() == "-10.00 pp"
    assert tiles["Revenue"].delta() == "-50.0 %"


def test_funnel_steps_give_each_steps_rate_and_drop_off():
    steps = kpis.funnel_steps({"sent": 1000, "delivered": 900, "clicked": 90, "engaged": 45, "converted": 9})
    assert [s["count"] for s in steps] == [1000, 900, 90, 45, 9]
    assert steps[0]["step_rate"] is None and steps[1]["step_rate"] == 0.9 and steps[2]["step_rate"] == 0.1
    assert [s["drop_off"] for s in steps[1:]] == [100, 810, 45, 36]
    assert steps[4]["of_sent"] == 0.009


def test_formatting_reads_as_people_write_numbers():
    assert kpis.fmt(1234567) == "1,234,567"
    assert kpis.fmt(0.12345, "rate") == "12.35 %" and kpis.fmt(None) == "—"
    assert kpis.fmt(-0.034, "lift") == "-3.4 %" and kpis.fmt(1234.5, "money") == "1,234.50"


def test_days_needed_at_the_current_enrolment_rate():
    assert kpis.days_needed(1000, 100, 1500) == 5
    assert kpis.days_needed(2000, 100, 1500) == 0
    assert kpis.days_needed(1000, 0, 1500) is None


def test_alert_values_read_as_percentages_for_rates_and_shares_and_per_hour_for_volumes():
    from experiments.anomalies.series import METRICS

    for m in METRICS:
        shown = kpis.metric_value(m.name, 0.25)
        assert shown == ("25.00 %" if m.kind == "rate" else "0.2 / h"), (m.name, shown)
    assert kpis.metric_value("send_volume", 1234.0) == "1,234.0 / h"
    assert kpis.metric_value("click_rate", None) == "—"
