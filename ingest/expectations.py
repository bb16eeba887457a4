"""Data contracts on landed data: a great-expectations suite per raw table, run after each batch.

The suites are built from the event contract (not nulls, allowed sets, ranges, uniqueness, the
batch's row count, hashes that look like hashes). Data are fetched with DuckDB and handed to
great-expectations as a pandas frame: its SQL route does not speak DuckDB.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

import duckdb

from ingest.contract import EVENT_TYPES, EventType
from ingest.normalise import EARLIEST
from warehouse.sql import pandas_frame

HASH_PATTERN = r"^[0-9a-f]{32}$"
SAMPLE_ENV = "NUDGELAB_EXPECT_SAMPLE"
DEFAULT_SAMPLE = 100_000  # rows per batch and table handed to great-expectations at most


def sample_limit() -> int:
    """How many landed rows the suite reads per batch and table (``NUDGELAB_EXPECT_SAMPLE``).

    Every row-level rule is already enforced exactly in SQL before landing (the quarantine);
    the suite is an independent audit of what landed, and on very large batches it audits a
    seeded uniform sample so that it does not cost more than the load itself.
    """
    return int(os.environ.get(SAMPLE_ENV, DEFAULT_SAMPLE))


@dataclass
class SuiteResult:
    table: str
    success: bool
    checked_rows: int
    landed_rows: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    evaluated: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "success": self.success,
            "checked_rows": self.checked_rows,
            "landed_rows": self.landed_rows,
            "sampled": self.checked_rows < self.landed_rows,
            "expectations": self.evaluated,
            "failures": self.failures,
        }


@lru_cache(maxsize=1)
def _context():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    source = context.data_sources.add_pandas("nudgelab_raw")
    return gx, context, source


def suite_for(spec: EventType, expected_rows: int):
    """The expectation suite of one raw table, for a batch that landed ``expected_rows`` rows."""
    gx, _, _ = _context()
    e = gx.expectations
    suite = gx.ExpectationSuite(name=f"raw_{spec.name}")
    suite.add_expectation(e.ExpectTableRowCountToEqual(value=expected_rows))
    suite.add_expectation(e.ExpectColumnValuesToBeUnique(column="event_id"))
    for name in ("event_id", "occurred_at", "batch_id", "ingested_at"):
        suite.add_expectation(e.ExpectColumnValuesToNotBeNull(column=name))
    suite.add_expectation(
        e.ExpectColumnValuesToBeBetween(
            column="occurred_at_epoch",
            min_value=datetime.fromisoformat(EARLIEST).replace(tzinfo=timezone.utc).timestamp(),
            max_value=(datetime.now(timezone.utc) + timedelta(days=1)).timestamp(),
        )
    )
    for f in spec.fields:
        if f.required:
            suite.add_expectation(e.ExpectColumnValuesToNotBeNull(column=f.name))
        if f.kind == "enum":
            suite.add_expectation(e.ExpectColumnValuesToBeInSet(column=f.name, value_set=list(f.values)))
        if f.kind in ("int", "float") and (f.minimum is not None or f.maximum is not None):
            suite.add_expectation(
                e.ExpectColumnValuesToBeBetween(column=f.name, min_value=f.minimum, max_value=f.maximum)
            )
        if f.kind == "hash":
            suite.add_expectation(e.ExpectColumnValuesToMatchRegex(column=f.name, regex=HASH_PATTERN))
    suite.add_expectation(e.ExpectColumnValuesToBeInSet(column="channel", value_set=["sms", "email", "push", "rcs"]))
    if spec.name == "clicks":
        suite.add_expectation(e.ExpectColumnValuesToNotBeNull(column="is_bot"))
    return suite


def validate_batch(conn: duckdb.DuckDBPyConnection, table: str, batch_id: str, expected_rows: int) -> SuiteResult:
    """Run the suite of ``raw.<table>`` on the rows that batch ``batch_id`` landed there."""
    spec = EVENT_TYPES[table]
    limit = sample_limit()
    checked = min(expected_rows, limit)
    suite = suite_for(spec, checked)
    needed = sorted(
        {c for exp in suite.expectations for c in [getattr(exp, "column", None)] if c and c != "occurred_at_epoch"}
        | {"occurred_at"}
    )
    cols = ", ".join(f'"{c}"' for c in needed)
    query = f"SELECT {cols}, epoch(occurred_at) AS occurred_at_epoch FROM {spec.table} WHERE batch_id = ?"
    if expected_rows > limit:
        query = f"SELECT * FROM ({query}) USING SAMPLE reservoir({limit} ROWS) REPEATABLE (7)"
    frame = pandas_frame(conn, query, [batch_id])
    success, failures, evaluated = run_suite(frame, suite, f"{table}_{batch_id}")
    return SuiteResult(table, success, len(frame), expected_rows, failures, evaluated)


def run_suite(frame, suite, asset_name: str) -> tuple[bool, list[dict[str, Any]], int]:
    """Validate a pandas frame against a suite: (success, failures described, expectations run)."""
    _, _, source = _context()
    asset = source.add_dataframe_asset(name=asset_name)
    try:
        batch = asset.add_batch_definition_whole_dataframe("whole").get_batch(batch_parameters={"dataframe": frame})
        outcome = batch.validate(suite, result_format="BASIC")
    finally:
        source.delete_asset(asset_name)
    failures = []
    for res in outcome.results:
        if not res.success:
            config = res.expectation_config
            failures.append(
                {
                    "expectation": config.type,
                    "column": config.kwargs.get("column"),
                    "unexpected_count": (res.result or {}).get("unexpected_count"),
                    "observed": (res.result or {}).get("observed_value"),
                    "examples": [str(v) for v in ((res.result or {}).get("partial_unexpected_list") or [])[:3]],
                }
            )
    return bool(outcome.success), failures, len(outcome.results)
