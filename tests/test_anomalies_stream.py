"""Incremental scoring gives exactly what scoring everything gives: on the engine (``score_matrix``
continued from its state over uneven pieces, with hours appended as they arrive) and on the job
(``find_incidents`` over a sequence of growing marts, and ``run_anomalies`` with its stored state).
Everything the scoring uses is causal: changing the future never changes the past."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from experiments.anomalies.baseline import Params
from experiments.anomalies.detect import score_matrix
from experiments.anomalies.job import find_incidents, run_anomalies, state_path
from tests.test_anomalies_job import START, mart, write_mart
from warehouse.connections import connect_build

HOUR0 = 490_000  # a Monday 16:00 UTC: pieces cross midnights at odd places


def synthetic(series: int = 150, hours: int = 24 * 21, seed: int = 3):
    rng = np.random.default_rng(seed)
    t = np.arange(hours)
    shape = 1.0 + 0.7 * np.sin(2 * np.pi * (t % 24 - 6) / 24)
    den = rng.poisson(np.exp(rng.uniform(np.log(5), np.log(3000), series))[:, None] * shape).astype(float)
    rate = rng.uniform(0.05, 0.3, series)[:, None]
    drop = (np.arange(series)[:, None] % 10 == 0) & (t >= 24 * 12) & (t < 24 * 12 + 5)
    shift = (np.arange(series)[:, None] % 17 == 0) & (t >= 24 * 16)
    p = np.where(drop, rate * 0.3, np.where(shift, rate * 1.4, rate))
    num = rng.binomial(den.astype(np.int64), np.clip(p, 0, 1)).astype(float)
    return num, den, np.arange(HOUR0, HOUR0 + hours, dtype=np.int64)


def spans(sc) -> list[tuple]:
    return [(s.series, s.direction, s.start, s.end, round(s.peak, 9), s.open, s.core) for s in sc.spans]


def test_continuing_from_the_state_over_uneven_pieces_equals_one_pass():
    num, den, hours = synthetic()
    whole = score_matrix("rate", num, den, hours, ["UTC"] * num.shape[0], Params())
    assert len(whole.spans) >= 15  # the planted drops and shifts are there to be found
    state = None
    for until in (30, 31, 200, 201, 202, 333, 400, num.shape[1]):
        piece = score_matrix("rate", num, den, hours, ["UTC"] * num.shape[0], Params(), state=state, until=until)
        state = piece.state
    assert spans(piece) == spans(whole)
    np.testing.assert_array_equal(piece.expected, whole.expected)
    np.testing.assert_array_equal(piece.var, whole.var)
    np.testing.assert_array_equal(piece.anomaly, whole.anomaly)


def test_hours_that_arrive_later_are_scored_on_top_of_the_state():
    num, den, hours = synthetic(seed=4)
    tzs = ["Europe/Berlin"] * 75 + ["America/Los_Angeles"] * 75
    whole = score_matrix("count", den, None, hours, tzs, Params())
    state = None
    for end in (100, 250, 251, 400, num.shape[1]):  # the grid grows: a mart built hours later
        piece = score_matrix("count", den[:, :end], None, hours[:end], tzs, Params(), state=state)
        state = piece.state
    assert spans(piece) == spans(whole)
    np.testing.assert_array_equal(piece.expected, whole.expected)


def test_the_past_does_not_depend_on_the_future():
    num, den, hours = synthetic(seed=5)
    cut = 300
    a = score_matrix("rate", num, den, hours, ["UTC"] * num.shape[0], Params())
    later = num.copy()
    later[:, cut:] = 0  # a disaster after the cut
    b = score_matrix("rate", later, den, hours, ["UTC"] * num.shape[0], Params())
    np.testing.assert_array_equal(a.expected[:, :cut + 1], b.expected[:, :cut + 1])
    np.testing.assert_array_equal(a.var[:, :cut + 1], b.var[:, :cut + 1])
    assert not np.array_equal(a.expected[:, cut + 30:], b.expected[:, cut + 30:])  # the future did change


def test_a_sequence_of_job_runs_gives_the_incidents_of_one_full_scoring():
    frame = mart(days=21, seed=2)
    # a slice that only starts on day 12 (its state rows are new then)
    late = frame.filter((pl.col("campaign_id") == "promo") & (pl.col("hour_at") >= START + timedelta(days=12)))
    frame = pl.concat([frame, late.with_columns(pl.lit("winter").alias("campaign_id"))])
    stored = None
    for hours_in in (24 * 9, 24 * 9 + 1, 24 * 12 + 5, 24 * 15 + 10, 24 * 15 + 11, 24 * 21):
        part = frame.filter(pl.col("hour_at") < START + timedelta(hours=hours_in))
        records, stored, how = find_incidents(part, {}, stored=stored)
        if hours_in > 24 * 9:
            assert {m["mode"] for m in how.values()} == {"incremental"}, how
    full, _, full_how = find_incidents(frame, {})
    assert {m["mode"] for m in full_how.values()} == {"full"}
    key = lambda r: repr(sorted((k, round(v, 9) if isinstance(v, float) else v) for k, v in r.items()))  # noqa: E731
    assert sorted(map(key, records)) == sorted(map(key, full))
    assert any(r["metric"] == "delivery_rate" and r["provider"] == "gw-b" for r in full)


def test_the_job_keeps_its_state_and_rescores_when_asked_or_when_the_mart_changed(settings):
    frame = mart(days=21, seed=2)
    write_mart(settings, frame.filter(pl.col("hour_at") < START + timedelta(days=18)))
    conn = connect_build(settings)
    try:
        first = run_anomalies(conn, settings)
        assert state_path(settings).exists()
        assert {m["mode"] for m in first["scoring"].values()} == {"full"}
    finally:
        conn.close()
    write_mart(settings, frame)
    conn = connect_build(settings)
    try:
        second = run_anomalies(conn, settings)
        assert {m["mode"] for m in second["scoring"].values()} == {"incremental"}
        assert second["scoring"]["send_volume"]["hours_scored"] == 24 * 3
        again = run_anomalies(conn, settings, rescore=True)
        assert {m["mode"] for m in again["scoring"].values()} == {"full"}
        assert again["new"] == 0  # the same incidents: nothing new
    finally:
        conn.close()
    changed = frame.with_columns(pl.when(pl.col("hour_at") < START + timedelta(days=2)).then(pl.col("sent") + 1)
                                 .otherwise(pl.col("sent")).alias("sent"))
    write_mart(settings, changed)
    conn = connect_build(settings)
    try:
        third = run_anomalies(conn, settings)
    finally:
        conn.close()
    assert third["scoring"]["send_volume"]["mode"] == "full"
    assert "changed" in third["scoring"]["send_volume"]["reason"]


@pytest.mark.parametrize("damage", [b"", b"not a numpy file"])
def test_a_missing_or_broken_state_file_means_a_full_scoring(settings, damage):
    write_mart(settings, mart(days=14, seed=3))
    state_path(settings).parent.mkdir(parents=True, exist_ok=True)
    state_path(settings).write_bytes(damage)
    conn = connect_build(settings)
    try:
        summary = run_anomalies(conn, settings)
    finally:
        conn.close()
    assert {m["mode"] for m in summary["scoring"].values()} == {"full"}
    assert all(m["reason"] for m in summary["scoring"].values())


def test_a_mart_whose_history_window_rolled_on_continues_from_the_state():
    frame = mart(days=24, seed=2)
    first = frame.filter(pl.col("hour_at") < START + timedelta(days=17))
    records, stored, _ = find_incidents(first, {})
    outage = [r for r in records if r["metric"] == "delivery_rate" and r["provider"] == "gw-b"]
    rolled = frame.filter(pl.col("hour_at") >= START + timedelta(days=2, hours=5))  # 53 hours fell out
    later, _, how = find_incidents(rolled, {}, stored=stored)
    assert {m["mode"] for m in how.values()} == {"incremental"}, how
    assert how["send_volume"]["hours_scored"] == 24 * 7
    again = [r for r in later if r["metric"] == "delivery_rate" and r["provider"] == "gw-b"]
    assert outage and [r["start_at"] for r in again] == [r["start_at"] for r in outage]  # the same hours, shifted grid
