"""The app's pages through Streamlit's AppTest on the benchmark's 10-million-event snapshot.

For each page: cold (caches and the snapshot connection cleared, so every query of the page runs
and the connection opens again) and warm (the same page rendered again), each the median of three
renders, next to its floor: the slowest single query the page runs, run alone on a fresh DuckDB
connection in the same run. Targets: under 2 s cold and under 0.3 s warm per page. The process's
very first render (imports included) is reported apart.

Run as ``python -m bench.app_render HOME`` (a subprocess of ``make bench``: a new process, so
nothing is cached before the first render).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = ("overview", "funnel", "engagement", "experiments", "anomalies", "data_health")


def _page_queries(home: Path) -> dict[str, list[tuple[str, list]]]:
    """What each page asks of the snapshot with the default filters (the last week, nothing chosen)."""
    import duckdb

    from app_pages import data
    from app_pages.filters import Filters, where
    from warehouse.publish import current_snapshot
    from warehouse.settings import load_settings

    conn = duckdb.connect(str(current_snapshot(load_settings(home))), read_only=True)
    last = conn.execute("SELECT max(send_date) FROM marts.fct_funnel_daily").fetchone()[0]
    conn.close()
    week = Filters(last - timedelta(days=6), last)
    funnel_where, funnel_params = where(week, ("campaign_id", "channel", "segment", "region", "carrier"))
    prev_where, prev_params = where(week.previous(), ("campaign_id", "channel", "segment", "region", "carrier"))
    engagement_where, engagement_params = where(week, ("campaign_id", "segment", "channel"), date_column=None)
    users_where, users_params = where(week, ("segment", "region", "carrier"), date_column=None)
    router = [(data.FILTER_OPTIONS, [])]
    return {
        "overview": router + [(data.ALERTS, []), (data.FUNNEL_TOTALS.format(where=funnel_where), funnel_params),
                              (data.FUNNEL_TOTALS.format(where=prev_where), prev_params),
                              (data.FUNNEL_DAILY.format(where=funnel_where), funnel_params)],
        "funnel": router + [(data.FUNNEL_TOTALS.format(where=funnel_where), funnel_params),
                            (data.FUNNEL_BY.format(dimension="campaign_id", where=funnel_where), funnel_params)],
        "engagement": router + [(data.ENGAGEMENT_OPTIONS, []),
                                (data.ENGAGEMENT_HEAT.format(where=engagement_where), engagement_params),
                                (data.BEST_HOURS.format(where=users_where), users_params)],
        "experiments": router + [(data.EXPERIMENT_LIST, []), (data.EXPERIMENT_RESULTS, ["exp_bill_personalisation"]),
                                 (data.EXPERIMENT_SEQUENCE, ["exp_bill_personalisation"]),
                                 (data.EXPERIMENT_ENROLMENT, ["exp_bill_personalisation", "converted"])],
        "anomalies": router + [(data.ALERTS, [])],
        "data_health": router + [(data.FRESHNESS, []), (data.INGEST_TOTALS, []), (data.INGEST_BATCHES, []),
                                 (data.QUARANTINE_REASONS, []), (data.DBT_RESULTS, [])],
    }


def _floor(home: Path, queries: list[tuple[str, list]]) -> float:
    import duckdb

    from warehouse.publish import current_snapshot
    from warehouse.settings import load_settings

    slowest = 0.0
    for sql, params in queries:
        conn = duckdb.connect(str(current_snapshot(load_settings(home))), read_only=True)
        start = time.perf_counter()
        conn.sql(sql, params=params or None).pl()
        slowest = max(slowest, time.perf_counter() - start)
        conn.close()
    return slowest


def main(home: Path) -> dict:
    import os

    os.environ["NUDGELAB_HOME"] = str(home)
    sys.path.insert(0, str(ROOT))
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    start = time.perf_counter()
    at.run()
    first = time.perf_counter() - start
    assert not at.exception, [e.value for e in at.exception]
    out: dict = {"first_render_seconds": round(first, 3), "pages": {}}
    queries = _page_queries(home)
    for page in PAGES:
        cold, warm = [], []
        for _ in range(3):
            st.cache_data.clear()
            st.cache_resource.clear()
            at.switch_page(f"app_pages/{page}.py")
            start = time.perf_counter()
            at.run()
            cold.append(time.perf_counter() - start)
            assert not at.exception, (page, [e.value for e in at.exception])
            start = time.perf_counter()
            at.run()
            warm.append(time.perf_counter() - start)
        out["pages"][page] = {"cold_seconds": round(statistics.median(cold), 3),
                              "warm_seconds": round(statistics.median(warm), 3),
                              "floor_seconds": round(_floor(home, queries[page]), 3)}
    return out


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
