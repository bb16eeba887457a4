"""Small pieces every page uses: a chart with its data as CSV, a paged table, an empty-state note."""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st

PAGE_SIZE = 25


def chart(chart: alt.Chart, data: pl.DataFrame, key: str, file_name: str) -> None:
    """An interactive chart and a button to download the data it draws, as CSV."""
    st.altair_chart(chart.interactive(bind_y=False), width="stretch", key=f"{key}_chart")
    st.download_button("Download the data (CSV)", data.write_csv(), file_name=f"{file_name}.csv", mime="text/csv",
                       key=f"{key}_csv")


def paged(frame: pl.DataFrame, key: str, columns: dict | None = None, size: int = PAGE_SIZE) -> None:
    """A table shown a page at a time (large tables stay quick), with the whole table as CSV."""
    pages = max(1, -(-frame.height // size))
    if pages > 1:
        page = st.number_input(f"Page (of {pages:,}; {frame.height:,} rows)", min_value=1, max_value=pages, value=1,
                               step=1, key=f"{key}_page")
    else:
        page = 1
    start = (int(page) - 1) * size
    st.dataframe(frame.slice(start, size), width="stretch", hide_index=True, column_config=columns,
                 key=f"{key}_table")
    st.download_button("Download the table (CSV)", frame.write_csv(), file_name=f"{key}.csv", mime="text/csv",
                       key=f"{key}_csv")


def nothing_selected(what: str = "messages") -> None:
    st.info(f"No {what} match these filters. Widen the date range or clear a filter in the sidebar.")


def applies(*names: str) -> None:
    """Say which sidebar filters this view uses (the others do not reach its table)."""
    st.caption("Sidebar filters used here: " + ", ".join(names) + ".")


def readable_alerts(frame: pl.DataFrame) -> pl.DataFrame:
    """Alerts with their observed and expected values as people read them (rates in %, volumes per hour)."""
    from app_pages.kpis import metric_value

    return frame.with_columns(
        pl.struct("metric", "observed_value").map_elements(lambda r: metric_value(r["metric"], r["observed_value"]),
                                                           return_dtype=pl.String).alias("observed"),
        pl.struct("metric", "expected_value").map_elements(lambda r: metric_value(r["metric"], r["expected_value"]),
                                                           return_dtype=pl.String).alias("expected"),
        pl.col("start_at").dt.strftime("%Y-%m-%d %H:%M").alias("since"),
    )


PCT = st.column_config.NumberColumn(format="percent")
COUNT = st.column_config.NumberColumn(format="localized")
WHOLE = st.column_config.NumberColumn(format="%d")
