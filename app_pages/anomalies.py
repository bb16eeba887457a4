"""Anomalies — "is something broken right now?": every incident with its slice, metric, window,
expected against observed, severity, messages affected and operator state (acknowledged by whom
and when, silenced until, what was last notified); one selected incident's series drawn with its
expected band and the anomalous hours marked, and the operator can acknowledge or silence it.

Acknowledgements and silences are written to ops.sqlite through ``dispatch.alert_state``, the
functions ``nudgelab incidents`` uses (the page's one import from the roof: that module depends
only on dispatch's ops.sqlite); the next ``nudgelab anomalies`` run applies them. The page never
writes the warehouse.
"""

from __future__ import annotations

import sqlite3

import polars as pl
import streamlit as st

from app_pages import charts, data, kpis, widgets
from dispatch.ops import OpsError
from experiments.anomalies import detect
from experiments.anomalies.series import CAMPAIGN_SENT, DIMS, METRICS
from dispatch import alert_state

SEVERITY_ORDER = {"critical": 0, "major": 1, "minor": 2}
# send_share's denominator: the sends of the slice's campaign in its region (as
# experiments.anomalies.series.build_slices scopes CAMPAIGN_SENT; tests/app/test_anomalies_page.py keeps them equal)
SHARE_SCOPE = ("campaign_id", "region")
SILENCE_FOR = ("1h", "4h", "12h", "1d", "2d", "1w")


def _states(incidents: list[dict]) -> tuple[dict | None, str | None]:
    """Each incident's operator state (None: no ops.sqlite yet), and a problem reading it."""
    try:
        return alert_state.states(data.settings().ops_path, incidents), None
    except (OpsError, sqlite3.Error, OSError) as exc:
        return None, f"The incidents' operator state cannot be read from ops.sqlite: {exc}"


def _act(what, success: str) -> None:
    """Run one write to ops.sqlite; its outcome is shown after the rerun."""
    try:
        with alert_state.store(data.settings().ops_path) as ops:
            done = what(ops)
    except alert_state.StateError as exc:
        st.session_state["anomaly_outcome"] = ("warning", str(exc))
    except (OpsError, sqlite3.Error, OSError) as exc:
        st.session_state["anomaly_outcome"] = ("error", f"ops.sqlite could not be written: {exc}")
    else:
        st.session_state["anomaly_outcome"] = ("success", success.format(done=done))
    st.rerun()

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
states, problem = _states(list(shown.iter_rows(named=True)))
outcome = st.session_state.pop("anomaly_outcome", None)
if outcome:
    getattr(st, outcome[0])(outcome[1])
if problem:
    st.error(problem)
elif states is None:
    st.info(f"No alert state yet: {data.settings().ops_path} does not exist (the first `nudgelab anomalies` run "
            "creates it), so nothing has been notified, acknowledged or silenced. Acknowledging or silencing an "
            "incident below creates it.")
state_of = states or {}
table = widgets.readable_alerts(shown).with_columns(
    pl.struct("metric", "observed_value").map_elements(lambda r: kpis.metric_value(r["metric"], r["observed_value"]),
                                                       return_dtype=pl.String).alias("observed"),
    pl.struct("metric", "expected_value").map_elements(lambda r: kpis.metric_value(r["metric"], r["expected_value"]),
                                                       return_dtype=pl.String).alias("expected"),
    pl.col("incident_id").map_elements(lambda i: state_of[i].describe() if i in state_of else "—",
                                       return_dtype=pl.String).alias("state"),
    pl.col("incident_id").map_elements(lambda i: state_of[i].last_notice() if i in state_of else "not notified yet",
                                       return_dtype=pl.String).alias("last_notice"),
).select("severity", "metric", "direction", "slice", "start_at", "end_at", "is_open", "expected", "observed",
         "messages_affected", "state", "last_notice", "incident_id")
widgets.paged(table, "anomaly_incidents", {"messages_affected": widgets.WHOLE, "is_open": "open",
                                           "last_notice": "last notified"})

def _mark(iid: str) -> str:
    state = state_of.get(iid)
    return (" · acknowledged" if state and state.ack else "") + (" · silenced" if state and state.silence else "")


labels = {row["incident_id"]: f"{row['severity']} · {row['metric']} {row['direction']} · {row['slice']} · "
          f"{row['start_at']:%Y-%m-%d %H:%M}{_mark(row['incident_id'])}" for row in shown.iter_rows(named=True)}
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
share = None
if metric.denominator == CAMPAIGN_SENT:
    # the slice's sends over those of its campaign in its region; every hour the scope sent counts (a
    # slice that carried nothing that hour carried a share of 0, the very thing a share drop is)
    scope = [d for d in SHARE_SCOPE if incident[d] is not None]
    scope_sent = data.query(data.SHARE_DENOMINATOR.format(where=" AND ".join([f"{d} = ?" for d in scope]) or "TRUE"),
                            [incident[d] for d in scope])
    frame = scope_sent.join(series.select("ts", pl.col(metric.numerator).alias("numerator")), on="ts", how="left").select(
        "ts", pl.col("numerator").fill_null(0), pl.col("scope_sent").alias("denominator"))
    scored = detect(frame, timezone=zone, kind="rate")
    inside = frame.filter((pl.col("ts") >= incident["start_at"]) & (pl.col("ts") <= incident["end_at"]))
    share = (int(inside["numerator"].sum()), int(inside["denominator"].sum()),
             " in ".join(f"{d.replace('_id', '')} {incident[d]}" for d in scope) or "every campaign and region")
elif metric.kind == "rate":
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
if share is not None:
    carried, of, scope_text = share
    st.write(f"Share of sends: in the incident window the slice carried {carried:,} of the {of:,} sends of "
             f"{scope_text}" + (f" ({carried / of * 100:.2f} %)." if of else "."))
chart, frame = charts.anomaly_series(scored, metric.name in rate_metrics, metric.name.replace("_", " "))
widgets.chart(chart, frame, "anomaly_series", f"{incident['metric']}_{chosen}")
st.caption(f"The band is where one hour may fall by chance (the baseline follows the hour of week in "
           f"{zone or 'UTC'}); the incident window holds {window.height} hours, "
           f"{int(window['is_anomaly'].sum())} of them marked anomalous on their own or by a persisting shift.")

st.subheader("Operator")
state = state_of.get(chosen)
if state and state.ack:
    st.write(f"Acknowledged by **{state.ack.by}** at {state.ack.at:%Y-%m-%d %H:%M} UTC"
             + (f": {state.ack.comment}" if state.ack.comment else "") + " — no further updates; the resolved "
             "notice still goes out.")
if state and state.silence:
    s_ = state.silence
    st.write(f"Silenced until **{s_.ends_at:%Y-%m-%d %H:%M} UTC** by {s_.created_by} ({s_.silence_id}: "
             f"{s_.describe()})" + (f" — {s_.comment}" if s_.comment else "") + ".")
if state:
    st.caption(f"Last notified: {state.last_notice()}.")
who, why = st.columns(2)
by = who.text_input("Your name", key="anomaly_by", placeholder="who is acting (required)")
comment = why.text_input("Comment", key="anomaly_comment", placeholder="why, or what you are doing about it")
ack_col, silence_col = st.columns(2)
with ack_col:
    if state and state.ack:
        if st.button("Take the acknowledgement back", key="anomaly_unack"):
            _act(lambda ops: alert_state.unacknowledge(ops, chosen), "The acknowledgement is taken back: updates "
                 "are notified again.")
    elif st.button("Acknowledge", key="anomaly_ack", type="primary",
                   help="You take it: no further updates for this incident; its resolved notice still goes out."):
        _act(lambda ops: alert_state.acknowledge(ops, chosen, by, comment or None)[0],
             "Acknowledged by {done.by}: no further updates; the resolved notice still goes out.")
with silence_col:
    length = st.selectbox("Silence for", SILENCE_FOR, index=1, key="anomaly_silence_for")
    scope = st.radio("Silence", ("this incident", "this metric on this slice, new incidents too"),
                     key="anomaly_silence_scope", horizontal=True)
    if st.button("Silence", key="anomaly_silence",
                 help="No notifications at all for it until the silence expires."):
        if scope == "this incident":
            matchers = [alert_state.Matcher("incident_id", "=", chosen)]
        else:
            matchers = [alert_state.Matcher("metric", "=", incident["metric"]),
                        *(alert_state.Matcher(d, "=", incident[d] or "") for d in DIMS)]
        _act(lambda ops: alert_state.add_silence(ops, matchers, alert_state.parse_duration(length), by,
                                                 comment or None),
             "Silenced until {done.ends_at:%Y-%m-%d %H:%M} UTC ({done.silence_id}).")
    if state and state.silence and st.button("End the silence now", key="anomaly_unsilence"):
        _act(lambda ops: alert_state.end_silence(ops, state.silence.silence_id, by or "app"),
             "Silence {done.silence_id} ended.")
