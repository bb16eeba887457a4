"""The dbt marts against the generator's raw files, computed independently here in polars."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import duckdb
import polars as pl
import pytest

from ingest.generator import generate
from ingest.runner import run_ingest
from nudgelab.pipeline import DBT_PROJECT, build, dbt_executable
from tests.conftest import TEST_KEY
from warehouse.publish import current_snapshot
from warehouse.settings import load_settings

SIZE = {"users": 3000, "days": 21, "seed": 3}
ATTRIBUTION_HOURS = 72
ENGAGED_SECONDS = 15
PRECEDENCE = {"unknown": 0, "accepted": 1, "delivered": 2, "expired": 3, "rejected": 4, "undelivered": 5, "failed": 6}
FUNNEL_KEYS = ["send_date", "campaign_id", "template_id", "variant", "channel", "segment", "region", "carrier"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A generated scenario, ingested, built once with the dbt CLI on its own and once by nudgelab."""
    root = tmp_path_factory.mktemp("marts")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NUDGELAB_HOME", str(root / "home"))
        mp.setenv("NUDGELAB_HASH_KEY", TEST_KEY)
        settings = load_settings(root / "home")
        truth = generate(root / "data", fmt="csv", **SIZE)
        run_ingest(settings, [root / "data"])
        standalone = subprocess.run(
            [dbt_executable(), "build", "--target-path", str(root / "target"), "--log-path", str(root / "logs")],
            cwd=DBT_PROJECT, env=dict(os.environ), capture_output=True, text=True, timeout=600,
        )
        assert standalone.returncode == 0, standalone.stdout[-3000:]
        result = build(settings)
        assert result.success, result.reason
        yield settings, truth, root / "data"


def _read(data: Path, name: str) -> pl.DataFrame:
    frame = pl.read_csv(data / f"{name}.csv", infer_schema_length=0)
    return frame


def _ts(column: str) -> pl.Expr:
    return pl.col(column).str.replace(r"Z$", "+00:00").str.to_datetime("%Y-%m-%dT%H:%M:%S%z", time_zone="UTC")


def expected_funnel(data: Path, truth: dict) -> pl.DataFrame:
    """The funnel from the raw files, by the definitions in the README, without the warehouse."""
    sends = _read(data, "sends").with_columns(sent_at=_ts("occurred_at"))
    users = (
        _read(data, "users").with_columns(at=_ts("occurred_at"))
        .sort(["user_id", "at", "event_id"]).group_by("user_id").last()
        .select("user_id", "segment", "region", "carrier")
    )
    deliveries = (
        _read(data, "deliveries").unique("event_id")
        .with_columns(at=_ts("occurred_at"), rank=pl.col("status").replace_strict(PRECEDENCE, return_dtype=pl.Int64))
        .sort(["message_id", "rank", "at"]).group_by("message_id").last()
        .select("message_id", final_status="status")
    )
    tokens = [t.lower() for t in truth["bot_user_agent_tokens"]]
    clicks = _read(data, "clicks").with_columns(at=_ts("occurred_at"))
    human = clicks.filter(~pl.col("user_agent").str.to_lowercase().str.contains_any(tokens))
    first_click = human.group_by("message_id").agg(first_click_at=pl.col("at").min())
    dwell = (
        _read(data, "dwells").with_columns(seconds=pl.col("dwell_seconds").cast(pl.Float64))
        .group_by("message_id").agg(max_dwell=pl.col("seconds").max())
    )
    conversions = _read(data, "conversions").with_columns(at=_ts("occurred_at"), value=pl.col("value").cast(pl.Float64))
    candidates = (
        conversions.select("event_id", "user_id", "at", "value")
        .join(sends.select("message_id", "user_id", "sent_at"), on="user_id")
        .filter((pl.col("sent_at") <= pl.col("at")) & (pl.col("at") < pl.col("sent_at") + pl.duration(hours=ATTRIBUTION_HOURS)))
        .sort(["event_id", "sent_at", "message_id"]).group_by("event_id").last()
    )
    credited = candidates.group_by("message_id").agg(conversions=pl.len(), revenue=pl.col("value").sum())
    messages = (
        sends.join(users, on="user_id", how="left")
        .join(deliveries, on="message_id", how="left")
        .join(first_click, on="message_id", how="left")
        .join(dwell, on="message_id", how="left")
        .join(credited, on="message_id", how="left")
        .with_columns(
            clicked=pl.col("first_click_at").is_not_null(),
            converted=pl.col("conversions").fill_null(0) > 0,
        )
        .with_columns(
            delivered=(pl.col("final_status") == "delivered").fill_null(False) | pl.col("clicked"),
            engaged=pl.col("clicked") & (pl.col("max_dwell").fill_null(0) >= ENGAGED_SECONDS),
        )
        .with_columns(
            send_date=pl.col("sent_at").dt.date(),
            template_id=pl.col("template_id").fill_null("(none)"),
            variant=pl.col("variant").fill_null("(none)"),
            segment=pl.col("segment").fill_null("(unknown)"),
            region=pl.col("region").fill_null("(unknown)"),
            carrier=pl.col("carrier").fill_null("(unknown)"),
        )
    )
    return (
        messages.group_by(FUNNEL_KEYS)
        .agg(
            sent=pl.len(),
            delivered=pl.col("delivered").sum(),
            clicked=pl.col("clicked").sum(),
            engaged=pl.col("engaged").sum(),
            converted=(pl.col("engaged") & pl.col("converted")).sum(),
            revenue=pl.col("revenue").fill_null(0).sum(),
        )
        .sort(FUNNEL_KEYS)
    )


def marts(settings, sql: str, params: list | None = None) -> pl.DataFrame:
    conn = duckdb.connect(str(current_snapshot(settings)), read_only=True)
    try:
        return pl.from_arrow(conn.sql(sql, params=params or None).to_arrow_table())
    finally:
        conn.close()


def test_funnel_equals_an_independent_count_from_the_raw_files(built):
    settings, truth, data = built
    expected = expected_funnel(data, truth)
    got = marts(
        settings,
        f"SELECT {', '.join(FUNNEL_KEYS)}, sent, delivered, clicked, engaged, converted, revenue FROM marts.fct_funnel_daily",
    ).sort(FUNNEL_KEYS)
    assert got.height == expected.height
    counts = ["sent", "delivered", "clicked", "engaged", "converted"]
    joined = got.join(expected, on=FUNNEL_KEYS, how="full", suffix="_expected", coalesce=True)
    for column in counts:
        diff = joined.filter(pl.col(column).cast(pl.Int64) != pl.col(f"{column}_expected").cast(pl.Int64))
        assert diff.height == 0, (column, diff.head())
    assert joined.filter((pl.col("revenue") - pl.col("revenue_expected")).abs() > 1e-6).height == 0
    assert got["converted"].sum() > 0 and got["engaged"].sum() > got["converted"].sum()


def test_the_planted_wording_effect_shows_in_the_experiment_statistics(built):
    settings, truth, _ = built
    plan = next(e for e in truth["experiments"] if e["id"] == "exp_promo_wording")
    stats = marts(
        settings,
        "SELECT variant, n, sum_x, sum_y FROM marts.fct_experiment_stats "
        "WHERE experiment_id = 'exp_promo_wording' AND metric = 'click_through' AND dimension = 'overall' "
        "AND scope = 'cumulative' QUALIFY analysis_date = max(analysis_date) OVER (PARTITION BY variant)",
    )
    rate = {r["variant"]: r["sum_x"] / r["sum_y"] for r in stats.iter_rows(named=True)}
    lift = rate[plan["treatment"]] / rate[plan["control"]] - 1
    # at this size the relative lift's standard error is about 0.06: allow three of them
    assert abs(lift - plan["planted_relative_effect"]) < 0.18, lift
    assert lift > 0.05


def test_the_blocked_region_and_carrier_shows_in_the_time_series(built):
    settings, truth, _ = built
    incident = next(i for i in truth["incidents"] if i["kind"] == "link_domain_blocked")
    series = marts(
        settings,
        "SELECT hour_at >= CAST(? AS TIMESTAMPTZ) AS after, sum(clicked) AS clicked, sum(delivered) AS delivered "
        "FROM marts.fct_metric_timeseries WHERE region = ? AND carrier = ? GROUP BY 1",
        [incident["start"], incident["region"], incident["carrier"]],
    )
    rates = {r["after"]: float(r["clicked"]) / float(r["delivered"]) for r in series.iter_rows(named=True)}
    assert rates[False] > 0.02
    assert rates[True] < rates[False] * 0.3


def test_the_time_series_is_zero_filled_from_each_slices_first_hour_to_the_newest(built):
    settings, _, _ = built
    spans = marts(
        settings,
        "WITH s AS (SELECT campaign_id, channel, provider, region, carrier, count(*) AS hours, "
        "count(DISTINCT hour_at) AS distinct_hours, min(hour_at) AS first_hour, max(hour_at) AS last_hour "
        "FROM marts.fct_metric_timeseries GROUP BY ALL) "
        "SELECT s.*, (SELECT min(hour_at) FROM marts.fct_metric_timeseries WHERE sent > 0 "
        "  AND campaign_id = s.campaign_id AND channel = s.channel AND provider = s.provider "
        "  AND region = s.region AND carrier = s.carrier) AS first_sent, "
        "(SELECT max(hour_at) FROM marts.fct_metric_timeseries) AS newest FROM s",
    )
    assert spans.height > 10
    assert (spans["hours"] == spans["distinct_hours"]).all()  # one row per hour, no gaps below
    assert (spans["last_hour"] == spans["newest"]).all()  # every slice runs to the newest hour
    assert (spans["first_hour"] == spans["first_sent"]).all()  # and starts where it has messages
    span_hours = (spans["last_hour"] - spans["first_hour"]).dt.total_hours() + 1
    assert (span_hours == spans["hours"]).all()


def test_experiment_statistics_add_up_to_the_units(built):
    settings, _, _ = built
    units = marts(settings, "SELECT experiment_id, variant, count(*) AS n, sum(converted) AS x FROM marts.fct_experiment_units "
                            "WHERE is_valid_unit GROUP BY ALL ORDER BY ALL")
    stats = marts(
        settings,
        "SELECT experiment_id, variant, sum(n) AS n, sum(sum_x) AS x FROM marts.fct_experiment_stats "
        "WHERE scope = 'daily' AND dimension = 'overall' AND metric = 'converted' GROUP BY ALL ORDER BY ALL",
    )
    as_units = {(e, v): (int(n), float(x)) for e, v, n, x in units.rows()}
    as_stats = {(e, v): (int(n), float(x)) for e, v, n, x in stats.rows()}
    assert as_units == as_stats and len(as_units) >= 8
