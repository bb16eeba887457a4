"""Anomalies — "is something broken right now?": every incident with its slice, metric, window,
expected against observed, severity and messages affected; one selected incident's series drawn
with its expected band and the anomalous hours marked."""

from __future__ import annotations

import polars as pl
import streamlit as st

from app_pages import charts, data, kpis, widgets
from experiments.anomalies import detect
from experiments.anomalies.series import DIMS, METRICS

SEVERITY_ORDER = {"critical": 0, "major": 1, "minor": 2}

st.title("Anomalies")
if not data.has_table("experiments.anomaly_alerts"):
    st.info("No anomaly scoring is published yet: run `nudgelab anomalies` after a build.")
    st.stop()
alerts = data.query(data.ALERTS)
if alerts.is_empty():
    st.success("No incidents: every slice has stayed within its expected band.")
    st.stop()

left, right = st.columns(2)
severities = left.multiselect("Severity", ["critical", "major", "minor"], default=["critical", "major"],
                              key="anomaly_severity")
only_open = right.toggle("Open incidents only", value=False, key="anomaly_open")
shown = alerts.filter(pl.col("severity").is_in(severities) if severities else pl.lit(True))
if only_open:
    shown = shown.filter(pl.col("is_open"))
shown = shown.with_columns(pl.col("severity").replace_strict(SEVERITY_ORDER, default=3).alias("_rank")).sort(
    "_rank", "start_at", descending=[False, True]).drop("_rank")
open_count = int(alerts["is_open"].sum())
st.caption(f"{alerts.height:,} incidents stored, {open_count:,} open; {shown.height:,} shown.")
if shown.is_empty():
    st.info("No incident of that severity.")
    st.stop()
rate_metrics = {m.name for m in METRICS if m.kind == "rate"}
table = widgets.readable_alerts(shown).select("severity", "metric", "direction", "slice", "start_at", "end_at",
                                              "is_open", "expected", "observed", "messages_affected", "incident_id")
widgets.paged(table, "anomaly_incidents", {"messages_affected": widgets.WHOLE, "is_open": "open"})

labels = {row["incident_id"]: f"{row['severity']} · {row['metric']} {row['direction']} · {row['slice']} · "
          f"{row['start_at']:%Y-%m-%d %H:%M}" for row in shown.iter_rows(named=True)}
chosen = st.selectbox("Incident", list(labels), format_func=labels.get, key="anomaly_incident")
incident = shown.filter(pl.col("incident_id") == chosen).row(0, named=True)
metric = next(m for m in METRICS if m.name == incident["metric"])
clauses, params = ["TRUE"], []
for dim in DIMS:
    if incident[dim] is not None:
        clauses.append(f"{dim} = ?")  # a fixed column name; the value is a parameter
        params.append(incident[dim])
series = data.query(data.SLICE_SERIES.format(where=" AND ".join(clauses)), params)
zone = None
if incident["region"]:
    found = data.query(data.REGION_ZONE, [incident["region"]])
    zone = found.item() if found.height else None
if metric.kind == "rate":
    frame = series.select("ts", pl.col(metric.numerator).alias("numerator"), pl.col(metric.denominator).alias("denominator"))
    scored = detect(frame, timezone=zone, kind="rate")
else:
    scored = detect(series.select("ts", pl.col(metric.numerator).alias("value")), timezone=zone, kind="count")
window = scored.filter((pl.col("ts") >= incident["start_at"]) & (pl.col("ts") <= incident["end_at"]))
st.subheader(f"{incident['metric']} in {incident['slice']}")
st.write(f"From {incident['start_at']:%Y-%m-%d %H:%M} to {incident['end_at']:%Y-%m-%d %H:%M} UTC"
         f"{' (still open)' if incident['is_open'] else ''}: observed "
         f"{kpis.metric_value(incident['metric'], incident['observed_value'])} against "
         f"{kpis.metric_value(incident['metric'], incident['expected_value'])} expected; "
         f"{incident['messages_affected']:,.0f} messages affected.")
chart, frame = charts.anomaly_series(scored, metric.name in rate_metrics, metric.name.replace("_", " "))
widgets.chart(chart, frame, "anomaly_series", f"{incident['metric']}_{chosen}")
st.caption(f"The band is where one hour may fall by chance (the baseline follows the hour of week in "
           f"{zone or 'UTC'}); the incident window holds {window.height} hours, "
           f"{int(window['is_anomaly'].sum())} of them marked anomalous on their own or by a persisting shift.")
