"""``experiments.anomalies.detect`` on hand-made series: each test plants one thing and checks that it
is (or is not) flagged, with the expected values derived from how the series was made. Real values go
through the causal detector (an alarm where an episode is first seen); rates and counts through the
hourly model (every hour of an alarmed span marked)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from experiments.anomalies import Params, detect
from experiments.anomalies.online import OnlineParams

ALARM = 1.0 + OnlineParams().margin  # a value score above this raises an alarm

START = datetime(2026, 3, 2, tzinfo=timezone.utc)  # a Monday


def hours(n: int, start: datetime = START) -> list[datetime]:
    return [start + timedelta(hours=i) for i in range(n)]


def daily(n: int, amplitude: float = 3.0, base: float = 10.0) -> np.ndarray:
    t = np.arange(n)
    return base + amplitude * np.sin(2 * np.pi * t / 24)


def flagged(out: pl.DataFrame) -> list[datetime]:
    return out.filter(pl.col("is_anomaly"))["ts"].to_list()


def test_output_columns_and_one_row_per_hour():
    n = 24 * 14
    out = detect(pl.DataFrame({"ts": hours(n), "value": daily(n)}))
    assert out.columns == ["ts", "value", "expected", "lower", "upper", "score", "is_anomaly"]
    assert out.height == n


def test_a_spike_is_flagged_alone():
    rng = np.random.default_rng(1)
    n = 24 * 21
    y = daily(n) + rng.normal(0, 0.3, n)
    y[400] += 5.0
    out = detect(pl.DataFrame({"ts": hours(n), "value": y}))
    assert flagged(out) == [hours(n)[400]]
    assert out["score"][400] > 2 * ALARM


def test_a_dip_of_a_few_hours_is_one_alarm_at_its_start():
    rng = np.random.default_rng(2)
    n = 24 * 21
    y = daily(n) + rng.normal(0, 0.3, n)
    y[300:304] -= 3.0
    out = detect(pl.DataFrame({"ts": hours(n), "value": y}))
    assert flagged(out) == [hours(n)[300]]
    assert (out["score"][300:304] > ALARM).all()  # every hour of it stands out; one alarm is raised


def test_a_level_shift_is_flagged_from_its_start_then_absorbed():
    rng = np.random.default_rng(3)
    n = 24 * 21
    y = daily(n) + rng.normal(0, 0.3, n)
    y[250:] += 4.0
    out = detect(pl.DataFrame({"ts": hours(n), "value": y}))
    assert flagged(out) == [hours(n)[250]]  # raised at its start, then the new level is normal
    assert out["score"][250] > ALARM and (out["score"][250 + 24:] < ALARM).mean() > 0.95


def test_a_slow_trend_and_slowly_growing_seasonality_are_not_anomalies():
    rng = np.random.default_rng(4)
    n = 24 * 28
    t = np.arange(n)
    y = 50 + 0.05 * t + (3 + 0.001 * t) * np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.5, n)
    out = detect(pl.DataFrame({"ts": hours(n), "value": y}))
    assert flagged(out) == []


def test_a_weekly_pattern_is_learned():
    rng = np.random.default_rng(5)
    n = 24 * 28
    t = np.arange(n)
    weekend = ((t // 24) % 7) >= 5
    y = np.where(weekend, 5.0, 20.0) + daily(n, 2.0, 0.0) + rng.normal(0, 0.4, n)
    out = detect(pl.DataFrame({"ts": hours(n), "value": y}))
    assert not out["is_anomaly"][24 * 15:].any()  # from the day after two whole weeks


def test_small_denominators_are_not_alarmed_large_ones_are():
    rng = np.random.default_rng(6)
    n = 24 * 21
    small = np.full(n, 40)
    clicks = rng.binomial(small, 0.10)
    clicks[300] = 0  # 0 of 40 when 4 are expected: noise at this size
    out = detect(pl.DataFrame({"ts": hours(n), "numerator": clicks, "denominator": small}))
    assert not out["is_anomaly"][300]
    large = np.full(n, 40_000)
    clicks = rng.binomial(large, 0.10)
    clicks[460] = int(40_000 * 0.09)  # a 10 % relative dip at 40,000 messages
    out = detect(pl.DataFrame({"ts": hours(n), "numerator": clicks, "denominator": large}))
    assert flagged(out) == [hours(n)[460]]
    lower, upper = out["lower"][460], out["upper"][460]
    assert lower < 0.10 < upper and upper - lower < 0.02  # watched tightly (the 40-message band is ~0.3 wide)


def test_a_persistent_rate_drop_on_a_small_slice_is_found_by_accumulation():
    rng = np.random.default_rng(7)
    n = 24 * 21
    den = rng.poisson(15, n)
    num = rng.binomial(den, 0.15)
    num[320:] = rng.binomial(den[320:], 0.01)
    out = detect(pl.DataFrame({"ts": hours(n), "numerator": num, "denominator": den}))
    marks = flagged(out)
    assert marks and abs((marks[0] - hours(n)[320]).total_seconds()) <= 2 * 3600
    assert not out["is_anomaly"][:300].any()


def test_missing_hours_and_irregular_timestamps():
    rng = np.random.default_rng(8)
    n = 24 * 21
    ts = hours(n)
    y = daily(n) + rng.normal(0, 0.3, n)
    keep = rng.random(n) > 0.3  # 30 % of hours missing
    keep[400] = True
    y[400] += 5.0
    jitter = [t + timedelta(minutes=int(m)) for t, m in zip(ts, rng.integers(0, 59, n))]
    frame = pl.DataFrame({"ts": jitter, "value": y}).filter(pl.Series(keep))
    out = detect(frame)
    assert out.height == int(keep.sum())  # one row per timestamp with data, none invented
    assert flagged(out) == [jitter[400]]


def test_a_short_history_is_judged_once_the_warm_up_has_passed():
    rng = np.random.default_rng(9)
    n = 24 * 8
    y = daily(n) + rng.normal(0, 0.3, n)
    y[100] += 5.0  # inside the warm-up: too little history to call it
    y[170] += 5.0
    out = detect(pl.DataFrame({"ts": hours(n), "value": y}))
    assert OnlineParams().min_history == 150
    assert flagged(out) == [hours(n)[170]]


def test_a_constant_series_has_no_anomalies_until_it_changes():
    n = 24 * 10
    y = np.full(n, 7.0)
    out = detect(pl.DataFrame({"ts": hours(n), "value": y}))
    assert flagged(out) == [] and (out["score"] == 0).all()
    y[200] = 8.0
    assert flagged(detect(pl.DataFrame({"ts": hours(n), "value": y}))) == [hours(n)[200]]


def test_empty_and_tiny_frames():
    empty = pl.DataFrame({"ts": pl.Series([], dtype=pl.Datetime("us", "UTC")), "value": pl.Series([], dtype=pl.Float64)})
    assert detect(empty).height == 0
    one = detect(pl.DataFrame({"ts": [START], "value": [1.0]}))
    assert one.height == 1 and not one["is_anomaly"][0]


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match="'ts'"):
        detect(pl.DataFrame({"value": [1.0]}))
    with pytest.raises(ValueError, match="numerator"):
        detect(pl.DataFrame({"ts": [START]}))


def test_daylight_saving_change_in_the_recipients_time_zone_is_not_an_anomaly():
    """Sends peak at 09:00 local in Berlin; after the October change the peak moves one UTC hour."""
    rng = np.random.default_rng(10)
    start = datetime(2026, 10, 1, tzinfo=timezone.utc)
    n = 24 * 42  # across the change on 2026-10-25
    ts = pl.Series("ts", hours(n, start)).dt.convert_time_zone("Europe/Berlin")
    local_hour = ts.dt.hour().to_numpy()
    expected = np.where(local_hour == 9, 500.0, 20.0)
    sends = rng.poisson(expected)
    frame = pl.DataFrame({"ts": ts, "value": sends.astype(float)})
    assert flagged(detect(frame, kind="count")) == []
    utc_frame = frame.with_columns(pl.col("ts").dt.convert_time_zone("UTC"))
    assert flagged(detect(utc_frame, kind="count", timezone="Europe/Berlin")) == []
    # judged on the UTC clock instead, the moved peak is (wrongly) an anomaly: the test has teeth
    assert flagged(detect(utc_frame, kind="count", timezone="UTC")) != []


def test_params_are_documented_with_their_defaults():
    doc = Params.__doc__ or ""
    for name in Params.__dataclass_fields__:
        assert name in doc, name
