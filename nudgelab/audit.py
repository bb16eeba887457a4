"""The audit of write-audit-publish: data expectations on the marts a build produced.

dbt's own tests run inside ``dbt build``; these great-expectations suites are the second, independent
look at what readers will see: keys unique and present, flags consistent, counts non-negative,
funnel steps nested, rates within [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import duckdb

from ingest.expectations import _context, run_suite, sample_limit
from warehouse.sql import pandas_frame, scalar


@dataclass
class AuditResult:
    success: bool
    suites: list[dict[str, Any]] = field(default_factory=list)

    def first_failure(self) -> str:
        for suite in self.suites:
            for failure in suite["failures"]:
                return f"{suite['table']}: {failure['expectation']} on {failure['column']} ({failure['unexpected_count']} unexpected)"
        return ""


def _suites():
    gx, _, _ = _context()
    e = gx.expectations

    def suite(name, *expectations):
        s = gx.ExpectationSuite(name=name)
        for exp in expectations:
            s.add_expectation(exp)
        return s

    return {
        "fct_messages": (
            "SELECT message_id, user_id, channel, sent_at, is_delivered, is_clicked, is_engaged, human_clicks, "
            "bot_clicks, attributed_revenue FROM marts.fct_messages",
            suite(
                "marts_fct_messages",
                e.ExpectColumnValuesToBeUnique(column="message_id"),
                e.ExpectColumnValuesToNotBeNull(column="message_id"),
                e.ExpectColumnValuesToNotBeNull(column="sent_at"),
                e.ExpectColumnValuesToBeInSet(column="channel", value_set=["sms", "email", "push", "rcs"]),
                e.ExpectColumnValuesToBeBetween(column="human_clicks", min_value=0),
                e.ExpectColumnValuesToBeBetween(column="bot_clicks", min_value=0),
                e.ExpectColumnValuesToBeBetween(column="attributed_revenue", min_value=0),
            ),
        ),
        "fct_funnel_daily": (
            "SELECT sent, delivered, clicked, engaged, converted, sent - delivered AS lost_delivery, "
            "delivered - clicked AS lost_click, clicked - engaged AS lost_engaged, engaged - converted AS lost_convert "
            "FROM marts.fct_funnel_daily",
            suite(
                "marts_fct_funnel_daily",
                e.ExpectColumnValuesToBeBetween(column="sent", min_value=1),
                e.ExpectColumnValuesToBeBetween(column="lost_delivery", min_value=0),
                e.ExpectColumnValuesToBeBetween(column="lost_click", min_value=0),
                e.ExpectColumnValuesToBeBetween(column="lost_engaged", min_value=0),
                e.ExpectColumnValuesToBeBetween(column="lost_convert", min_value=0),
            ),
        ),
        "dim_users": (
            "SELECT user_id, best_send_hour, messages_7d, messages_30d FROM marts.dim_users",
            suite(
                "marts_dim_users",
                e.ExpectColumnValuesToBeUnique(column="user_id"),
                e.ExpectColumnValuesToNotBeNull(column="user_id"),
                e.ExpectColumnValuesToBeBetween(column="best_send_hour", min_value=0, max_value=23),
                e.ExpectColumnPairValuesAToBeGreaterThanB(column_A="messages_30d", column_B="messages_7d", or_equal=True),
            ),
        ),
        "fct_experiment_stats": (
            "SELECT experiment_id, variant, metric, n, sum_x, sum_x2 FROM marts.fct_experiment_stats",
            suite(
                "marts_fct_experiment_stats",
                e.ExpectColumnValuesToNotBeNull(column="experiment_id"),
                e.ExpectColumnValuesToBeBetween(column="n", min_value=1),
                e.ExpectColumnValuesToBeBetween(column="sum_x2", min_value=0),
            ),
        ),
        "fct_metric_timeseries": (
            "SELECT sent, delivered, clicked, sent - delivered AS undelivered FROM marts.fct_metric_timeseries",
            suite(
                "marts_fct_metric_timeseries",
                e.ExpectColumnValuesToBeBetween(column="sent", min_value=0),
                e.ExpectColumnValuesToBeBetween(column="undelivered", min_value=0),
                e.ExpectColumnValuesToBeBetween(column="clicked", min_value=0),
            ),
        ),
    }


def audit_marts(conn: duckdb.DuckDBPyConnection) -> AuditResult:
    """Run every mart suite (on a seeded sample of very large marts); success only if all pass."""
    limit = sample_limit()
    results = []
    for table, (sql, suite) in _suites().items():
        rows = scalar(conn, f"SELECT count(*) FROM ({sql})")
        query = sql if rows <= limit else f"SELECT * FROM ({sql}) USING SAMPLE reservoir({limit} ROWS) REPEATABLE (7)"
        frame = pandas_frame(conn, query)
        ok, failures, evaluated = run_suite(frame, suite, f"audit_{table}")
        results.append({"table": table, "success": ok, "rows": rows, "checked_rows": len(frame),
                        "expectations": evaluated, "failures": failures})
    return AuditResult(all(r["success"] for r in results), results)
