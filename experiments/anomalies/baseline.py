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

import warnings
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
    shifts: the alternatives the CUSUMs watch for, one chart each: changes of these sizes in
        log-odds (rates) or in log (counts) — about 10 %, 35 % and a factor e ((0.1, 0.3, 1.0)).
    value_shift: the same for ``value`` series, in robust standard deviations (3.0).
    threshold: CUSUM alarm level h in log-likelihood-ratio units; ln(10 000) ≈ 9.21 keeps false
        alarms below about one per 10 000 in-control series-hours (Wald's bound ARL₀ ≥ e^h); each of
        the k charts uses h + ln k, so that together they keep the same bound.
    series_per_threshold: a run that judges S series together raises every chart's threshold by
        ln(S / series_per_threshold) when S is larger (1000), so that the run's false alarms per hour
        stay what they are for that many series: judging more slices does not bring more false alerts.
    start_evidence: an incident starts at the first hour of the alarmed run whose own
        log-likelihood ratio is at least this (1.0), within ``start_slack`` of the best change point.
    start_slack: likelihood slack (ln 10 ≈ 2.3) defining the plausible change points.
    cap: after an alarm the CUSUM is capped at cap × h so that it resets soon after recovery (1.0).
    min_history_hours: hours of history a series needs before it is scored (24).
    level_tracking: ``value`` series only: add the previous day's median residual (plus a damped
        trend) to the seasonal cells, so trends are followed and level shifts absorbed (True).
    max_dispersion: upper clip of the per-series over-dispersion factor (25).
    count_tolerance: relative week-to-week variation of counts that is not an incident (25 %):
        campaign calendars move volumes far more than chance does.
    count_daily_fallback: counts with no week of history yet use the daily cells (True); the job
        turns this off because send volume follows weekly campaign calendars.
    """

    weeks: int = 4
    days: int = 7
    prior_messages: float = 20.0
    trim_z: float = 3.0
    tolerance: float = 0.10
    shifts: tuple[float, ...] = (0.1, 0.3, 1.0)
    value_shift: float = 3.0
    threshold: float = 9.21
    series_per_threshold: int = 1000
    start_evidence: float = 0.5
    start_slack: float = 2.3
    cap: float = 1.0
    min_history_hours: int = 24
    level_tracking: bool = True
    max_dispersion: float = 25.0
    count_daily_fallback: bool = True
    count_tolerance: float = 0.25

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
        ok = (idx < pos) & (local[idxc] - target <= 1) & (local[idxc] >= target) & (target >= local[0])
        out[k] = np.where(ok, idxc, -1)
    return out


def gather(M: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """M[:, idx] with -1 meaning missing: [S, T] × [K, T] → [S, K, T]."""
    padded = np.concatenate([M, np.full((M.shape[0], 1), np.nan, dtype=M.dtype)], axis=1)
    return padded[:, np.where(idx < 0, M.shape[1], idx)]


def trimmed_pool(N: np.ndarray, D: np.ndarray, binomial: bool, trim_z: float, tol: float,
                 passes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Pooled (ΣN, ΣD) over the K past cells [S, K, T], leaving out past incidents.

    In each of ``passes`` rounds, every cell is compared with the pool of the *other* kept cells
    (leave-one-out, so a big incident cell cannot mask itself): z_k = (N_k − D_k·p₋ₖ) / sqrt(var_k)
    with var_k = D_k·p₋ₖ(1−p₋ₖ) (Poisson: D_k·p₋ₖ) + D_k²·p₋ₖ(1−p₋ₖ)/D₋ₖ + (tol·D_k·p₋ₖ)² + ¼; the
    cell with the largest |z_k| is dropped when it exceeds ``trim_z``. One past incident week
    therefore does not move next week's expectation."""
    valid = (D > 0) & ~np.isnan(N)  # NaN > 0 is False
    Nz = np.where(valid, N, 0.0).astype(np.float32)
    Dz = np.where(valid, D, 0.0).astype(np.float32)
    keep = valid
    limit = np.float32(trim_z * trim_z)
    tol2 = np.float32(tol * tol)
    for _ in range(passes):
        sN = (Nz * keep).sum(axis=1, keepdims=True)
        sD = (Dz * keep).sum(axis=1, keepdims=True)
        oD = sD - Dz
        has = keep & (oD > 0)
        oD = np.where(has, oD, np.float32(1.0))
        p_o = (sN - Nz) / oD
        mu = Dz * p_o
        spread = p_o * (1 - p_o) if binomial else p_o
        var = Dz * spread * (1 + Dz / oD) + tol2 * mu * mu + np.float32(0.25)
        dev = Nz - mu
        z2 = np.where(has, dev * dev / var, np.float32(0.0))
        zmax = z2.max(axis=1, keepdims=True)
        keep = keep & ~((z2 == zmax) & (zmax > limit))
    sN = (Nz * keep).sum(axis=1, dtype=np.float64)
    sD = (Dz * keep).sum(axis=1, dtype=np.float64)
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
    trimmed pool of the last seven 24-hour blocks and p_cum the rate of all history so far.
    Predictive variance of the numerator at denominator d: d·p̂(1−p̂) + d²·Var(p̂), with
    Var(p̂) = p̂(1−p̂)·D_w/(D_w+m)² + (m/(D_w+m))²·p̂(1−p̂)/(D_d+m)."""
    m = p.prior_messages
    n32, d32 = num.astype(np.float32), den.astype(np.float32)  # counts: exact in float32, half the memory traffic
    Nw, Dw = trimmed_pool(gather(n32, week_idx), gather(d32, week_idx), True, p.trim_z, p.tolerance)
    Nd, Dd = trimmed_pool(gather(n32, day_idx), gather(d32, day_idx), True, p.trim_z, p.tolerance)
    N7, D7 = trimmed_pool(_day_blocks(num, p.days), _day_blocks(den, p.days), True, p.trim_z, p.tolerance, passes=1)
    Nc, Dc = _trailing_sum(num, num.shape[1]), _trailing_sum(den, den.shape[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        p_cum = Nc / Dc
        p7 = (N7 + m * p_cum) / (D7 + m)
        m_d = m
        pd_ = (Nd + m_d * p7) / (Dd + m_d)
        m_w = m
        ph = (Nw + m_w * pd_) / (Dw + m_w)
    ph = np.clip(ph, 1e-6, 1 - 1e-6)
    d = np.nan_to_num(den)
    pq = ph * (1 - ph)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = Dw / (Dw + m_w)
        var_p = pq * Dw / (Dw + m_w) ** 2 + (1 - a) ** 2 * pq / (Dd + m_d)
    var = d * pq + d * d * var_p
    history = np.arange(num.shape[1]) >= p.min_history_hours
    scored = (Dc > 0) & history[None, :] & ~np.isnan(den) & ~np.isnan(num)
    return Expectation(np.where(scored, d * ph, np.nan), np.where(scored, var, np.nan), scored)


def expect_counts(cnt: np.ndarray, week_idx: np.ndarray, day_idx: np.ndarray, p: Params) -> Expectation:
    """Expected counts: the trimmed mean of the weekly cells (the same local hour of the past weeks);
    with no week of history yet, of the daily cells. Predictive variance λ + λ/K + (count_tolerance·λ)²."""
    ones = np.where(np.isnan(cnt), np.nan, 1.0)
    tol = p.count_tolerance
    Nw, Kw = trimmed_pool(gather(cnt, week_idx), gather(ones, week_idx), False, p.trim_z, tol)
    Nd, Kd = trimmed_pool(gather(cnt, day_idx), gather(ones, day_idx), False, p.trim_z, tol)
    with np.errstate(invalid="ignore", divide="ignore"):
        daily = np.where(Kd > 0, Nd / np.maximum(Kd, 1), np.nan) if p.count_daily_fallback else np.nan
        lam = np.where(Kw > 0, Nw / np.maximum(Kw, 1), daily)
        K = np.where(Kw > 0, Kw, Kd)
        var = lam + lam / np.maximum(K, 1) + (tol * lam) ** 2
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


def _day_level(r: np.ndarray) -> np.ndarray:
    """Per hour, the median residual of the previous 24-hour block plus a damped trend: m₁ + s·(12.5 + h)/24
    where s is the smaller of the last two block-to-block changes when they agree in sign (else 0)."""
    S, T = r.shape
    n_days = -(-T // 24)
    R = np.concatenate([r, np.full((S, n_days * 24 - T), np.nan)], axis=1).reshape(S * n_days, 24)
    enough = (np.sum(~np.isnan(R), axis=1) >= 12).reshape(S, n_days)
    M = np.where(enough, _nanmedian_axis1(R).reshape(S, n_days), np.nan)
    prev = np.full((S, n_days, 3), np.nan)
    for j in range(1, 4):
        if n_days > j:
            prev[:, j:, j - 1] = M[:, :-j]
    g1, g2 = prev[:, :, 0] - prev[:, :, 1], prev[:, :, 1] - prev[:, :, 2]
    ok = np.isfinite(g1) & np.isfinite(g2) & (np.sign(g1) == np.sign(g2))
    slope = np.where(ok, np.sign(g1) * np.minimum(np.abs(g1), np.abs(g2)), 0.0)
    hour = (np.arange(n_days * 24) % 24)[None, :]
    level = np.repeat(np.nan_to_num(prev[:, :, 0]), 24, axis=1) + np.repeat(slope, 24, axis=1) * (12.5 + hour) / 24.0
    return level[:, :T]


def expect_values(y: np.ndarray, week_idx: np.ndarray, day_idx: np.ndarray, p: Params) -> tuple[np.ndarray, np.ndarray]:
    """Expected values and their predictive variance for real-valued series (additive model).

    seasonal: the median of the same local hour in the k past weeks (k ≥ 2, the largest k with all
    k weeks present; with two weeks the daily cell votes too), else the median of the same local
    hour in the past days. level: the median of (y − seasonal) over the previous 24-hour block plus
    a damped trend (the smaller of its last two block-to-block changes when they agree in sign),
    learned under the same seasonal estimator, so gaining a week of history does not jump;
    expected = seasonal + level. Scale per series: 1.4826·MAD of the
    residuals (or 1.2533·mean absolute deviation when the MAD is 0), at least √6 times the robust s.d.
    of 6-hour means of the residuals (errors that persist for hours), floored at 1e-9 + 1e-6·|median y|;
    variance per point = scale² · (1 + π/2K) / typical(1 + π/2K), K the number of cells in its median."""
    S, T = y.shape
    W = gather(y, week_idx)
    Dl = gather(y, day_idx)
    nw = np.sum(~np.isnan(W), axis=1)
    nd = np.sum(~np.isnan(Dl), axis=1)

    def med(X: np.ndarray) -> np.ndarray:
        Xs = np.moveaxis(X, 1, 2).reshape(-1, X.shape[1])
        return _nanmedian_axis1(Xs).reshape(S, T)

    daily = med(Dl)
    # One estimator per source (weeks, days) and number k of cells, each with its own level learned
    # from the previous day's residuals under the same estimator: gaining a day or a week of history
    # (which moves a median of trending data) then never jumps. The richest available one is used.
    expected = daily.copy()  # the fallback in the first days: no level yet
    cells = nd.astype(float)
    candidates = [(Dl, k, None) for k in range(1, Dl.shape[1] + 1)]
    candidates += [(W, k, daily if k <= 2 else None) for k in range(2, W.shape[1] + 1)]
    for X, k, vote in candidates:
        Xk = X[:, :k, :]
        full = np.all(~np.isnan(Xk), axis=1)
        votes = Xk if vote is None else np.concatenate([Xk, vote[:, None, :]], axis=1)  # one odd week cannot decide alone
        est = np.where(full, med(votes), np.nan)
        if p.level_tracking:
            prev_ok = np.zeros_like(full)
            prev_ok[:, 24:] = full[:, :-24]
            est = np.where(prev_ok, est + _day_level(y - est), np.nan)
        use = np.isfinite(est)
        expected = np.where(use, est, expected)
        cells = np.where(use, float(k if vote is None else 3), cells)
    history = np.arange(T) >= p.min_history_hours
    expected = np.where(history[None, :], expected, np.nan)
    resid = y - expected
    has = np.any(~np.isnan(resid))
    center = np.nan_to_num(np.nanmedian(resid, axis=1, keepdims=True)) if has else np.zeros((S, 1))
    mad = np.nan_to_num(np.nanmedian(np.abs(resid - center), axis=1)) if has else np.zeros(S)
    meanabs = np.nan_to_num(np.nanmean(np.abs(resid - center), axis=1)) if has else np.zeros(S)
    scale = np.where(mad > 0, 1.4826 * mad, 1.2533 * meanabs)
    if has and T >= 12:
        # long-run scale: errors of the level persist for hours, so judge 6-hour means of the residuals
        # too (√6 · robust s.d. of 6-hour means equals the point scale when errors are independent)
        win = np.lib.stride_tricks.sliding_window_view(resid, 6, axis=1)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            means = np.nanmean(win, axis=2)
            c6 = np.nanmedian(means, axis=1, keepdims=True)
            lr = 1.4826 * np.sqrt(6.0) * np.nanmedian(np.abs(means - c6), axis=1)
        scale = np.maximum(scale, np.nan_to_num(lr))
    floor = 1e-9 + 1e-6 * np.abs(np.nan_to_num(np.nanmedian(y, axis=1))) if np.any(~np.isnan(y)) else np.full(S, 1e-9)
    scale = np.maximum(scale, floor)
    # a median of K cells is itself uncertain (≈ π/2·σ²/K): widen points built on fewer cells than usual
    inflate = 1.0 + np.pi / (2.0 * np.maximum(cells, 1.0))
    typical = np.nanmedian(np.where(np.isnan(expected), np.nan, inflate), axis=1, keepdims=True) if has else np.ones((S, 1))
    var = scale[:, None] ** 2 * inflate / np.nan_to_num(typical, nan=1.0)
    return expected, var
