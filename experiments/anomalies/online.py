"""A causal (online) anomaly detector for one real-valued series at any sampling interval.

For every point ``t`` the detector decides "raise now" from the points ``<= t`` only. It is written
with vectorised trailing-window operations; each one reads the window ``[t - w, t]`` or ``[t - w, t)``
and never a later point, so running it on a prefix reproduces exactly the outputs on that prefix
(``check_causal`` and ``tests/test_anomalies_nab.py`` verify this).

Per point it forms a few *surprise* magnitudes (channels), each a non-negative residual:

* ``local``: ``|y_t - median(y[t-L .. t-1])|`` — a spike, a jump, the start of a level shift;
* ``run``: ``|mean(y[t-k+1 .. t]) - median(y[t-k-L .. t-k])|`` — a short persistent shift too small
  for one point;
* ``seasonal`` (only where the timestamps cover it): the smaller of the distances from ``y_t`` to the
  median of the same time of day on the previous ``days`` days and of the same time of week on the
  previous ``weeks`` weeks — a broken daily or weekly pattern (a missing peak, a flat stretch).

Each channel's magnitude is compared with a yardstick learned from that channel's own past: the
``quantile`` (default 0.99) of its magnitudes over the trailing ``calibration`` points, refreshed every
``block`` points from points strictly before the block (distribution-free and robust to an earlier
anomaly in the window; ``quantile = 1`` uses instead the exact record of the trailing window). The
score is the largest ratio magnitude / yardstick over channels; an alarm is raised when it exceeds
``1 + margin``, at least ``min_history`` points into the series, and not within ``refractory`` points of
the previous alarm (NAB rewards the first detection in a window and charges every further one outside
it). A level shift is flagged at its start and absorbed once the trailing medians have moved to the new
level (about ``L / 2`` points); the seasonal channel then disagrees for up to ``days`` days.

The false-alarm rate is set through the yardstick rather than a Gaussian tail: under an exchangeable
(no-anomaly) stream, a magnitude above the 0.99 quantile of the past occurs at rate about 1 %, and one
above 1.5 times it far less often for light- and moderately heavy-tailed residuals; the refractory period
caps the alarms at one per ``refractory`` points whatever the tail.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import maximum_filter1d

DAY_S = 86_400.0


@dataclass(frozen=True)
class OnlineParams:
    """Defaults of the causal detector (all counts are in points of the series, not time).

    local_window: L, number of past points whose median is the local prediction (default 12).
    run_length: k, number of latest points averaged by the ``run`` channel (default 6); 0 disables it.
    days: number of previous days whose same-time-of-day values form the daily prediction (default 3).
    weeks: number of previous weeks whose same-time-of-week values form the weekly prediction (default 2).
    min_seasonal_points_per_day: the seasonal channel is used only when a day holds at least this many
        points (default 12, i.e. sampling every 2 h or finer).
    calibration: number of past points from which each channel's yardstick is learned (default 5000).
    quantile: the yardstick is this quantile of the channel's past magnitudes (default 0.99); 1.0 uses the
        exact maximum (record) of the trailing calibration window instead.
    block: the quantile yardstick is refreshed every this many points (default 32), from points before
        the block only.
    margin: an alarm needs a channel magnitude above ``(1 + margin)`` times its yardstick (default 0.5).
    min_history: no alarm before this many points have been seen (default 150).
    refractory: no alarm within this many points after the previous alarm (default 200).
    floor: smallest magnitude a record may take, relative to the largest absolute value of the trailing
        calibration window,
        so a constant series does not make every tiny wobble a record (default 1e-3).
    """

    local_window: int = 12
    run_length: int = 6
    days: int = 3
    weeks: int = 2
    min_seasonal_points_per_day: int = 12
    calibration: int = 5000
    quantile: float = 0.99
    block: int = 32
    margin: float = 0.5
    min_history: int = 150
    refractory: int = 200
    floor: float = 1e-3


def trailing_median(y: np.ndarray, window: int, lag: int = 1) -> np.ndarray:
    """Median of ``y[t - lag - window + 1 .. t - lag]`` for every ``t`` (fewer points near the start,
    NaN where none); with ``lag = 1`` it excludes ``y[t]`` itself."""
    n = y.size
    pad = np.concatenate([np.full(window + lag - 1, np.nan), y])
    win = sliding_window_view(pad, window)[:n]  # win[t] = y[t - window - lag + 1 + ... ]
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmedian(win, axis=1)


def trailing_max_before(a: np.ndarray, window: int) -> np.ndarray:
    """Largest finite ``a[j]`` over ``t - window <= j < t`` for every ``t`` (−inf where none)."""
    b = np.where(np.isfinite(a), a, -np.inf)
    b = np.concatenate([[-np.inf], b[:-1]])  # shift by one: position t holds a[t-1]
    return maximum_filter1d(b, size=window, origin=(window - 1) // 2, mode="constant", cval=-np.inf)


def trailing_quantile_blocks(a: np.ndarray, window: int, q: float, block: int) -> np.ndarray:
    """Quantile ``q`` of the finite ``a[j]`` with ``s - window <= j < s``, where ``s`` is the start of the
    block of ``block`` points (blocks start at 0, block, 2·block, ...) holding each ``t`` (NaN where none).
    Uses only points before ``t``; updating once per block keeps the cost at ``n / block`` partitions."""
    n = a.size
    out = np.full(n, np.nan)
    for s in range(block, n + block - 1, block) if n else ():
        s = min(s, n)
        past = a[max(0, s - window):s]
        past = past[np.isfinite(past)]
        if past.size:
            out[s:s + block] = np.quantile(past, q)
    return out


def seasonal_lag_index(ts: np.ndarray, period_s: float, count: int) -> np.ndarray:
    """[count, n] index of the point one, two, ... periods before each point, −1 when no earlier point
    lies within half of its own spacing to the next point of that instant (only earlier points are used)."""
    t = ts.astype("datetime64[ms]").astype(np.int64).astype(float) / 1000.0
    n = t.size
    out = np.full((count, n), -1, dtype=np.int64)
    if n < 2:
        return out
    idx = np.arange(n)
    for c in range(count):
        target = t - (c + 1) * period_s
        j = np.clip(np.searchsorted(t, target), 0, n - 1)
        jm = np.clip(j - 1, 0, n - 1)
        best = np.where(np.abs(t[jm] - target) < np.abs(t[j] - target), jm, j)
        spacing = t[np.minimum(best + 1, n - 1)] - t[best]
        ok = (best < idx) & (np.abs(t[best] - target) <= spacing / 2)
        out[c] = np.where(ok, best, -1)
    return out


def seasonal_prediction(ts: np.ndarray, y: np.ndarray, period_s: float, count: int) -> np.ndarray:
    """Median of the values one to ``count`` periods before each point (NaN without any)."""
    idx = seasonal_lag_index(ts, period_s, count)
    vals = np.where(idx >= 0, y[np.maximum(idx, 0)], np.nan)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(vals, axis=0)


def channels(ts: np.ndarray, y: np.ndarray, p: OnlineParams) -> dict[str, np.ndarray]:
    """Per-point surprise magnitude of every channel (see the module docstring); NaN = no opinion."""
    out: dict[str, np.ndarray] = {}
    out["local"] = np.abs(y - trailing_median(y, p.local_window))
    if p.run_length > 1:
        k = p.run_length
        csum = np.concatenate([[0.0], np.cumsum(np.nan_to_num(y))])
        cnt = np.concatenate([[0], np.cumsum(np.isfinite(y))])
        idx = np.arange(y.size)
        lo = np.maximum(idx - k + 1, 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            run_mean = (csum[idx + 1] - csum[lo]) / (cnt[idx + 1] - cnt[lo])
        base = trailing_median(y, p.local_window, lag=k)
        out["run"] = np.abs(run_mean - base)
    if ts.size > 1:
        secs = np.diff(ts.astype("datetime64[ms]").astype(np.int64)) / 1000.0
        # typical spacing up to t, from the last 50 gaps (causal); the seasonal channel needs a fine enough grid
        step = trailing_median(np.concatenate([[np.nan], secs]), 50, lag=0)
        fine = np.isfinite(step) & (step > 0) & (DAY_S / np.where(step > 0, step, 1.0) >= p.min_seasonal_points_per_day)
        preds = []
        if p.days:
            preds.append(seasonal_prediction(ts, y, DAY_S, p.days))
        if p.weeks:
            preds.append(seasonal_prediction(ts, y, 7 * DAY_S, p.weeks))
        if preds and fine.any():
            dev = np.vstack([np.abs(y - q) for q in preds])
            dev = np.where(np.isnan(dev), np.inf, dev)
            m = dev.min(axis=0)
            out["seasonal"] = np.where(np.isfinite(m) & fine, m, np.nan)
    return out


def detect_stream(ts: np.ndarray, values: np.ndarray,
                  params: OnlineParams = OnlineParams()) -> tuple[np.ndarray, np.ndarray]:
    """Causal alarms and scores of one series.

    ``ts`` are increasing timestamps (numpy datetime64), ``values`` floats (NaN = missing, never alarmed).
    Returns ``(alarm, score)``: ``alarm[t]`` is the "raise now" flag decided from points ``<= t``; ``score[t]``
    is the largest ratio of a channel's magnitude to its trailing record (0 where undefined).
    """
    p = params
    y = np.asarray(values, dtype=float)
    ts = np.asarray(ts).astype("datetime64[ms]")
    n = y.size
    if ts.size != n:
        raise ValueError("ts and values differ in length")
    if n == 0:
        return np.zeros(0, dtype=bool), np.zeros(0)
    level = trailing_max_before(np.abs(y), p.calibration)
    floor = p.floor * np.where(np.isfinite(level) & (level > 0), level, 1.0)
    score = np.zeros(n)
    for mag in channels(ts, y, p).values():
        if p.quantile >= 1.0:
            record = trailing_max_before(mag, p.calibration)
        else:
            record = trailing_quantile_blocks(mag, p.calibration, p.quantile, p.block)
        yard = np.maximum(record, floor)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(np.isfinite(mag), mag / yard, 0.0)
        score = np.maximum(score, np.nan_to_num(ratio, nan=0.0, posinf=0.0))
    candidate = (score > 1.0 + p.margin) & (np.arange(n) >= p.min_history) & np.isfinite(y)
    alarm = np.zeros(n, dtype=bool)
    last = -(10**12)
    for t in np.flatnonzero(candidate):
        if t - last > p.refractory:
            alarm[t] = True
            last = t
    return alarm, score


def local_band(values: np.ndarray, params: OnlineParams = OnlineParams()) -> tuple[np.ndarray, np.ndarray]:
    """The local prediction (median of the previous ``local_window`` points) and the half-width a point
    may stray from it before the ``local`` channel alone raises an alarm — both causal."""
    p = params
    y = np.asarray(values, dtype=float)
    expected = trailing_median(y, p.local_window)
    mag = np.abs(y - expected)
    if p.quantile >= 1.0:
        record = trailing_max_before(mag, p.calibration)
    else:
        record = trailing_quantile_blocks(mag, p.calibration, p.quantile, p.block)
    level = trailing_max_before(np.abs(y), p.calibration)
    floor = p.floor * np.where(np.isfinite(level) & (level > 0), level, 1.0)
    return expected, (1.0 + p.margin) * np.maximum(record, floor)


def check_causal(ts: np.ndarray, values: np.ndarray, params: OnlineParams = OnlineParams(),
                 cuts: tuple[int, ...] | None = None) -> bool:
    """True when running on prefixes ``[:c]`` gives exactly the whole-series outputs on those prefixes."""
    alarm, score = detect_stream(ts, values, params)
    n = len(values)
    for c in cuts or (n // 5, n // 2, n - 1):
        a, s = detect_stream(ts[:c], values[:c], params)
        if not (np.array_equal(a, alarm[:c]) and np.array_equal(s, score[:c])):
            return False
    return True
