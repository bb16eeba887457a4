"""Overview — "how are my messages doing?": the KPIs against the previous period, the daily trend,
and open anomaly alerts first."""

from __future__ import annotations

import polars as pl
import streamlit as st

from app_pages import charts, data, filters, kpis, widgets

FUNNEL_COLUMNS = ("campaign_id", "channel", "segment", "region", "carrier")

st.title("Overview")
chosen = filters.current()

if data.has_table("experiments.anomaly_alerts"):
    open_alerts = data.query(data.ALERTS).filter(pl.col("is_open") & pl.col("severity").is_in(["critical", "major"]))
    if open_alerts.height:
        st.error(f"{open_alerts.height} open incident{'s' if open_alerts.height > 1 else ''} "
                 "(major or critical) — the five largest below, all of them on the Anomalies page.",
                 icon=":material/warning:")
        top = open_alerts.sort("messages_affected", descending=True).head(5)
        st.dataframe(widgets.readable_alerts(top).select("severity", "metric", "direction", "slice", "since",
                                                         "observed", "expected", "messages_affected"),
                     hide_index=True, width="stretch", key="overview_alerts",
                     column_config={"messages_affected": st.column_config.NumberColumn("messages affected",
                                                                                      format="%d")})

where, params = filters.where(chosen, FUNNEL_COLUMNS)
totals = data.query(data.FUNNEL_TOTALS.format(where=where), params).row(0, named=True)
if not totals["sent"]:
    widgets.nothing_selected()
    st.stop()
previous = None
if chosen.start and chosen.end:
    prev_where, prev_params = filters.where(chosen.previous(), FUNNEL_COLUMNS)
    earlier = data.query(data.FUNNEL_TOTALS.format(where=prev_where), prev_params).row(0, named=True)
    previous = earlier if earlier["sent"] else None

st.caption(f"{chosen.start} to {chosen.end} ({chosen.days} days)" + (
    f", against the {chosen.days} days before" if previous else "; no earlier period of the same length to compare")
    + (" · " + " · ".join(chosen.chosen()) if chosen.chosen() else ""))
daily = data.query(data.FUNNEL_DAILY.format(where=where), params)
trend = kpis.daily_series(daily.to_dicts())
tiles = kpis.kpis(totals, previous)
for row in (tiles[:3], tiles[3:]):
    for column, tile in zip(st.columns(3), row):
        column.metric(tile.label, tile.shown(), tile.delta(), border=True, chart_data=trend.get(tile.label),
                      chart_type="area" if tile.kind == "count" else "line",
                      delta_description="vs the period before" if tile.delta() else None)

st.subheader("Daily trend")
chart, frame = charts.daily_trend(daily)
widgets.chart(chart, frame, "overview_daily", "daily_trend")
