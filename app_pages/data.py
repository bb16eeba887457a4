"""The app's one data module: a read-only connection to the published snapshot, and named,
parameterised queries over its marts and results.

The connection is cached per snapshot file: when ``nudgelab build`` publishes a new snapshot,
``published/CURRENT`` names another file, the next rerun opens that one, and the old connection is
closed when the cache lets it go (a session still reading it finishes first: DuckDB keeps an open
file readable after the publisher prunes it). Each query runs on its own cursor, so concurrent
sessions do not share a result. Results are polars frames, cached for ``TTL`` seconds per snapshot,
query and parameters; SQL is never built from what a user typed — every value is a parameter, and
the only text spliced in is a filter clause built from fixed column names (``app_pages.filters``).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import polars as pl
import streamlit as st

from warehouse.publish import current_snapshot
from warehouse.settings import load_settings
from warehouse.storage import StorageError, open_database

TTL = 600


class NoSnapshot(Exception):
    """Nothing is published yet (a fresh install): the app says what to run."""


def settings():
    return load_settings()


def snapshot() -> Path:
    """The snapshot readers should open now (read on every rerun: cheap, one small file)."""
    path = current_snapshot(settings())
    if path is None:
        raise NoSnapshot(str(settings().published_dir))
    return path


def _close(conn: duckdb.DuckDBPyConnection) -> None:
    conn.close()


@st.cache_resource(max_entries=2, on_release=_close, show_spinner=False)
def _connection(path: str) -> duckdb.DuckDBPyConnection:
    conn = open_database(Path(path), read_only=True, role="snapshot")
    conn.execute("SET TimeZone = 'UTC'")
    conn.execute("SET enable_progress_bar = false")
    return conn


def connection() -> duckdb.DuckDBPyConnection:
    return _connection(str(snapshot()))


@st.cache_data(ttl=TTL, max_entries=512, show_spinner=False)
def _query(path: str, sql: str, params: tuple) -> pl.DataFrame:
    cursor = _connection(path).cursor()
    try:
        return cursor.sql(sql, params=list(params) if params else None).pl()
    finally:
        cursor.close()


def query(sql: str, params: tuple | list = ()) -> pl.DataFrame:
    """A named query (one of this module's constants, or one built by ``filters``) on the snapshot."""
    return _query(str(snapshot()), sql, tuple(params))


@st.cache_data(ttl=TTL, show_spinner=False)
def _tables(path: str) -> frozenset[str]:
    cursor = _connection(path).cursor()
    try:
        return frozenset(f"{s}.{t}" for s, t in cursor.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database()").fetchall())
    finally:
        cursor.close()


def has_table(name: str) -> bool:
    """Whether the snapshot holds ``schema.table`` (alerts exist only after `nudgelab anomalies`)."""
    return name in _tables(str(snapshot()))


def published_at() -> datetime | None:
    """When the snapshot in use was published (its file's modification time)."""
    try:
        return datetime.fromtimestamp(snapshot().stat().st_mtime, timezone.utc)
    except (OSError, NoSnapshot):
        return None


def report_file(name: str | None) -> Path | None:
    """A report file written by the results job (NUDGELAB_HOME/reports), if it exists."""
    if not name:
        return None
    path = settings().reports_dir / Path(name).name
    return path if path.is_file() else None


def open_problem() -> str | None:
    """Why the app cannot read anything (no snapshot, an unreadable one), or None."""
    try:
        connection()
    except NoSnapshot:
        return "no_snapshot"
    except StorageError as exc:
        return str(exc)
    return None


def loads(text: str | None) -> object:
    return json.loads(text) if text else None


# ---- named queries --------------------------------------------------------------------------

FILTER_OPTIONS = """
SELECT min(send_date) AS first_day, max(send_date) AS last_day,
       list(DISTINCT campaign_id ORDER BY campaign_id) FILTER (WHERE campaign_id IS NOT NULL) AS campaigns,
       list(DISTINCT channel ORDER BY channel) FILTER (WHERE channel IS NOT NULL) AS channels,
       list(DISTINCT segment ORDER BY segment) FILTER (WHERE segment IS NOT NULL) AS segments,
       list(DISTINCT region ORDER BY region) FILTER (WHERE region IS NOT NULL) AS regions,
       list(DISTINCT carrier ORDER BY carrier) FILTER (WHERE carrier IS NOT NULL) AS carriers
FROM marts.fct_funnel_daily
"""

AUDIENCE_OPTIONS = """
SELECT list(DISTINCT segment ORDER BY segment) FILTER (WHERE segment IS NOT NULL) AS segments,
       list(DISTINCT region ORDER BY region) FILTER (WHERE region IS NOT NULL) AS regions,
       list(DISTINCT carrier ORDER BY carrier) FILTER (WHERE carrier IS NOT NULL) AS carriers
FROM marts.dim_users
"""

USER_PROFILES = "SELECT user_id, segment, region, carrier FROM marts.dim_users WHERE user_id IN ({marks})"

FUNNEL_TOTALS = """
SELECT CAST(coalesce(sum(sent), 0) AS BIGINT) AS sent, CAST(coalesce(sum(delivered), 0) AS BIGINT) AS delivered, CAST(coalesce(sum(clicked), 0) AS BIGINT) AS clicked,
       CAST(coalesce(sum(engaged), 0) AS BIGINT) AS engaged, CAST(coalesce(sum(converted), 0) AS BIGINT) AS converted,
       CAST(coalesce(sum(revenue), 0) AS DOUBLE) AS revenue, CAST(coalesce(sum(human_clicks), 0) AS BIGINT) AS human_clicks,
       CAST(coalesce(sum(bot_clicks), 0) AS BIGINT) AS bot_clicks
FROM marts.fct_funnel_daily WHERE {where}
"""

FUNNEL_DAILY = """
SELECT send_date, CAST(sum(sent) AS BIGINT) AS sent, CAST(sum(delivered) AS BIGINT) AS delivered, CAST(sum(clicked) AS BIGINT) AS clicked,
       CAST(sum(engaged) AS BIGINT) AS engaged, CAST(sum(converted) AS BIGINT) AS converted, CAST(sum(revenue) AS DOUBLE) AS revenue
FROM marts.fct_funnel_daily WHERE {where}
GROUP BY send_date ORDER BY send_date
"""

FUNNEL_BY = """
SELECT coalesce(CAST({dimension} AS VARCHAR), '(none)') AS value, CAST(sum(sent) AS BIGINT) AS sent, CAST(sum(delivered) AS BIGINT) AS delivered,
       CAST(sum(clicked) AS BIGINT) AS clicked, CAST(sum(engaged) AS BIGINT) AS engaged, CAST(sum(converted) AS BIGINT) AS converted, CAST(sum(revenue) AS DOUBLE) AS revenue
FROM marts.fct_funnel_daily WHERE {where}
GROUP BY 1 ORDER BY sent DESC
"""

ENGAGEMENT_OPTIONS = """
SELECT list(DISTINCT template_id ORDER BY template_id) FILTER (WHERE template_id IS NOT NULL) AS templates
FROM marts.fct_engagement_hourly
"""

ENGAGEMENT_HEAT = """
SELECT day_of_week, hour_of_day, CAST(sum(sent) AS BIGINT) AS sent, CAST(sum(delivered) AS BIGINT) AS delivered, CAST(sum(human_clicks) AS BIGINT) AS human_clicks,
       CAST(sum(bot_clicks) AS BIGINT) AS bot_clicks, CAST(sum(clicked) AS BIGINT) AS clicked
FROM marts.fct_engagement_hourly WHERE {where}
GROUP BY 1, 2 ORDER BY 1, 2
"""

BEST_HOURS = """
SELECT best_send_hour, CAST(count(*) AS BIGINT) AS users FROM marts.dim_users WHERE {where} AND best_send_hour IS NOT NULL
GROUP BY 1 ORDER BY 1
"""

EXPERIMENT_LIST = """
SELECT experiment_id, name, owner, campaign_id, definition_status, result_status, control, treatments, goal_metric,
       goal_variant, goal_rel_lift, goal_rel_ci_low, goal_rel_ci_high, goal_p_adjusted, goal_significant,
       srm_status, srm_p_value, units, start_at, end_at, as_of_date, verdict, report_html, report_markdown
FROM experiments.summary ORDER BY experiment_id
"""

EXPERIMENT_DEFINITION = "SELECT * FROM marts.dim_experiments WHERE experiment_id = ?"
EXPERIMENT_SUMMARY = "SELECT * FROM experiments.summary WHERE experiment_id = ?"

EXPERIMENT_RESULTS = """
SELECT * FROM experiments.results WHERE experiment_id = ? ORDER BY dimension, metric, variant, analysis, dimension_value
"""

EXPERIMENT_SEQUENCE = """
SELECT * FROM experiments.confidence_sequences WHERE experiment_id = ? ORDER BY variant, analysis_date
"""

EXPERIMENT_ENROLMENT = """
SELECT analysis_date AS day, CAST(sum(n) AS BIGINT) AS units FROM marts.fct_experiment_stats
WHERE experiment_id = ? AND scope = 'daily' AND dimension = 'overall' AND metric = ?
GROUP BY 1 ORDER BY 1
"""

ALERTS = """
SELECT incident_id, severity, metric, direction, slice, campaign_id, channel, provider, region, carrier, start_at,
       end_at, is_open, observed_value, expected_value, messages_affected, first_seen_at, updated_at
FROM experiments.anomaly_alerts ORDER BY is_open DESC, start_at DESC
"""

SLICE_SERIES = """
SELECT hour_at AS ts, CAST(sum(sent) AS BIGINT) AS sent, CAST(sum(delivered) AS BIGINT) AS delivered, CAST(sum(clicked) AS BIGINT) AS clicked,
       CAST(sum(converted) AS BIGINT) AS converted
FROM marts.fct_metric_timeseries WHERE {where}
GROUP BY 1 ORDER BY 1
"""

REGION_ZONE = """
SELECT mode(timezone) FROM marts.dim_users WHERE region = ? AND timezone IS NOT NULL
"""

INGEST_BATCHES = """
SELECT batch_id, source_file, source_format, started_at, finished_at, rows_read, loaded, duplicates, quarantined,
       rows_read = loaded + duplicates + quarantined AS reconciled, validation_success,
       CAST(validation AS VARCHAR) AS validation
FROM raw.ingest_batches ORDER BY finished_at DESC
"""

INGEST_TOTALS = """
SELECT count(*) AS batches, CAST(coalesce(sum(rows_read), 0) AS BIGINT) AS rows_read, CAST(coalesce(sum(loaded), 0) AS BIGINT) AS loaded,
       CAST(coalesce(sum(duplicates), 0) AS BIGINT) AS duplicates, CAST(coalesce(sum(quarantined), 0) AS BIGINT) AS quarantined,
       count(*) FILTER (WHERE NOT validation_success) AS failed_expectations, max(finished_at) AS last_ingest
FROM raw.ingest_batches
"""

QUARANTINE_REASONS = """
WITH q AS (
    SELECT event_type, regexp_replace(reason, '''[^'']*''', '''…''', 'g') AS reason_kind, reason, source_file,
           line_number, raw_record
    FROM raw.quarantine
)
SELECT coalesce(event_type, '(unknown)') AS event_type, reason_kind AS reason, count(*) AS rows,
       any_value(source_file) AS example_file, min(line_number) AS example_line, any_value(raw_record) AS example_record
FROM q GROUP BY 1, 2 ORDER BY rows DESC
"""

DBT_RESULTS = """
SELECT node, status, failures, execution_seconds, message
FROM meta.dbt_results WHERE resource_type = 'test' ORDER BY status <> 'pass', node
"""

BUILD_STATE = "SELECT audited, changed_at FROM meta.build_state"

FRESHNESS = """
SELECT max(sent_at) AS newest_message, count(*) AS messages FROM marts.fct_messages
"""

# the denominator of send_share: the sends of the slice's campaign in its region, {where} naming
# only whichever of campaign_id and region the slice names (TRUE for neither: all sends)
SHARE_DENOMINATOR = """
SELECT hour_at AS ts, CAST(sum(sent) AS BIGINT) AS scope_sent
FROM marts.fct_metric_timeseries WHERE {where}
GROUP BY 1 ORDER BY 1
"""
