"""Seasonal, incident-robust baselines for many hourly series at once (a series × hour matrix).

Three kinds of series share one engine:

* ``rate``  — numerator / denominator (delivered / sent, clicked / delivered, ...): the expectation is
  a rate, judged binomially at the observed denominator;
* ``count`` — a non-negative count per hour (send volume): Poisson-like;
* ``value`` — any real-valued series: robust (median / MAD) additive model.

Seasonality is hour of week, with hour of day as the fallback and prior, both in the *series' own*
time zone: "the same hour last week" is the same local wall-clock hour, so a daylight-saving change
moves the comparison by an hour of UTC instead of raising an alarm. Every expectation at hour t uses
only data before t, and past incidents are trimmed out of the cells they would contaminate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

HOUR_S = 3600
MEDIAN_CHI2_1 = 0.4549364231195724  # median of a chi-square with one degree of freedom


@dataclass(frozen=True)
class Params:
    """Model parameters (the defaults are the ones the job and ``detect`` use).

    weeks: past weeks whose same local hour-of-week forms the weekly cell (W = 4).
    days: past days whose same local hour-of-day forms the daily cell (D = 7).
    prior_messages: shrinkage strength m, in denominator units, of the weekly cell towards the
        daily cell and of the daily cell towards the trailing 7-day rate (rates only; 20).
    trim_z: a past cell further than this many standard deviations from the cells' (weighted)
        median is treated as a past incident and left out of the baseline (3.0).
    tolerance: relative cell-to-cell variation that is not an incident (10 %): added to the
        sampling variance when trimming, and to the predictive variance of counts.
    shift: the alternative the CUSUM watches for: a change of this size in log-odds (rates) or in
        log (counts), i.e. about a factor e (1.0).
    value_shift: the same for ``value`` series, in robust standard deviations (3.0).
    threshold: CUSUM alarm level h in log-likelihood-ratio units; ln(10 000) ≈ 9.21 keeps false
        alarms below about one per 10 000 in-control series-hours (Wald's bound ARL₀ ≥ e^h).
    start_evidence: an incident starts at the first hour of the alarmed run whose own
        log-likelihood ratio is at least this (1.0), within ``start_slack`` of the best change point.
    start_slack: likelihood slack (ln 10 ≈ 2.3) defining the plausible change points.
    cap: after an alarm the CUSUM is capped at cap × h so that it resets soon after recovery (1.0).
    min_history_hours: hours of history a series needs before it is scored (24).
    level_days: ``value`` series only: days of residuals whose median tracks the level (trend,
        level shifts) on top of the seasonal cells (2).
    max_dispersion: upper clip of the per-series over-dispersion factor (25).
    count_daily_fallback: counts with no week of history yet use the daily cells (True); the job
        turns this off because send volume follows weekly campaign calendars.
    """

    weeks: int = 4
    days: int = 7
    prior_messages: float = 20.0
    trim_z: float = 3.0
    tolerance: float = 0.10
    shift: float = 1.0
    value_shift: float = 3.0
    threshold: float = 9.21
    start_evidence: float = 1.0
    start_slack: float = 2.3
    cap: float = 1.0
    min_history_hours: int = 24
    level_days: int = 2
    max_dispersion: float = 25.0
    count_daily_fallback: bool = True

    @property
    def band_z(self) -> float:
        """Half-width of [lower, upper] in predictive standard deviations: a point outside the band
        alarms on its own (≈ sqrt(2h) for rates and counts)."""
        return float(np.sqrt(2.0 * self.threshold))

    @property
    def value_band_z(self) -> float:
        return (self.threshold + self.value_shift ** 2 / 2.0) / self.value_shift


def local_hours(hours: np.ndarray, tz: str | None) -> np.ndarray:
    """Local wall-clock hour stamps (hours since the epoch, as if local were UTC) of UTC hour stamps."""
    if tz is None or tz == "UTC":
        return hours.astype(np.int64)
    s = pl.Series("t", hours.astype(np.int64) * HOUR_S * 1_000_000).cast(pl.Datetime("us", "UTC"))
    local = s.dt.convert_time_zone(tz).dt.replace_time_zone(None).dt.epoch("s").to_numpy()
    return (local // HOUR_S).astype(np.int64)


def lag_index(local: np.ndarray, lags: list[int]) -> np.ndarray:
    """For each grid position, the earlier position that was ``lag`` local hours before (-1 if none).

    ``local`` is non-decreasing (a repeated hour in autumn, a skipped one in spring); a target that
    falls into a skipped hour maps to the hour after it."""
    T = local.size
    pos = np.arange(T)
    out = np.full((len(lags), T), -1, dtype=np.int64)
    for k, lag in enumerate(lags):
        target = local - lag
        idx = np.searchsorted(local, target, side="left")
        idxc = np.minimum(idx, T - 1)
        ok = (idx < pos) & (local[idxc] - target <= 1) & (local[idxc] >= target)
        out[k] = np.where(ok, idxc, -1)
    return out


def gather(M: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """M[:, idx] with -1 meaning missing: [S, T] × [K, T] → [S, K, T]."""
    padded = np.concatenate([M, np.full((M.shape[0], 1), np.nan, dtype=M.dtype)], axis=1)
    return padded[:, np.where(idx < 0, M.shape[1], idx)]


def _weighted_median(rate: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Weighted median along axis 1 of [S, K, T] (NaN rates ignored)."""
    r = np.where(np.isnan(rate), np.inf, rate)
    order = np.argsort(r, axis=1)
    rs = np.take_along_axis(r, order, axis=1)
    ws = np.take_along_axis(np.where(np.isnan(rate), 0.0, weight), order, axis=1)
    cw = np.cumsum(ws, axis=1)
    half = cw[:, -1:, :] / 2.0
    k = np.argmax(cw >= half, axis=1)[:, None, :]
    med = np.take_along_axis(rs, k, axis=1)[:, 0, :]
    return np.where(np.isfinite(med) & (cw[:, -1, :] > 0), med, np.nan)


def trimmed_pool(N: np.ndarray, D: np.ndarray, binomial: bool, trim_z: float, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Pooled (ΣN, ΣD) over the K past cells, leaving out cells inconsistent with the cells' median.

    A cell is inconsistent when |N_k − D_k·p₀| > trim_z·sqrt(var_k) + ½, with p₀ the D-weighted median
    rate of the cells and var_k its binomial (or Poisson) variance plus (tol·D_k·p₀)². One past
    incident week therefore does not lower next week's expectation."""
    valid = ~np.isnan(N) & ~np.isnan(D) & (D > 0)
    Nz = np.where(valid, N, 0.0)
    Dz = np.where(valid, D, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(valid, Nz / np.where(Dz > 0, Dz, 1.0), np.nan)
    # weights capped at the mean cell size, so that one big cell (a past incident during a blast)
    # cannot be the median on its own
    n_valid = np.maximum(valid.sum(axis=1, keepdims=True), 1)
    cap = Dz.sum(axis=1, keepdims=True) / n_valid
    p0 = _weighted_median(rate, np.minimum(Dz, cap))[:, None, :]
    mu = Dz * p0
    var = mu * (1.0 - p0) if binomial else mu
    var = var + (tol * mu) ** 2 + 0.25
    keep = valid & (np.abs(Nz - mu) <= trim_z * np.sqrt(var) + 0.5)
    sN = np.where(keep, Nz, 0.0).sum(axis=1)
    sD = np.where(keep, Dz, 0.0).sum(axis=1)
    return sN, sD


def _trailing_sum(M: np.ndarray, window: int) -> np.ndarray:
    """Sum over the previous ``window`` positions (excluding the current one), NaN as 0."""
    c = np.cumsum(np.nan_to_num(M), axis=1)
    c = np.concatenate([np.zeros((M.shape[0], 1)), c], axis=1)
    T = M.shape[1]
    hi = np.arange(T)
    lo = np.maximum(hi - window, 0)
    return c[:, hi] - c[:, lo]


def _day_blocks(M: np.ndarray, days: int) -> np.ndarray:
    """[S, days, T]: sums over the 24-hour blocks (t−24j, t−24(j−1)] before each position (j = 1..days)."""
    S, T = M.shape
    c = np.concatenate([np.zeros((S, 1)), np.cumsum(np.nan_to_num(M), axis=1)], axis=1)
    hi = np.arange(T)
    out = np.empty((S, days, T))
    for j in range(1, days + 1):
        top, bottom = hi - 24 * (j - 1), hi - 24 * j
        out[:, j - 1] = np.where(bottom >= 0, c[:, np.maximum(top, 0)] - c[:, np.maximum(bottom, 0)], np.nan)
    return out


@dataclass
class Expectation:
    """Per point: expected numerator mu, predictive variance var (before dispersion) and whether scored."""

    mu: np.ndarray
    var: np.ndarray
    scored: np.ndarray


def expect_rates(num: np.ndarray, den: np.ndarray, week_idx: np.ndarray, day_idx: np.ndarray, p: Params) -> Expectation:
    """Expected numerators of rate series: weekly cell → daily cell → trailing week, shrunk in that order.

    p̂ = (N_w + m·p_d) / (D_w + m),  p_d = (N_d + m·p_7) / (D_d + m),  p_7 = (N_7 + m·p_cum) / (D_7 + m)
    with (N_w, D_w), (N_d, D_d) the trimmed pools of the weekly and daily cells, (N_7, D_7) the
    trimmed pool of the last seven 24-hour blocks and p_cum the rate of all history so far. Predictive variance of the numerator at
    denominator d: d·p̂(1−p̂) + d²·p̂(1−p̂)/(D_w + D_d + m) (sampling plus the baseline's uncertainty)."""
    m = p.prior_messages
    Nw, Dw = trimmed_pool(gather(num, week_idx), gather(den, week_idx), True, p.trim_z, p.tolerance)
    Nd, Dd = trimmed_pool(gather(num, day_idx), gather(den, day_idx), True, p.trim_z, p.tolerance)
    N7, D7 = trimmed_pool(_day_blocks(num, p.days), _day_blocks(den, p.days), True, p.trim_z, p.tolerance)
    Nc, Dc = _trailing_sum(num, num.shape[1]), _trailing_sum(den, den.shape[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        p_cum = Nc / Dc
        p7 = (N7 + m * p_cum) / (D7 + m)
        pd_ = (Nd + m * p7) / (Dd + m)
        ph = (Nw + m * pd_) / (Dw + m)
    ph = np.clip(ph, 1e-6, 1 - 1e-6)
    d = np.nan_to_num(den)
    pq = ph * (1 - ph)
    var = d * pq + d * d * pq / (Dw + Dd + m)
    history = np.arange(num.shape[1]) >= p.min_history_hours
    scored = (Dc > 0) & history[None, :] & ~np.isnan(den) & ~np.isnan(num)
    return Expectation(np.where(scored, d * ph, np.nan), np.where(scored, var, np.nan), scored)


def expect_counts(cnt: np.ndarray, week_idx: np.ndarray, day_idx: np.ndarray, p: Params) -> Expectation:
    """Expected counts: the trimmed mean of the weekly cells (the same local hour of the past weeks);
    with no week of history yet, of the daily cells. Predictive variance λ + λ/K + (tol·λ)²."""
    ones = np.where(np.isnan(cnt), np.nan, 1.0)
    Nw, Kw = trimmed_pool(gather(cnt, week_idx), gather(ones, week_idx), False, p.trim_z, p.tolerance)
    Nd, Kd = trimmed_pool(gather(cnt, day_idx), gather(ones, day_idx), False, p.trim_z, p.tolerance)
    with np.errstate(invalid="ignore", divide="ignore"):
        daily = np.where(Kd > 0, Nd / np.maximum(Kd, 1), np.nan) if p.count_daily_fallback else np.nan
        lam = np.where(Kw > 0, Nw / np.maximum(Kw, 1), daily)
        K = np.where(Kw > 0, Kw, Kd)
        var = lam + lam / np.maximum(K, 1) + (p.tolerance * lam) ** 2
    history = np.arange(cnt.shape[1]) >= p.min_history_hours
    scored = ~np.isnan(lam) & history[None, :] & ~np.isnan(cnt)
    return Expectation(np.where(scored, lam, np.nan), np.where(scored, var, np.nan), scored)


def _nanmedian_axis1(X: np.ndarray) -> np.ndarray:
    """Median along axis 1 ignoring NaN, via one sort (fast for small axes)."""
    s = np.sort(X, axis=1)
    n = np.sum(~np.isnan(X), axis=1)
    lo = np.clip((n - 1) // 2, 0, X.shape[1] - 1)
    hi = np.clip(n // 2, 0, X.shape[1] - 1)
    a = np.take_along_axis(s, lo[:, None], axis=1)[:, 0]
    b = np.take_along_axis(s, hi[:, None], axis=1)[:, 0]
    return np.where(n > 0, (a + b) / 2.0, np.nan)


def expect_values(y: np.ndarray, week_idx: np.ndarray, day_idx: np.ndarray, p: Params) -> tuple[np.ndarray, np.ndarray]:
    """Expected values and a robust scale for real-valued series (additive model).

    seasonal = median of the same local hour in the past weeks (when at least two weeks exist), else of
    the same local hour in the past days; level = median of (y − seasonal) over the previous
    ``level_days`` whole days; expected = seasonal + level. Scale per series: 1.4826·MAD of the
    residuals (or 1.2533·mean absolute deviation when the MAD is 0), floored at 1e-9 + 1e-6·|median y|."""
    S, T = y.shape
    W = gather(y, week_idx)
    Dl = gather(y, day_idx)
    nw = np.sum(~np.isnan(W), axis=1)
    def med(X):
        Xs = np.moveaxis(X, 1, 2).reshape(-1, X.shape[1])
        return _nanmedian_axis1(Xs).reshape(S, T)
    seasonal = np.where(nw >= 2, med(W), med(Dl))
    r = y - seasonal
    n_days = -(-T // 24)
    pad = n_days * 24 - T
    R = np.concatenate([r, np.full((S, pad), np.nan)], axis=1).reshape(S, n_days, 24)
    level = np.zeros((S, n_days))
    L = p.level_days
    if L > 0 and n_days > 1:
        windows = np.full((S, n_days, 24 * L), np.nan)
        for j in range(1, L + 1):
            shifted = np.full_like(R, np.nan)
            shifted[:, j:, :] = R[:, :-j, :]
            windows[:, :, (j - 1) * 24:j * 24] = shifted
        lv = _nanmedian_axis1(windows.reshape(S * n_days, 24 * L)).reshape(S, n_days)
        level = np.where(np.isnan(lv), 0.0, lv)
    expected = seasonal + np.repeat(level, 24, axis=1)[:, :T]
    history = np.arange(T) >= p.min_history_hours
    expected = np.where(history[None, :], expected, np.nan)
    resid = y - expected
    center = np.nanmedian(np.where(np.isnan(resid), np.nan, resid), axis=1, keepdims=True) if np.any(~np.isnan(resid)) else np.zeros((S, 1))
    center = np.nan_to_num(center)
    mad = np.nanmedian(np.abs(resid - center), axis=1) if np.any(~np.isnan(resid)) else np.zeros(S)
    mad = np.nan_to_num(mad)
    meanabs = np.nan_to_num(np.nanmean(np.abs(resid - center), axis=1)) if np.any(~np.isnan(resid)) else np.zeros(S)
    scale = np.where(mad > 0, 1.4826 * mad, 1.2533 * meanabs)
    floor = 1e-9 + 1e-6 * np.abs(np.nan_to_num(np.nanmedian(y, axis=1))) if np.any(~np.isnan(y)) else np.full(S, 1e-9)
    scale = np.maximum(scale, floor)
    return expected, scale
