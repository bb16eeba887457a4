"""Seasonal, incident-robust baselines for many hourly series at once (a series × hour matrix).

Two kinds of series share one engine:

* ``rate``  — numerator / denominator (delivered / sent, clicked / delivered, ...): the expectation is
  a rate, judged binomially at the observed denominator;
* ``count`` — a non-negative count per hour (send volume): Poisson-like.

(Real-valued series of any sampling interval have their own causal detector, ``online``.)

Seasonality is hour of week, with hour of day as the fallback and prior, both in the *series' own*
time zone: "the same hour last week" is the same local wall-clock hour, so a daylight-saving change
moves the comparison by an hour of UTC instead of raising an alarm. Every expectation at hour t uses
only data before t, and past incidents are kept out of the cells they would contaminate: hours of
alarmed spans are blanked out of the history (``stream``), and what remains is trimmed.
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
    shifts: the alternatives the CUSUMs watch for, one chart each: changes of these sizes in
        log-odds (rates) or in log (counts) — about 10 %, 35 % and a factor e ((0.1, 0.3, 1.0)).
    threshold: CUSUM alarm level h in log-likelihood-ratio units; ln(10 000) ≈ 9.21 keeps false
        alarms below about one per 10 000 in-control series-hours (Wald's bound ARL₀ ≥ e^h); each of
        the k charts uses h + ln k, so that together they keep the same bound.
    series_per_threshold: a run that judges S series together raises every chart's threshold by
        ln(S / series_per_threshold) when S is larger (1000; S rounded up to a power of two), so that
        the run's false alarms per hour stay what they are for that many series: judging more slices
        does not bring more false alerts.
    start_evidence: an incident starts at the first hour of the alarmed run whose own
        log-likelihood ratio is at least this (0.5), within ``start_slack`` of the best change point.
    start_slack: likelihood slack (ln 10 ≈ 2.3) defining the plausible change points.
    cap: after an alarm the CUSUM is capped at cap × h so that it resets soon after recovery (1.0).
    min_history_hours: hours of history a series needs before it is scored (24).
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
    threshold: float = 9.21
    series_per_threshold: int = 1000
    start_evidence: float = 0.5
    start_slack: float = 2.3
    cap: float = 1.0
    min_history_hours: int = 24
    max_dispersion: float = 25.0
    count_daily_fallback: bool = True
    count_tolerance: float = 0.25

    @property
    def band_z(self) -> float:
        """Half-width of [lower, upper] in predictive standard deviations: a point outside the band
        alarms on its own (≈ sqrt(2h) for rates and counts)."""
        return float(np.sqrt(2.0 * self.threshold))


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


def _prefix(M: np.ndarray) -> np.ndarray:
    """[S, T+1] running sums with a leading zero column (NaN counts as 0)."""
    return np.concatenate([np.zeros((M.shape[0], 1)), np.cumsum(np.nan_to_num(M), axis=1)], axis=1)


def _day_blocks(c: np.ndarray, cols: np.ndarray, days: int) -> np.ndarray:
    """[S, days, n]: from running sums ``c``, the sums over the 24-hour blocks [t−24j, t−24(j−1)) before
    each target position t in ``cols`` (j = 1..days); NaN where a block starts before the grid."""
    out = np.empty((c.shape[0], days, cols.size))
    for j in range(1, days + 1):
        top, bottom = cols - 24 * (j - 1), cols - 24 * j
        out[:, j - 1] = np.where(bottom >= 0, c[:, np.maximum(top, 0)] - c[:, np.maximum(bottom, 0)], np.nan)
    return out


@dataclass
class Expectation:
    """Per target position: expected numerator mu and predictive variance var (before dispersion)."""

    mu: np.ndarray
    var: np.ndarray


def expect_rates(num: np.ndarray, den: np.ndarray, week_idx: np.ndarray, day_idx: np.ndarray, p: Params,
                 cols: np.ndarray, num_h: np.ndarray, den_h: np.ndarray) -> Expectation:
    """Expected numerators of rate series at positions ``cols``: weekly cell → daily cell → trailing
    week, shrunk in that order. The history comes from ``num_h``/``den_h`` (the counts with hours of
    past incidents blanked out); the denominator of the target hour from ``den``.

    p̂ = (N_w + m·p_d) / (D_w + m),  p_d = (N_d + m·p_7) / (D_d + m),  p_7 = (N_7 + m·p_cum) / (D_7 + m)
    with (N_w, D_w), (N_d, D_d) the trimmed pools of the weekly and daily cells, (N_7, D_7) the
    trimmed pool of the last seven 24-hour blocks and p_cum the rate of all history so far.
    Predictive variance of the numerator at denominator d: d·p̂(1−p̂) + d²·Var(p̂), with
    Var(p̂) = p̂(1−p̂)·D_w/(D_w+m)² + (m/(D_w+m))²·p̂(1−p̂)/(D_d+m)."""
    m = p.prior_messages
    past = slice(0, int(cols.max()) + 1)  # only the history before the targets is read
    num_h, den_h = num_h[:, past], den_h[:, past]
    n32, d32 = num_h.astype(np.float32), den_h.astype(np.float32)  # counts: exact in float32, half the memory traffic
    wi, di = week_idx[:, cols], day_idx[:, cols]
    Nw, Dw = trimmed_pool(gather(n32, wi), gather(d32, wi), True, p.trim_z, p.tolerance)
    Nd, Dd = trimmed_pool(gather(n32, di), gather(d32, di), True, p.trim_z, p.tolerance)
    cn, cd = _prefix(num_h), _prefix(den_h)
    N7, D7 = trimmed_pool(_day_blocks(cn, cols, p.days), _day_blocks(cd, cols, p.days), True, p.trim_z, p.tolerance,
                          passes=1)
    Nc, Dc = cn[:, cols], cd[:, cols]
    with np.errstate(invalid="ignore", divide="ignore"):
        p_cum = Nc / Dc
        p7 = (N7 + m * p_cum) / (D7 + m)
        pd_ = (Nd + m * p7) / (Dd + m)
        ph = (Nw + m * pd_) / (Dw + m)
    ph = np.clip(ph, 1e-6, 1 - 1e-6)
    d = np.nan_to_num(den[:, cols])
    pq = ph * (1 - ph)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = Dw / (Dw + m)
        var_p = pq * Dw / (Dw + m) ** 2 + (1 - a) ** 2 * pq / (Dd + m)
    var = d * pq + d * d * var_p
    history = cols >= p.min_history_hours
    scored = (Dc > 0) & history[None, :] & ~np.isnan(den[:, cols]) & ~np.isnan(num[:, cols])
    return Expectation(np.where(scored, d * ph, np.nan), np.where(scored, var, np.nan))


def expect_counts(cnt: np.ndarray, week_idx: np.ndarray, day_idx: np.ndarray, p: Params, cols: np.ndarray,
                  cnt_h: np.ndarray) -> Expectation:
    """Expected counts at positions ``cols``: the trimmed mean of the weekly cells (the same local hour
    of the past weeks); with no week of history yet, of the daily cells. History from ``cnt_h`` (past
    incidents blanked out). Predictive variance λ + λ/K + (count_tolerance·λ)²."""
    cnt_h = cnt_h[:, :int(cols.max()) + 1]  # only the history before the targets is read
    ones = np.where(np.isnan(cnt_h), np.nan, 1.0)
    tol = p.count_tolerance
    wi, di = week_idx[:, cols], day_idx[:, cols]
    Nw, Kw = trimmed_pool(gather(cnt_h, wi), gather(ones, wi), False, p.trim_z, tol)
    Nd, Kd = trimmed_pool(gather(cnt_h, di), gather(ones, di), False, p.trim_z, tol)
    with np.errstate(invalid="ignore", divide="ignore"):
        daily = np.where(Kd > 0, Nd / np.maximum(Kd, 1), np.nan) if p.count_daily_fallback else np.nan
        lam = np.where(Kw > 0, Nw / np.maximum(Kw, 1), daily)
        K = np.where(Kw > 0, Kw, Kd)
        var = lam + lam / np.maximum(K, 1) + (tol * lam) ** 2
    history = cols >= p.min_history_hours
    scored = ~np.isnan(lam) & history[None, :] & ~np.isnan(cnt[:, cols])
    return Expectation(np.where(scored, lam, np.nan), np.where(scored, var, np.nan))
