"""Funnel — "where do people drop off?": sent → delivered → clicked → engaged → converted with
counts, step rates and drop-offs, and the step rates side by side for any one dimension."""

from __future__ import annotations

import polars as pl
import streamlit as st

from app_pages import charts, data, filters, kpis, widgets

FUNNEL_COLUMNS = ("campaign_id", "channel", "segment", "region", "carrier")
COMPARE = {"Campaign": "campaign_id", "Template": "template_id", "Variant": "variant", "Channel": "channel",
           "Segment": "segment", "Region": "region", "Carrier": "carrier"}

st.title("Funnel")
st.caption("Delivered: final status delivered, or a human click. Clicked: a human click (bots and e-mail opens "
           "excluded). Engaged: clicked and stayed on the page. Converted: engaged and credited with a conversion.")
chosen = filters.current()
where, params = filters.where(chosen, FUNNEL_COLUMNS)
totals = data.query(data.FUNNEL_TOTALS.format(where=where), params).row(0, named=True)
if not totals["sent"]:
    widgets.nothing_selected()
    st.stop()

steps = pl.DataFrame(kpis.funnel_steps(totals))
left, right = st.columns([3, 2])
with left:
    chart, frame = charts.funnel(steps)
    widgets.chart(chart, frame, "funnel_steps", "funnel")
with right:
    st.dataframe(steps, hide_index=True, width="stretch", key="funnel_table",
                 column_config={"step": "Step", "count": st.column_config.NumberColumn("Messages", format="localized"),
                                "of_sent": st.column_config.NumberColumn("Share of sent", format="percent"),
                                "step_rate": st.column_config.NumberColumn("From previous step", format="percent"),
                                "drop_off": st.column_config.NumberColumn("Lost at this step", format="localized")})

st.subheader("Side by side")
label = st.selectbox("Compare by", list(COMPARE), key="funnel_by")
dimension = COMPARE[label]  # a fixed column name, never what the user typed
by = data.query(data.FUNNEL_BY.format(dimension=dimension, where=where), params)
chart, frame = charts.funnel_by(by, label)
widgets.chart(chart, frame, "funnel_by", f"funnel_by_{dimension}")
widgets.paged(frame, "funnel_by_values", {
    "value": label, "sent": widgets.COUNT, "delivered": widgets.COUNT, "clicked": widgets.COUNT,
    "engaged": widgets.COUNT, "converted": widgets.COUNT, "revenue": st.column_config.NumberColumn(format="%.2f"),
    "delivered / sent": widgets.PCT, "clicked / delivered": widgets.PCT, "engaged / clicked": widgets.PCT,
    "converted / engaged": widgets.PCT})
