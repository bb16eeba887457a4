"""The shared sidebar filters: date range, campaign, channel, segment, region, carrier.

Drawn by app.py on every rerun with fixed widget keys, so a choice persists from page to page.
``where(filters, columns)`` turns the choices into a SQL condition over the columns a table has,
with every value a parameter; a table without a column (the engagement heat map has no region)
simply ignores that filter, and pages say which filters apply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import streamlit as st

DIMENSIONS = (("campaign_id", "Campaign"), ("channel", "Channel"), ("segment", "Segment"), ("region", "Region"),
              ("carrier", "Carrier"))
KEYS = {column: f"filter_{column}" for column, _ in DIMENSIONS}
DATES_KEY = "filter_dates"
DEFAULT_DAYS = 7


@dataclass(frozen=True)
class Filters:
    start: date | None = None
    end: date | None = None
    values: dict[str, tuple[str, ...]] = field(default_factory=dict)  # column -> chosen values (empty: all)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1 if self.start and self.end else 0

    def previous(self) -> Filters:
        """The period of the same length just before this one (for period-over-period changes)."""
        if not self.start or not self.end:
            return self
        return Filters(self.start - timedelta(days=self.days), self.start - timedelta(days=1), self.values)

    def chosen(self) -> list[str]:
        labels = dict(DIMENSIONS)
        return [f"{labels[c]}: {', '.join(v)}" for c, v in self.values.items() if v]


def where(filters: Filters, columns: tuple[str, ...], date_column: str | None = "send_date",
          extra: dict[str, str] | None = None) -> tuple[str, list]:
    """(SQL condition, parameters) for the filters that ``columns`` can carry. ``extra`` maps a
    filter column to another column name in the table (e.g. campaign_id under another name)."""
    clauses, params = ["TRUE"], []
    if date_column and filters.start and filters.end:
        clauses.append(f"{date_column} BETWEEN ? AND ?")
        params += [filters.start, filters.end]
    for column, chosen in filters.values.items():
        target = (extra or {}).get(column, column)
        if chosen and (column in columns or target in columns):
            clauses.append(f"list_contains(?, CAST({target} AS VARCHAR))")
            params.append(list(chosen))
    return " AND ".join(clauses), params


def sidebar(options: dict) -> Filters:
    """Draw the filters in the sidebar from the snapshot's values; returns the choice."""
    first, last = options.get("first_day"), options.get("last_day")
    st.sidebar.header("Filters")
    start = end = None
    if first and last:
        # the last week by default, so the overview's changes compare it with the week before
        default = (max(first, last - timedelta(days=DEFAULT_DAYS - 1)), last)
        chosen = st.sidebar.date_input("Send date", value=default, min_value=first, max_value=last,
                                       key=DATES_KEY, format="YYYY-MM-DD")
        if isinstance(chosen, (tuple, list)) and len(chosen) == 2:
            start, end = chosen
        elif isinstance(chosen, (tuple, list)) and len(chosen) == 1:
            start = end = chosen[0]
        elif isinstance(chosen, date):
            start = end = chosen
    values = {}
    for column, label in DIMENSIONS:
        choices = options.get(column) or []
        values[column] = tuple(st.sidebar.multiselect(label, choices, key=KEYS[column], placeholder="All"))
    return Filters(start, end, values)


def current() -> Filters:
    """The filters the router drew on this rerun (pages read them from here)."""
    return st.session_state.get("_filters", Filters())
