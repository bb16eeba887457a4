"""Altair chart builders: each returns (chart, data) so a page can offer the data as CSV.

Colours from the Okabe–Ito palette (distinguishable with the common colour-vision deficiencies);
rates on percentage axes; every axis titled; tooltips on every mark.
"""

from __future__ import annotations

import altair as alt
import polars as pl

PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
GOOD, BAD, NEUTRAL = "#009E73", "#D55E00", "#999999"
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def _scale() -> alt.Scale:
    return alt.Scale(range=PALETTE)


def daily_trend(frame: pl.DataFrame) -> tuple[alt.Chart, pl.DataFrame]:
    """Messages sent per day (bars) under the delivery and human click rates (lines)."""
    data = frame.with_columns(
        (pl.col("delivered") / pl.col("sent")).alias("delivery_rate"),
        (pl.col("clicked") / pl.col("delivered")).alias("click_rate"),
    )
    day = alt.X("send_date:O", title="Send date", timeUnit="yearmonthdate", axis=alt.Axis(format="%b %d", labelAngle=0))
    base = alt.Chart(data).encode(x=day)
    bars = base.mark_bar(color=PALETTE[4], opacity=0.5).encode(
        y=alt.Y("sent:Q", title="Messages sent"), tooltip=["send_date:T", alt.Tooltip("sent:Q", format=",")])
    long = data.unpivot(index="send_date", on=["delivery_rate", "click_rate"], variable_name="rate", value_name="value")
    lines = alt.Chart(long).mark_line(point=True).encode(
        x=day, y=alt.Y("value:Q", title="Rate", axis=alt.Axis(format="%")),
        color=alt.Color("rate:N", scale=_scale(), title="Rate"),
        tooltip=["send_date:T", "rate:N", alt.Tooltip("value:Q", format=".2%")])
    chart = alt.layer(bars, lines).resolve_scale(y="independent").properties(height=300)
    return chart, data


def funnel(steps: pl.DataFrame) -> tuple[alt.Chart, pl.DataFrame]:
    """Horizontal funnel bars with the share of sent."""
    chart = alt.Chart(steps).mark_bar(color=PALETTE[0]).encode(
        y=alt.Y("step:N", sort=list(steps["step"]), title=None),
        x=alt.X("count:Q", title="Messages"),
        tooltip=["step:N", alt.Tooltip("count:Q", format=","), alt.Tooltip("of_sent:Q", format=".2%", title="of sent"),
                 alt.Tooltip("step_rate:Q", format=".2%", title="from previous step")],
    ).properties(height=220)
    return chart, steps


def funnel_by(frame: pl.DataFrame, dimension: str) -> tuple[alt.Chart, pl.DataFrame]:
    """Step rates side by side for each value of one dimension."""
    data = frame.with_columns(
        (pl.col("delivered") / pl.col("sent")).alias("delivered / sent"),
        (pl.col("clicked") / pl.col("delivered")).alias("clicked / delivered"),
        (pl.col("engaged") / pl.col("clicked")).alias("engaged / clicked"),
        (pl.col("converted") / pl.col("engaged")).alias("converted / engaged"),
    )
    long = data.unpivot(index="value", on=["delivered / sent", "clicked / delivered", "engaged / clicked",
                                           "converted / engaged"], variable_name="step", value_name="rate")
    chart = alt.Chart(long).mark_bar().encode(
        x=alt.X("rate:Q", title="Step rate", axis=alt.Axis(format="%")),
        y=alt.Y("value:N", title=dimension, sort="-x"),
        color=alt.Color("step:N", scale=_scale(), title="Step"),
        yOffset="step:N",
        tooltip=["value:N", "step:N", alt.Tooltip("rate:Q", format=".2%")],
    ).properties(height=max(160, 60 * data.height))
    return chart, data


def heat_map(frame: pl.DataFrame, value: str, title: str) -> tuple[alt.Chart, pl.DataFrame]:
    """Hour of week (local time) as a day × hour grid of one value."""
    data = frame.with_columns(pl.col("day_of_week").map_elements(lambda d: DAYS[int(d) - 1], return_dtype=pl.String)
                              .alias("day"))
    chart = alt.Chart(data).mark_rect().encode(
        x=alt.X("hour_of_day:O", title="Hour of day (recipient's local time)"),
        y=alt.Y("day:N", sort=DAYS, title=None),
        color=alt.Color(f"{value}:Q", title=title, scale=alt.Scale(scheme="viridis"),
                        legend=alt.Legend(format="%" if "rate" in value else ",.0f")),
        tooltip=["day:N", "hour_of_day:O", alt.Tooltip(f"{value}:Q", format=".2%" if "rate" in value else ","),
                 alt.Tooltip("delivered:Q", format=","), alt.Tooltip("human_clicks:Q", format=","),
                 alt.Tooltip("bot_clicks:Q", format=",")],
    ).properties(height=240)
    return chart, data


def histogram(frame: pl.DataFrame, x: str, y: str, x_title: str, y_title: str) -> tuple[alt.Chart, pl.DataFrame]:
    chart = alt.Chart(frame).mark_bar(color=PALETTE[2]).encode(
        x=alt.X(f"{x}:O", title=x_title), y=alt.Y(f"{y}:Q", title=y_title),
        tooltip=[f"{x}:O", alt.Tooltip(f"{y}:Q", format=",")]).properties(height=220)
    return chart, frame


def forest(rows: pl.DataFrame) -> tuple[alt.Chart, pl.DataFrame]:
    """Relative lift with its 95 % interval per metric × variant; goal, secondary and guardrails marked."""
    data = rows.with_columns(
        (pl.col("metric") + " · " + pl.col("variant")).alias("comparison"),
        pl.when(pl.col("significant") & (pl.col("rel_lift") > 0)).then(pl.lit("significant rise"))
        .when(pl.col("significant") & (pl.col("rel_lift") < 0)).then(pl.lit("significant fall"))
        .otherwise(pl.lit("not significant")).alias("outcome"),
    )
    colour = alt.Color("outcome:N", scale=alt.Scale(domain=["significant rise", "significant fall", "not significant"],
                                                    range=[GOOD, BAD, NEUTRAL]), title="Outcome")
    base = alt.Chart(data).encode(y=alt.Y("comparison:N", title=None, sort=None, axis=alt.Axis(labelLimit=320)),
                                  tooltip=["role:N", "metric:N", "variant:N",
                                           alt.Tooltip("rel_lift:Q", format="+.2%", title="lift"),
                                           alt.Tooltip("rel_ci_low:Q", format="+.2%", title="95 % CI low"),
                                           alt.Tooltip("rel_ci_high:Q", format="+.2%", title="95 % CI high"),
                                           alt.Tooltip("p_adjusted:Q", format=".4f", title="adjusted p")])
    rule = base.mark_rule(strokeWidth=2).encode(x=alt.X("rel_ci_low:Q", title="Relative lift vs control (95 % CI)",
                                                        axis=alt.Axis(format="%")), x2="rel_ci_high:Q", color=colour)
    point = base.mark_point(filled=True, size=70).encode(x="rel_lift:Q", color=colour,
                                                         shape=alt.Shape("role:N", title="Role"))
    zero = alt.Chart(pl.DataFrame({"x": [0.0]})).mark_rule(strokeDash=[4, 3], color="#555").encode(x="x:Q")
    return alt.layer(rule, point, zero).properties(height=max(120, 28 * data.height)), data


def confidence_sequence(frame: pl.DataFrame) -> tuple[alt.Chart, pl.DataFrame]:
    """The goal metric's always-valid 95 % confidence sequence of the relative lift, by day."""
    base = alt.Chart(frame).encode(x=alt.X("analysis_date:T", title="Day"),
                                   color=alt.Color("variant:N", scale=_scale(), title="Variant"))
    band = base.mark_area(opacity=0.2).encode(y=alt.Y("rel_cs_low:Q", title="Relative lift (always-valid 95 % CS)",
                                                      axis=alt.Axis(format="%")), y2="rel_cs_high:Q")
    line = base.mark_line(point=True).encode(y="rel_lift:Q", tooltip=[
        "analysis_date:T", "variant:N", alt.Tooltip("rel_lift:Q", format="+.2%"),
        alt.Tooltip("rel_cs_low:Q", format="+.2%"), alt.Tooltip("rel_cs_high:Q", format="+.2%"),
        alt.Tooltip("always_valid_p_value:Q", format=".4f")])
    zero = alt.Chart(pl.DataFrame({"y": [0.0]})).mark_rule(strokeDash=[4, 3], color="#555").encode(y="y:Q")
    return alt.layer(band, line, zero).properties(height=280), frame


def anomaly_series(frame: pl.DataFrame, rate: bool, title: str) -> tuple[alt.Chart, pl.DataFrame]:
    """A slice's hourly series with its expected band; anomalous hours marked."""
    fmt = "%" if rate else ","
    base = alt.Chart(frame).encode(x=alt.X("ts:T", title="Hour (UTC)"))
    band = base.mark_area(opacity=0.25, color=PALETTE[4]).encode(
        y=alt.Y("lower:Q", title=title, axis=alt.Axis(format=fmt)), y2="upper:Q")
    expected = base.mark_line(color=PALETTE[0], strokeDash=[4, 3]).encode(y="expected:Q")
    observed = base.mark_line(color="#000000").encode(
        y="value:Q", tooltip=["ts:T", alt.Tooltip("value:Q", format=".2%" if rate else ","),
                              alt.Tooltip("expected:Q", format=".2%" if rate else ",.1f")])
    marked = alt.Chart(frame.filter(pl.col("is_anomaly"))).mark_point(color=BAD, filled=True, size=40).encode(
        x="ts:T", y="value:Q")
    return alt.layer(band, expected, observed, marked).properties(height=300), frame
