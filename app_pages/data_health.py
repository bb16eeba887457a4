"""Data health — "can I trust these numbers?": when the snapshot was published and how old its data
is, every ingest batch with its counts reconciled, quarantined rows by reason with an example,
the data expectations, and the last build's dbt tests."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import polars as pl
import streamlit as st

from app_pages import data, widgets

st.title("Data health")
now = datetime.now(timezone.utc)
published = data.published_at()
fresh = data.query(data.FRESHNESS).row(0, named=True)
def ago(moment: datetime) -> str:
    seconds = max((now - moment).total_seconds(), 0)
    if seconds < 3600:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} days ago"


cols = st.columns(4)
if published:
    cols[0].metric("Snapshot published", ago(published), f"{published:%Y-%m-%d %H:%M} UTC", delta_color="off",
                   delta_arrow="off", border=True)
newest = fresh["newest_message"]
if newest is not None:
    cols[1].metric("Newest message sent", ago(newest), f"{newest:%Y-%m-%d %H:%M} UTC", delta_color="off",
                   delta_arrow="off", border=True)
cols[2].metric("Messages in the marts", f"{fresh['messages']:,}", border=True)
if data.has_table("meta.build_state"):
    audited, changed = data.query(data.BUILD_STATE).row(0)
    cols[3].metric("Build", "audited" if audited else "not audited", f"{changed:%Y-%m-%d %H:%M} UTC",
                   delta_color="off", delta_arrow="off", border=True)

st.subheader("Ingest batches")
if data.has_table("raw.ingest_batches"):
    totals = data.query(data.INGEST_TOTALS).row(0, named=True)
    balanced = totals["rows_read"] == totals["loaded"] + totals["duplicates"] + totals["quarantined"]
    line = (f"{totals['batches']:,} batches: read {totals['rows_read']:,} = loaded {totals['loaded']:,} + duplicates "
            f"{totals['duplicates']:,} + quarantined {totals['quarantined']:,}")
    (st.success if balanced else st.error)(line + (" — every record accounted for." if balanced else
                                                   " — the counts do not reconcile."))
    if totals["failed_expectations"]:
        st.warning(f"{totals['failed_expectations']} batches failed their data expectations (below).")
    batches = data.query(data.INGEST_BATCHES)
    widgets.paged(batches.drop("validation"), "health_batches", {
        "rows_read": widgets.COUNT, "loaded": widgets.COUNT, "duplicates": widgets.COUNT,
        "quarantined": widgets.COUNT, "reconciled": "read = loaded + dup. + quar.",
        "validation_success": "expectations passed"})
    failures = []
    for row in batches.iter_rows(named=True):
        for suite in json.loads(row["validation"] or "[]"):
            for failure in suite.get("failures", []):
                failures.append({"batch_id": row["batch_id"], "table": suite["table"], **{
                    k: str(v) for k, v in failure.items() if k in ("expectation", "column", "unexpected_count")}})
    st.subheader("Data expectations")
    checked = sum(len(json.loads(r or "[]")) for r in batches["validation"])
    if failures:
        st.dataframe(pl.DataFrame(failures), hide_index=True, width="stretch", key="health_failures")
    else:
        st.success(f"All {checked:,} expectation suites passed (one per batch and table).")
else:
    st.info("No ingest ledger in this snapshot.")

st.subheader("Quarantined rows by reason")
if data.has_table("raw.quarantine"):
    reasons = data.query(data.QUARANTINE_REASONS)
    if reasons.is_empty():
        st.success("Nothing is quarantined.")
    else:
        st.caption("Values in reasons and records are shown as keyed hashes (<phone:…>, <email:…>): the file and "
                   "line find the row.")
        widgets.paged(reasons, "health_quarantine", {"rows": widgets.COUNT})

st.subheader("dbt tests of the last build")
if data.has_table("meta.dbt_results"):
    tests = data.query(data.DBT_RESULTS)
    passed = int((tests["status"] == "pass").sum())
    failed = tests.filter(pl.col("status") != "pass")
    (st.success if failed.is_empty() else st.error)(
        f"{passed:,} data tests passed" + ("." if failed.is_empty() else f"; {failed.height} did not:"))
    widgets.paged(tests if failed.is_empty() else failed, "health_dbt", {
        "execution_seconds": st.column_config.NumberColumn("seconds", format="%.2f")})
else:
    st.info("This snapshot predates stored dbt results; the next `nudgelab build` records them.")
