"""nudgelab's dashboards: ``streamlit run app.py`` (127.0.0.1:8501).

A thin router: page configuration, the shared sidebar filters (they persist across pages), and
``st.navigation`` over the pages in ``app_pages/``. Everything shown comes from the published
snapshot (``app_pages.data``), so a build that is running never blocks the app, and the next
rerun after a publish shows the new snapshot without a restart.
"""

from __future__ import annotations

import duckdb
import streamlit as st

from app_pages import data, filters

PAGES = (
    ("app_pages/overview.py", "Overview", ":material/dashboard:", "overview"),
    ("app_pages/funnel.py", "Funnel", ":material/filter_alt:", "funnel"),
    ("app_pages/engagement.py", "Engagement", ":material/schedule:", "engagement"),
    ("app_pages/experiments.py", "Experiments", ":material/science:", "experiments"),
    ("app_pages/anomalies.py", "Anomalies", ":material/warning:", "anomalies"),
    ("app_pages/campaigns.py", "Campaigns", ":material/send:", "campaigns"),
    ("app_pages/data_health.py", "Data health", ":material/fact_check:", "data-health"),
)
OPTION_KEYS = {"campaign_id": "campaigns", "channel": "channels", "segment": "segments", "region": "regions",
               "carrier": "carriers"}


def first_steps(problem: str) -> None:
    """What a fresh install shows instead of dashboards: what to run to get data."""
    st.title("nudgelab")
    if problem == "no_snapshot":
        st.info("Nothing is published yet, so there is nothing to show. To see the dashboards on a generated "
                "scenario, run in the project folder:")
        st.code("make demo", language="bash")
        st.write("Or load your own logs and build the marts:")
        st.code("nudgelab ingest PATH...   # CSV, JSON lines, Parquet, Kannel/Twilio/SMPP/SendGrid logs\n"
                "nudgelab build            # dbt build, audit, publish", language="bash")
        st.caption(f"The app reads the snapshot published under {data.settings().published_dir}.")
    else:
        st.error(problem)


def main() -> None:
    st.set_page_config(page_title="nudgelab", page_icon=":material/sms:", layout="wide")
    problem = data.open_problem()
    if problem:
        first_steps(problem)
        return
    found = data.query(data.FILTER_OPTIONS).row(0, named=True)
    options = {"first_day": found["first_day"], "last_day": found["last_day"],
               **{column: found[key] for column, key in OPTION_KEYS.items()}}
    st.session_state["_filters"] = filters.sidebar(options)
    published = data.published_at()
    if published:
        st.sidebar.caption(f"Snapshot published {published:%Y-%m-%d %H:%M} UTC")
    pages = [st.Page(path, title=title, icon=icon, url_path=url, default=i == 0)
             for i, (path, title, icon, url) in enumerate(PAGES)]
    page = st.navigation(pages)
    try:
        page.run()
    except (data.NoSnapshot, duckdb.Error, OSError, ValueError, KeyError) as exc:  # one line, never a traceback
        st.error(f"This page could not be drawn: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")


main()
