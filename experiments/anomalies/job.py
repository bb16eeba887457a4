"""The anomaly job: score the hourly mart and upsert incidents into ``experiments.anomaly_alerts``.

``run_anomalies(conn, settings, since=None)`` takes a read-write connection to the build database.
Incidents are written in one transaction; the key of an incident is its metric + direction + slice
+ start, and an incident that continues (same metric, direction and slice, overlapping or within
``MERGE_GAP_HOURS`` of a stored one) extends the stored one instead of opening a new one, so
re-running never duplicates. A new incident has ``alerted_at`` NULL until the roof
(``nudgelab.alerts``) has queued its alerts in dispatch's outbox — that column is the hand-over,
so an alert is neither lost nor queued twice whatever stops in between.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from datetime import datetime, timedelta, timezone

import duckdb
import numpy as np
import polars as pl

from experiments.anomalies import state as state_store
from experiments.anomalies.baseline import Params
from experiments.anomalies.detect import threshold
from experiments.anomalies.localise import Incident, Localiser, alias_classes, slice_label
from experiments.anomalies.series import DIMS, METRICS, build_slices, metric_counts, score_metric
from experiments.anomalies.state import MetricState
from warehouse.settings import Settings
from warehouse.sql import frame as sql_frame

MERGE_GAP_HOURS = 6
# the job judges a slice from its fourth day: the first days of a warehouse hold the warm-up of
# every campaign (follow-ups that only start after first clicks, mixes still settling)
JOB_PARAMS = Params(min_history_hours=72)

DDL = [
    "CREATE SCHEMA IF NOT EXISTS experiments",
    """CREATE TABLE IF NOT EXISTS experiments.anomaly_alerts (
        incident_id VARCHAR PRIMARY KEY,
        metric VARCHAR NOT NULL,
        direction VARCHAR NOT NULL,
        slice VARCHAR NOT NULL,
        campaign_id VARCHAR, channel VARCHAR, provider VARCHAR, region VARCHAR, carrier VARCHAR,
        start_at TIMESTAMPTZ NOT NULL,
        end_at TIMESTAMPTZ NOT NULL,
        is_open BOOLEAN NOT NULL,
        observed DOUBLE, expected DOUBLE, denominator DOUBLE,
        observed_value DOUBLE, expected_value DOUBLE,
        messages_affected DOUBLE,
        severity VARCHAR,
        score DOUBLE,
        folded_alerts INTEGER,
        first_seen_at TIMESTAMPTZ NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL)""",
    # NULL until the incident's alerts are queued (nudgelab.alerts)
    "ALTER TABLE experiments.anomaly_alerts ADD COLUMN IF NOT EXISTS alerted_at TIMESTAMPTZ",
]

COLUMNS = ["incident_id", "metric", "direction", "slice", *DIMS, "start_at", "end_at", "is_open", "observed", "expected",
           "denominator", "observed_value", "expected_value", "messages_affected", "severity", "score", "folded_alerts",
           "first_seen_at", "updated_at"]


def ensure_tables(conn: duckdb.DuckDBPyConnection) -> None:
    had_column = conn.execute("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'experiments' "
                              "AND table_name = 'anomaly_alerts' AND column_name = 'alerted_at'").fetchone()[0]
    existed = conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'experiments' "
                           "AND table_name = 'anomaly_alerts'").fetchone()[0]
    for statement in DDL:
        conn.execute(statement)
    if existed and not had_column:  # incidents from before the hand-over column were alerted by then
        conn.execute("UPDATE experiments.anomaly_alerts SET alerted_at = first_seen_at")


def severity(affected: float, relative: float) -> str:
    """critical: ≥ 100 messages and ≥ 50 % off; major: ≥ 20 messages and ≥ 20 % off; else minor."""
    if affected >= 100 and abs(relative) >= 0.5:
        return "critical"
    if affected >= 20 and abs(relative) >= 0.2:
        return "major"
    return "minor"


def incident_key(metric: str, direction: str, slice_text: str, start: datetime) -> str:
    text = f"{metric}|{direction}|{slice_text}|{start.astimezone(timezone.utc).isoformat()}"
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def _hour(h: int) -> datetime:
    return datetime.fromtimestamp(int(h) * 3600, timezone.utc)


def _record(inc: Incident, hours: np.ndarray, rate: bool) -> dict:
    obs = inc.observed / inc.denominator if rate and inc.denominator else inc.observed
    exp = inc.expected / inc.denominator if rate and inc.denominator else inc.expected
    relative = (inc.observed - inc.expected) / inc.expected if inc.expected > 0 else float(inc.observed > 0)
    label = slice_label(inc.dims)
    return {
        "metric": inc.metric, "direction": "drop" if inc.direction < 0 else "rise", "slice": label,
        **{d: inc.dims.get(d) for d in DIMS},
        "start_at": _hour(hours[inc.start]), "end_at": _hour(hours[inc.end]), "is_open": bool(inc.open),
        "observed": float(inc.observed), "expected": float(inc.expected), "denominator": float(inc.denominator),
        "observed_value": float(obs), "expected_value": float(exp), "messages_affected": float(inc.affected),
        "severity": severity(inc.affected, relative), "score": float(inc.peak), "folded_alerts": int(inc.folded),
    }


def slice_keys(ss) -> list[str]:
    """A stable text key per slice (its grouping and values), to match stored state rows to slices."""
    cols = {d: ss.keys[d].to_list() for d in DIMS}
    return [f"{'|'.join(g)}:" + "|".join(f"{cols[d][i]}" for d in g) for i, g in enumerate(ss.grouping_of)]


def _delivered_based(records: list[dict]) -> list[dict]:
    """Click and conversion rates are per delivered message: while a delivery incident lasts on a slice,
    they move on that slice (and its relatives) because of who got delivered. Such incidents are
    folded into the delivery incident instead of being raised on their own."""
    drops = [r for r in records if r["metric"] == "delivery_rate"]
    out = []
    for r in records:
        cause = None
        if r["metric"] in ("click_rate", "conversion_rate"):
            dims = {d: r[d] for d in DIMS if r.get(d)}
            for dr in drops:
                ddims = {d: dr[d] for d in DIMS if dr.get(d)}
                related = all(dims.get(k) == v for k, v in ddims.items()) or all(ddims.get(k) == v for k, v in dims.items())
                if related and dr["start_at"] - timedelta(hours=1) <= r["start_at"] <= dr["end_at"] + timedelta(hours=1):
                    cause = dr
                    break
        if cause is None:
            out.append(r)
        else:
            cause["folded_alerts"] += 1 + r["folded_alerts"]
    return out


def find_incidents(frame: pl.DataFrame, region_tz: dict[str, str], params: Params | None = None,
                   stored: dict[str, MetricState] | None = None) -> tuple[list[dict], dict[str, MetricState], dict]:
    """Score every slice and metric of the hourly mart and return localised incidents as records, the
    scoring state to continue from next time, and per metric how it was scored. ``stored``: states of
    an earlier run; a metric whose state fits (same slices' numbers for the hours it scored) is scored
    only on the hours that settled since — with the same result as scoring everything again."""
    p = params or JOB_PARAMS
    if frame.height == 0:
        return [], {}, {}
    ss = build_slices(frame, region_tz)
    canon = alias_classes(ss)
    keys = slice_keys(ss)
    total = ss.index[((), ())]
    out, states, how = [], {}, {}
    for metric in METRICS:
        ms = (stored or {}).get(metric.name)
        why = "no stored state" if ms is None else None
        # the state's check reads only the total slice: no copy of every slice's counts for it
        num, den, _ = metric_counts(ss, metric, slice(total, total + 1))
        if ms is not None:
            why = state_store.aligned(ms, keys, int(ss.hours[0]), num, den, 0, threshold(p, len(keys)))
        before = ms.stream.next if why is None else 0
        scored = score_metric(ss, metric, p, state=ms.stream if why is None else None)
        states[metric.name] = MetricState(scored.state, keys, *state_store.column_totals(num, den, scored.state.next, 0))
        how[metric.name] = {"mode": "incremental" if why is None else "full", "reason": why,
                            "hours_scored": int(scored.state.next - before)}
        spans = [sp for sp in scored.spans if not metric.only_total or not ss.grouping_of[sp.series]]
        for inc in Localiser(ss, scored, metric, canon).incidents(spans):
            out.append(_record(inc, ss.hours, metric.kind == "rate"))
    return _delivered_based(out), states, how


def read_mart(conn: duckdb.DuckDBPyConnection) -> tuple[pl.DataFrame, dict[str, str]]:
    frame = sql_frame(
        conn, "SELECT hour_at, campaign_id, channel, provider, region, carrier, CAST(sent AS DOUBLE) AS sent, "
        "CAST(delivered AS DOUBLE) AS delivered, CAST(clicked AS DOUBLE) AS clicked, "
        "CAST(converted AS DOUBLE) AS converted FROM marts.fct_metric_timeseries")
    try:
        rows = conn.execute("SELECT region, mode(timezone) FROM marts.dim_users WHERE region IS NOT NULL "
                            "AND timezone IS NOT NULL GROUP BY 1").fetchall()
    except duckdb.Error:
        rows = []
    return frame, {r: tz for r, tz in rows}


def _upsert(conn: duckdb.DuckDBPyConnection, records: list[dict], now: datetime) -> tuple[list[str], list[str]]:
    """Insert new incidents and extend continuing ones; (new ids, extended ids)."""
    existing = conn.execute(
        "SELECT incident_id, metric, direction, slice, start_at, end_at FROM experiments.anomaly_alerts").fetchall()
    by_slice: dict[tuple, list[list]] = {}
    for iid, metric, direction, sl, start, end in existing:
        by_slice.setdefault((metric, direction, sl), []).append([iid, start, end])
    gap = timedelta(hours=MERGE_GAP_HOURS)
    new_ids, extended = [], []
    for rec in records:
        match = None
        for row in by_slice.get((rec["metric"], rec["direction"], rec["slice"]), []):
            if row[1] <= rec["end_at"] + gap and rec["start_at"] <= row[2] + gap:
                match = row
                break
        if match is not None:
            iid, start = match[0], min(match[1], rec["start_at"])
            end = max(match[2], rec["end_at"])
            conn.execute(
                "UPDATE experiments.anomaly_alerts SET end_at = ?, is_open = ?, observed = ?, expected = ?, "
                "denominator = ?, observed_value = ?, expected_value = ?, messages_affected = ?, severity = ?, "
                "score = ?, folded_alerts = ?, updated_at = ? WHERE incident_id = ?",
                [end, rec["is_open"], rec["observed"], rec["expected"], rec["denominator"], rec["observed_value"],
                 rec["expected_value"], rec["messages_affected"], rec["severity"], rec["score"], rec["folded_alerts"],
                 now, iid])
            match[2] = end
            extended.append(iid)
            continue
        iid = incident_key(rec["metric"], rec["direction"], rec["slice"], rec["start_at"])
        row = {**rec, "incident_id": iid, "first_seen_at": now, "updated_at": now}
        conn.execute(f"INSERT INTO experiments.anomaly_alerts ({', '.join(COLUMNS)}) VALUES "
                     f"({', '.join('?' for _ in COLUMNS)}) ON CONFLICT (incident_id) DO NOTHING",
                     [row[c] for c in COLUMNS])
        by_slice.setdefault((rec["metric"], rec["direction"], rec["slice"]), []).append([iid, rec["start_at"], rec["end_at"]])
        new_ids.append(iid)
    return new_ids, extended


def alerts(conn: duckdb.DuckDBPyConnection, ids: list[str] | None = None) -> list[dict]:
    """Stored incidents (all, or the given ids) as dicts, most severe first."""
    where = f"WHERE incident_id IN ({', '.join('?' for _ in ids)})" if ids else ""
    cur = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM experiments.anomaly_alerts {where} "
                       "ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'major' THEN 1 ELSE 2 END, "
                       "messages_affected DESC", ids or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def state_path(settings: Settings) -> Path:
    """Where the job keeps its scoring state (beside the warehouse)."""
    return settings.home / "anomaly_state.npz"


def run_anomalies(conn: duckdb.DuckDBPyConnection, settings: Settings, since: datetime | None = None,
                  params: Params | None = None, rescore: bool = False) -> dict:
    """Score ``marts.fct_metric_timeseries`` and upsert incidents (one transaction).

    Each run continues from the stored state and scores only the hours that settled since the last
    run; ``rescore`` (or a state that no longer fits the mart) scores all history again. ``since``:
    only incidents that end at or after this instant are stored. Returns a summary: counts of new /
    extended incidents, how each metric was scored, seconds, and the incidents."""
    started = time.perf_counter()
    p = params or JOB_PARAMS
    ensure_tables(conn)
    frame, region_tz = read_mart(conn)
    stored, why = ({}, "--rescore") if rescore else state_store.load(state_path(settings), p)
    records, states, how = find_incidents(frame, region_tz, p, stored)
    for m in how.values():
        if why and m["reason"] == "no stored state":
            m["reason"] = why
    if since is not None:
        since = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
        records = [r for r in records if r["end_at"] >= since]
    now = datetime.now(timezone.utc)
    conn.execute("BEGIN TRANSACTION")
    try:
        new_ids, extended = _upsert(conn, records, now)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    if states:  # after the incidents are safe: a crash in between only scores those hours again
        state_store.save(state_path(settings), states, p)
    return {
        "series_hours": int(frame.height and len(METRICS) * _series_count(frame) * frame["hour_at"].n_unique()),
        "incidents_found": len(records), "new": len(new_ids), "extended": len(extended), "scoring": how,
        "seconds": round(time.perf_counter() - started, 3),
        "new_ids": new_ids, "incidents": alerts(conn, [r for r in new_ids + extended]) if new_ids or extended else [],
    }


def _series_count(frame: pl.DataFrame) -> int:
    import itertools
    n = 0
    for r in range(len(DIMS) + 1):
        for g in itertools.combinations(DIMS, r):
            n += frame.select(list(g)).n_unique() if g else 1
    return n
