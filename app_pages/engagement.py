"""Engagement — "when should we send?": the hour of week in recipients' local time by template,
segment and channel, human clicks apart from bot and prefetch clicks, and the learned best send
hours."""

from __future__ import annotations

import polars as pl
import streamlit as st

from app_pages import charts, data, filters, widgets

st.title("Engagement")
chosen = filters.current()
templates = data.query(data.ENGAGEMENT_OPTIONS).row(0, named=True)["templates"] or []
picked = st.multiselect("Template", templates, key="engagement_templates", placeholder="All templates")
where, params = filters.where(chosen, ("campaign_id", "segment", "channel"), date_column=None)
if picked:
    where += " AND list_contains(?, template_id)"
    params = [*params, list(picked)]
widgets.applies("campaign", "segment", "channel (the hour-of-week mart spans every day sent)")
heat = data.query(data.ENGAGEMENT_HEAT.format(where=where), params)
if heat.is_empty() or not heat["delivered"].sum():
    widgets.nothing_selected()
    st.stop()
heat = heat.with_columns(
    (pl.col("human_clicks") / pl.col("delivered")).alias("human_click_rate"),
    (pl.col("bot_clicks") / (pl.col("human_clicks") + pl.col("bot_clicks"))).alias("bot_share"),
)
# the best hour among hours with enough deliveries to mean something (at least the median hour's)
floor = max(float(heat["delivered"].median() or 0), 30.0)
candidates = heat.filter(pl.col("delivered") >= floor)
best = (candidates if candidates.height else heat).sort("human_click_rate", descending=True, nulls_last=True).row(0, named=True)
days = charts.DAYS
st.metric("Best hour of the week so far", f"{days[int(best['day_of_week']) - 1]} {int(best['hour_of_day']):02d}:00",
          f"{best['human_click_rate'] * 100:.2f} % human clicks per delivered", delta_color="off", delta_arrow="off",
          border=True, delta_description=f"over {int(best['delivered']):,} deliveries in that hour")

left, right = st.columns(2)
with left:
    st.subheader("Human clicks per delivered message")
    chart, frame = charts.heat_map(heat, "human_click_rate", "Human click rate")
    widgets.chart(chart, frame, "engagement_human", "hour_of_week_human_clicks")
with right:
    st.subheader("Bot and prefetch clicks (kept apart)")
    chart, frame = charts.heat_map(heat, "bot_clicks", "Bot clicks")
    widgets.chart(chart, frame, "engagement_bots", "hour_of_week_bot_clicks")
total_human, total_bot = int(heat["human_clicks"].sum()), int(heat["bot_clicks"].sum())
st.caption(f"{total_human:,} human clicks and {total_bot:,} bot or prefetch clicks (link previews, scanners): "
           f"{total_bot / max(total_human + total_bot, 1) * 100:.1f} % of all fetches are not people.")

st.subheader("Learned best send hours")
user_where, user_params = filters.where(chosen, ("segment", "region", "carrier"), date_column=None)
hours = data.query(data.BEST_HOURS.format(where=user_where), user_params)
widgets.applies("segment", "region", "carrier")
if hours.is_empty():
    widgets.nothing_selected("users")
else:
    chart, frame = charts.histogram(hours, "best_send_hour", "users", "Best send hour (local time)", "Users")
    widgets.chart(chart, frame, "engagement_best", "best_send_hours")
