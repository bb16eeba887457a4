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
  previous ``weeks`` weeks — a broken daily or weekly pattern (a missing peak, a flat stretch);
* ``cusum`` (off by default): a two-sided CUSUM of the signed local residual in robust z-units (divided
  by the median ``local`` magnitude of the last 1000 points), with drift ``cusum_drift`` — a slow level shift.

Each channel is judged by a calibrated tail probability learned from that channel's own past. Before
every block of ``block`` points, from the channel's magnitudes over the trailing ``calibration`` points
strictly before the block, the detector takes the empirical ``1 - tail_fraction`` quantile ``u`` and fits
a Pareto tail to the exceedances (Hill estimator ``gamma = mean(log(x / u) | x > u)``, capped at
``max_tail_index``); the *yardstick* is the magnitude that tail exceeds with probability ``alpha``,
``u * (tail_fraction / alpha) ** gamma``. A heavy-tailed channel (large ``gamma``) thus gets a yardstick
far above its bulk, a light-tailed one a yardstick close to ``u``. Because every channel's yardstick sits
at the same tail probability, the largest ratio magnitude / yardstick over channels is a combination by
calibrated p-value (a ratio ``r`` means tail probability ``alpha * r ** (-1 / gamma)`` on that channel).
The score is that largest ratio; an alarm is raised when it exceeds ``1 + margin`` (``margin`` asks for
extra evidence that shrinks the tail probability fast on light-tailed channels and slowly on heavy-tailed
ones), at least ``min_history`` points into the series, and outside the refractory period of the previous
alarm. The refractory period scales with the series: the next alarm needs more than
``refractory_fraction`` times the number of points seen so far since the previous alarm, or more than
``refractory_days`` of time, whichever comes first (NAB rewards the first detection in a window whose
width is a fraction of the file length and charges every further one outside it; the time cap keeps the
period at most a day on long or finely sampled series).

A level shift is flagged at its start and absorbed once the trailing medians have moved to the new level
(about ``L / 2`` points); the seasonal channel then disagrees for up to ``days`` days.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import maximum_filter1d

DAY_S = 86_400.0


@dataclass(frozen=True)
class OnlineParams:
    """Defaults of the causal detector (counts are in points of the series unless a unit is named).

    local_window: L, number of past points whose median is the local prediction (default 12).
    run_length: k, number of latest points averaged by the ``run`` channel (default 6); 0 disables it.
    days: number of previous days whose same-time-of-day values form the daily prediction (default 3).
    weeks: number of previous weeks whose same-time-of-week values form the weekly prediction (default 2).
    min_seasonal_points_per_day: the seasonal channel is used only when a day holds at least this many
        points (default 12, i.e. sampling every 2 h or finer).
    cusum_drift: drift (in robust z-units) of the optional CUSUM level-shift channel (default 0.0, i.e.
        off: it did not help on the development folders).
    calibration: number of past points from which each channel's tail is learned (default 5000).
    tail_fraction: the Pareto tail is fitted to the magnitudes above the ``1 - tail_fraction`` quantile
        of the channel's past (default 0.05).
    alpha: tail probability at which the yardstick sits (default 0.0065); the yardstick is the plain
        ``1 - alpha`` quantile when ``alpha >= tail_fraction`` or too few exceedances exist.
    max_tail_index: cap on the Hill tail index ``gamma`` (default 1.0).
    block: the yardsticks are refreshed every this many points (default 32), from points before the
        block only.
    margin: an alarm needs a channel magnitude above ``(1 + margin)`` times its yardstick (default 0.4).
    min_history: no alarm before this many points have been seen (default 150).
    refractory_fraction: after an alarm, the next one needs more than this fraction of the points seen
        so far (``t``) to have passed since it (default 0.05) ...
    refractory_days: ... or more than this many days of time (default 1.0), whichever comes first.
    floor: smallest yardstick, relative to the largest absolute value of the trailing calibration window,
        so a constant series does not make every tiny wobble an alarm (default 1e-3).
    """

    local_window: int = 12
    run_length: int = 6
    days: int = 3
    weeks: int = 2
    min_seasonal_points_per_day: int = 12
    cusum_drift: float = 0.0
    calibration: int = 5000
    tail_fraction: float = 0.05
    alpha: float = 0.0065
    max_tail_index: float = 1.0
    block: int = 32
    margin: float = 0.4
    min_history: int = 150
    refractory_fraction: float = 0.05
    refractory_days: float = 1.0
    floor: float = 1e-3


def _nanmedian(a: np.ndarray, axis: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(a, axis=axis)


def trailing_median(y: np.ndarray, window: int, lag: int = 1) -> np.ndarray:
    """Median of ``y[t - lag - window + 1 .. t - lag]`` for every ``t`` (fewer points near the start,
    NaN where none); with ``lag = 1`` it excludes ``y[t]`` itself."""
    n = y.size
    pad = np.concatenate([np.full(window + lag - 1, np.nan), y])
    win = sliding_window_view(pad, window)[:n]
    return _nanmedian(win, axis=1)


def trailing_max_before(a: np.ndarray, window: int) -> np.ndarray:
    """Largest finite ``a[j]`` over ``t - window <= j < t`` for every ``t`` (−inf where none)."""
    b = np.where(np.isfinite(a), a, -np.inf)
    b = np.concatenate([[-np.inf], b[:-1]])
    return maximum_filter1d(b, size=window, origin=(window - 1) // 2, mode="constant", cval=-np.inf)


def block_starts(n: int, block: int) -> range:
    """Starts ``block, 2·block, ...`` of the blocks after the first (which has no past), up to ``n``."""
    return range(block, n + block - 1, block) if n else ()


def per_block(a: np.ndarray, window: int, block: int, stat) -> np.ndarray:
    """``stat(past)`` of the finite ``a[j]`` with ``s - window <= j < s``, where ``s`` is the start of the
    block of ``block`` points holding each ``t`` (NaN where there is no past). Uses only points before ``t``."""
    n = a.size
    out = np.full(n, np.nan)
    for s in block_starts(n, block):
        s = min(s, n)
        past = a[max(0, s - window):s]
        past = past[np.isfinite(past)]
        if past.size:
            out[s:s + block] = stat(past)
    return out


def trailing_quantile_blocks(a: np.ndarray, window: int, q: float, block: int) -> np.ndarray:
    """Quantile ``q`` of the past ``window`` points before each block (see ``per_block``)."""
    return per_block(a, window, block, lambda past: np.quantile(past, q))


def trailing_tail_yardstick(a: np.ndarray, window: int, tau: float, alpha: float, max_index: float,
                            block: int) -> np.ndarray:
    """Magnitude exceeded with probability ``alpha`` according to the past ``window`` points before each
    block: the empirical ``1 - tau`` quantile ``u`` extended by a Pareto (Hill) tail fitted to the
    exceedances, ``u * (tau / alpha) ** gamma`` with ``gamma = mean(log(x / u) | x > u)`` (capped)."""
    def tail(past: np.ndarray) -> float:
        if alpha >= tau:
            return float(np.quantile(past, 1.0 - alpha))
        u = np.quantile(past, 1.0 - tau)
        exc = past[past > u]
        if u > 0 and exc.size >= 3:
            return float(u * (tau / alpha) ** min(float(np.mean(np.log(exc / u))), max_index))
        return float(np.quantile(past, 1.0 - alpha))

    return per_block(a, window, block, tail)


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
    return _nanmedian(vals, axis=0)


def run_channel(y: np.ndarray, k: int, window: int) -> np.ndarray:
    """``|mean(y[t-k+1 .. t]) - median(y[t-k-window+1 .. t-k])|`` (NaN-aware)."""
    csum = np.concatenate([[0.0], np.cumsum(np.nan_to_num(y))])
    cnt = np.concatenate([[0], np.cumsum(np.isfinite(y))])
    idx = np.arange(y.size)
    lo = np.maximum(idx - k + 1, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        run_mean = (csum[idx + 1] - csum[lo]) / (cnt[idx + 1] - cnt[lo])
    base = trailing_median(y, window, lag=k)
    return np.abs(run_mean - base)


def cusum_channel(resid: np.ndarray, scale: np.ndarray, drift: float) -> np.ndarray:
    """Larger of the upper and lower CUSUM of ``resid / scale`` (clipped to ±10) with the given drift."""
    z = np.where(np.isfinite(resid) & (scale > 0), resid / np.where(scale > 0, scale, 1.0), 0.0)
    z = np.clip(z, -10.0, 10.0)
    out = np.zeros(z.size)
    sp = sm = 0.0
    for i, v in enumerate(z.tolist()):
        sp = max(0.0, sp + v - drift)
        sm = max(0.0, sm - v - drift)
        out[i] = sp if sp > sm else sm
    return out


def channels(ts: np.ndarray, y: np.ndarray, p: OnlineParams) -> dict[str, np.ndarray]:
    """Per-point surprise magnitude of every channel (see the module docstring); NaN = no opinion."""
    out: dict[str, np.ndarray] = {}
    med = trailing_median(y, p.local_window)
    out["local"] = np.abs(y - med)
    if p.run_length > 1:
        out["run"] = run_channel(y, p.run_length, p.local_window)
    if p.cusum_drift > 0:
        scale = trailing_quantile_blocks(out["local"], 1000, 0.5, p.block)
        out["cusum"] = cusum_channel(y - med, scale, p.cusum_drift)
    if ts.size > 1:
        secs = np.diff(ts.astype("datetime64[ms]").astype(np.int64)) / 1000.0
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


def yardstick(mag: np.ndarray, p: OnlineParams) -> np.ndarray:
    """The channel's tail yardstick (see ``trailing_tail_yardstick``) with the parameters of ``p``."""
    return trailing_tail_yardstick(mag, p.calibration, p.tail_fraction, p.alpha, p.max_tail_index, p.block)


def detect_stream(ts: np.ndarray, values: np.ndarray,
                  params: OnlineParams = OnlineParams()) -> tuple[np.ndarray, np.ndarray]:
    """Causal alarms and scores of one series.

    ``ts`` are increasing timestamps (numpy datetime64), ``values`` floats (NaN = missing, never alarmed).
    Returns ``(alarm, score)``: ``alarm[t]`` is the "raise now" flag decided from points ``<= t``; ``score[t]``
    is the largest ratio of a channel's magnitude to its tail yardstick (0 where undefined); an alarm
    needs ``score > 1 + margin``.
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
        yard = np.maximum(yardstick(mag, p), floor)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(np.isfinite(mag), mag / yard, 0.0)
        score = np.maximum(score, np.nan_to_num(ratio, nan=0.0, posinf=0.0))
    candidate = (score > 1.0 + p.margin) & (np.arange(n) >= p.min_history) & np.isfinite(y)
    alarm = np.zeros(n, dtype=bool)
    tsec = ts.astype(np.int64) / 1000.0
    last = None
    for t in np.flatnonzero(candidate):
        if (last is not None and t - last <= p.refractory_fraction * t
                and tsec[t] - tsec[last] <= p.refractory_days * DAY_S):
            continue
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
    level = trailing_max_before(np.abs(y), p.calibration)
    floor = p.floor * np.where(np.isfinite(level) & (level > 0), level, 1.0)
    return expected, (1.0 + p.margin) * np.maximum(yardstick(mag, p), floor)


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
