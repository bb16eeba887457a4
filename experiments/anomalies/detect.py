"""Scoring: per-point scores, CUSUM alarms on log-likelihood ratios, and the generic ``detect`` API.

Each point gets a log-likelihood ratio for "down" and for "up" against each alternative in
``Params.shifts`` (log-odds for rates, log for counts; ``value_shift`` robust s.d. for values),
divided by the series' over-dispersion. One-sided CUSUMs accumulate them across hours, so that a
slice with 13 messages an hour is alarmed by a shift that persists, a slice with 40,000 by a single
hour, and a slice with 40 messages by neither a single empty hour nor noise. An alarmed CUSUM run
becomes one anomalous span (start, end) — the unit that ``incidents`` turns into alerts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from experiments.anomalies.baseline import (MEDIAN_CHI2_1, Params, expect_counts, expect_rates, expect_values,
                                            lag_index, local_hours)

KINDS = ("rate", "count", "value")


@dataclass
class Span:
    """One alarmed stretch of one series: positions [start, end] (inclusive) on the hour grid."""

    series: int
    direction: int  # -1 down, +1 up
    start: int
    end: int
    peak: float  # largest cumulative log-likelihood ratio of the span, above the chart's threshold
    open: bool  # still alarmed at the last hour
    core: int = -1  # the maximum-likelihood change point (the evidence is concentrated in [core, end])


@dataclass
class Scored:
    """Matrices [series, hour] of a scoring run and its alarmed spans."""

    expected: np.ndarray  # expected numerator (rates, counts) or value
    var: np.ndarray  # predictive variance of the numerator / value, dispersion included
    score: np.ndarray  # signed standardised residual
    llr: np.ndarray  # [2, S, T]: log-likelihood ratio per point, down then up (the widest chart)
    anomaly: np.ndarray  # int8: -1 / +1 inside an alarmed span, else 0
    spans: list[Span] = field(default_factory=list)
    dispersion: np.ndarray | None = None


def series_lags(hours: np.ndarray, tz: str | None, p: Params) -> tuple[np.ndarray, np.ndarray]:
    """Weekly and daily lag indexes on the UTC hour grid ``hours`` for local time zone ``tz``."""
    local = local_hours(hours, tz)
    return (lag_index(local, [168 * w for w in range(1, p.weeks + 1)]),
            lag_index(local, [24 * d for d in range(1, p.days + 1)]))


def expectations(kind: str, num: np.ndarray, den: np.ndarray | None, hours: np.ndarray, tzs: list[str | None],
                 p: Params, chunk: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Expected numerator (or value) and base predictive variance (or scale²) for every series,
    grouping series by time zone and working through them in chunks (memory stays bounded)."""
    S, T = num.shape
    mu = np.full((S, T), np.nan)
    var = np.full((S, T), np.nan)
    tz_arr = np.array([t or "UTC" for t in tzs], dtype=object)
    for tz in dict.fromkeys(tz_arr.tolist()):
        rows = np.nonzero(tz_arr == tz)[0]
        week_idx, day_idx = series_lags(hours, tz, p)
        for lo in range(0, rows.size, chunk):
            r = rows[lo:lo + chunk]
            if kind == "rate":
                e = expect_rates(num[r], den[r], week_idx, day_idx, p)
                mu[r], var[r] = e.mu, e.var
            elif kind == "count":
                e = expect_counts(num[r], week_idx, day_idx, p)
                mu[r], var[r] = e.mu, e.var
            else:
                mu[r], var[r] = expect_values(num[r], week_idx, day_idx, p)
    return mu, var


def dispersion(num: np.ndarray, mu: np.ndarray, var: np.ndarray, p: Params, fallback: float | np.ndarray = 1.0,
               min_points: int = 12) -> np.ndarray:
    """Over-dispersion per series: median of z² over points with at least 5 expected events, over the
    median of χ²₁ (robust to the series' own incidents), clipped to [1, max_dispersion]. Series with
    fewer than ``min_points`` such points take ``fallback``."""
    with np.errstate(invalid="ignore", divide="ignore"):
        z2 = (num - mu) ** 2 / var
    ok = (mu >= 5) & np.isfinite(z2)
    n_ok = ok.sum(axis=1)
    masked = np.where(ok, z2, np.nan)
    med = np.full(num.shape[0], np.nan)
    have = n_ok > 0
    if have.any():
        med[have] = np.nanmedian(masked[have], axis=1)
    phi = np.clip(med / MEDIAN_CHI2_1, 1.0, p.max_dispersion)
    fb = np.broadcast_to(np.asarray(fallback, dtype=float), phi.shape)
    return np.where(n_ok >= min_points, phi, fb)


def log_likelihood_ratios(kind: str, num: np.ndarray, den: np.ndarray | None, mu: np.ndarray, var: np.ndarray,
                          p: Params) -> np.ndarray:
    """[2k, S, T] log-likelihood ratios per point: for each chart (shift δ) down then up; 0 where the
    point is not scored. Rates: binomial at log-odds ± δ around the expected rate; counts: Poisson at
    expected·e^(±δ); both divided by the point's over-dispersion (predictive variance over the
    binomial / Poisson one). Values: Gaussian at ± value_shift standard deviations."""
    shifts = p.shifts if kind != "value" else (p.value_shift,)
    out = np.zeros((2 * len(shifts),) + num.shape)
    scored = np.isfinite(mu) & np.isfinite(var) & ~np.isnan(num)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if kind == "rate":
            d = np.nan_to_num(den)
            n = np.nan_to_num(num)
            pbar = np.clip(np.where(d > 0, mu / np.where(d > 0, d, 1), 0.5), 1e-6, 1 - 1e-6)
            phi = np.maximum(var / np.maximum(d * pbar * (1 - pbar), 1e-12), 1.0)
            logit = np.log(pbar / (1 - pbar))
            for c, delta in enumerate(shifts):
                for k, sgn in enumerate((-1.0, 1.0)):
                    p1 = 1.0 / (1.0 + np.exp(-(logit + sgn * delta)))
                    llr = (n * np.log(p1 / pbar) + (d - n) * np.log((1 - p1) / (1 - pbar))) / phi
                    out[2 * c + k] = np.where(scored & (d > 0), llr, 0.0)
        elif kind == "count":
            n = np.nan_to_num(num)
            m = np.maximum(mu, 0.0)
            phi = np.maximum(var / np.maximum(m, 1e-9), 1.0)
            for c, delta in enumerate(shifts):
                for k, sgn in enumerate((-1.0, 1.0)):
                    llr = (n * sgn * delta - m * (np.exp(sgn * delta) - 1.0)) / phi
                    out[2 * c + k] = np.where(scored, llr, 0.0)
        else:
            z = (num - mu) / np.sqrt(var)
            d = p.value_shift
            out[0] = np.where(scored, -d * z - d * d / 2, 0.0)
            out[1] = np.where(scored, d * z - d * d / 2, 0.0)
    return np.nan_to_num(out, nan=0.0, posinf=1e6, neginf=-1e6)


def cusum(llr: np.ndarray, h: float, cap: float) -> np.ndarray:
    """One-sided CUSUMs C_t = max(0, C_{t-1} + LLR_t) for every chart row, capped at cap·h once alarmed."""
    rows, S, T = llr.shape
    C = np.zeros((rows, S))
    alarmed = np.zeros((rows, S), dtype=bool)
    out = np.zeros((rows, S, T), dtype=np.float64)
    top = max(cap * h, h)
    for t in range(T):
        C = np.maximum(C + llr[:, :, t], 0.0)
        alarmed = (alarmed | (C >= h)) & (C > 0)
        C = np.where(alarmed, np.minimum(C, top), C)
        out[:, :, t] = C
    return out


def _llr_at_level(kind: str, n: np.ndarray, d: np.ndarray | None, mu: np.ndarray, var: np.ndarray,
                  fit: slice) -> np.ndarray:
    """Per-point log-likelihood ratio of the level fitted (maximum likelihood) on ``fit`` against the baseline."""
    with np.errstate(invalid="ignore", divide="ignore"):
        if kind == "rate":
            n, d = np.nan_to_num(n), np.nan_to_num(d)
            pbar = np.clip(np.where(d > 0, mu / np.where(d > 0, d, 1), 0.5), 1e-6, 1 - 1e-6)
            phi = np.maximum(var / np.maximum(d * pbar * (1 - pbar), 1e-12), 1.0)
            p1 = np.clip(n[fit].sum() / d[fit].sum() if d[fit].sum() > 0 else 0.5, 1e-4, 1 - 1e-4)
            out = (n * np.log(p1 / pbar) + (d - n) * np.log((1 - p1) / (1 - pbar))) / phi
            out = np.where(d > 0, out, 0.0)
        elif kind == "count":
            n = np.nan_to_num(n)
            m = np.maximum(np.nan_to_num(mu), 0.0)
            ratio = float(np.clip(n[fit].sum() / max(m[fit].sum(), 1e-9), 1e-3, 1e3))
            out = (n * np.log(ratio) - m * (ratio - 1.0)) / np.maximum(np.nan_to_num(var) / np.maximum(m, 1e-9), 1.0)
        else:
            z = np.nan_to_num((n - mu) / np.sqrt(var))
            shift = z[fit].mean() if z[fit].size else 0.0
            out = shift * z - shift * shift / 2
    return np.nan_to_num(out, nan=0.0)


def spans_from_cusum(C: np.ndarray, llr: np.ndarray, p: Params, kind: str, num: np.ndarray,
                     den: np.ndarray | None, mu: np.ndarray, var: np.ndarray, h: float) -> list[Span]:
    """Alarmed runs (C > 0 reaching h) → spans, with the change point and end estimated inside the run.

    end = the hour maximising the cumulative LLR from the run's start. The plausible change points
    are the τ whose Σ_{τ..end} LLR is within ``start_slack`` of its maximum; start = the first of them
    whose own evidence for the span's level (its LLR at the maximum-likelihood level of [τ_last, end],
    τ_last being the latest plausible change point, against the baseline) is at least
    ``start_evidence``, else τ_last. Hours without
    information (no messages) thus never start an incident."""
    spans: list[Span] = []
    two, S, T = C.shape
    flat = (C > 0).reshape(-1, T)
    padded = np.concatenate([np.zeros((flat.shape[0], 1), bool), flat, np.zeros((flat.shape[0], 1), bool)], axis=1)
    edges = np.diff(padded.astype(np.int8), axis=1)
    rows_s, starts = np.nonzero(edges == 1)
    _, ends = np.nonzero(edges == -1)
    if starts.size == 0:
        return spans
    Cf = C.reshape(-1, T)
    Lf = llr.reshape(-1, T)
    peaks = np.maximum.reduceat(Cf.ravel(), (rows_s * T + starts)) if starts.size else np.array([])
    for row, a, b, peak in zip(rows_s, starts, ends - 1, peaks):
        if peak < h:
            continue
        L = Lf[row, a:b + 1]
        cs = np.cumsum(L)
        e = int(np.argmax(cs))
        before = np.concatenate([[0.0], cs[:e]])
        S_tau = cs[e] - before  # Σ_{τ..e} for τ = 0..e
        best = float(S_tau.max())
        plausible = np.nonzero(S_tau >= best - p.start_slack)[0]
        tau = int(plausible[-1])  # the latest plausible change point: the evidence lies in [tau, e]
        series = int(row % S)
        w = slice(a, a + e + 1)
        own = _llr_at_level(kind, num[series, w], None if den is None else den[series, w], mu[series, w],
                            var[series, w], fit=slice(tau, e + 1))
        cand = np.nonzero((S_tau >= best - p.start_slack) & (own >= p.start_evidence))[0]
        cand = cand[cand <= tau] if cand.size and cand[0] <= tau else cand
        s = int(cand[0]) if cand.size else tau
        spans.append(Span(series, -1 if row < S else 1, int(a + s), int(a + e), best - h, bool(b == T - 1), int(a + tau)))
    return spans


def score_matrix(kind: str, num: np.ndarray, den: np.ndarray | None, hours: np.ndarray, tzs: list[str | None],
                 p: Params = Params(), mu: np.ndarray | None = None, var: np.ndarray | None = None,
                 dispersion_fallback: float | np.ndarray = 1.0, dispersion_min_points: int = 12) -> Scored:
    """Score a [series, hour] matrix. ``mu``/``var`` may be given (e.g. summed up from finer slices);
    otherwise they are estimated here. Returns expectations, scores, LLRs and alarmed spans."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    num = np.asarray(num, dtype=np.float64)
    den = None if den is None else np.asarray(den, dtype=np.float64)
    if mu is None or var is None:
        mu, var = expectations(kind, num, den, hours, tzs, p)
    if kind in ("rate", "count"):
        phi = dispersion(num, mu, var, p, fallback=dispersion_fallback, min_points=dispersion_min_points)
        var = var * phi[:, None]
    else:
        phi = np.ones(num.shape[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        r = num - mu
        if kind == "value":
            score = r / np.sqrt(var)
        else:
            score = np.sign(r) * np.maximum(np.abs(r) - 0.5, 0.0) / np.sqrt(np.maximum(var, 1e-12))
    score = np.where(np.isfinite(score), score, 0.0)
    llr = log_likelihood_ratios(kind, num, den, mu, var, p)
    charts = llr.shape[0] // 2
    h = p.threshold + np.log(charts) + np.log(max(1.0, num.shape[0] / p.series_per_threshold))
    found: list[Span] = []
    for c in range(charts):
        pair = llr[2 * c:2 * c + 2]
        found += spans_from_cusum(cusum(pair, h, p.cap), pair, p, kind, num, den, mu, var, h)
    spans = _best_of_overlapping(found)
    anomaly = np.zeros(num.shape, dtype=np.int8)
    for sp in spans:
        anomaly[sp.series, sp.start:sp.end + 1] = sp.direction
    return Scored(mu, var, score, llr[-2:], anomaly, spans, phi)


def _best_of_overlapping(spans: list[Span]) -> list[Span]:
    """Spans of several charts on the same series and direction that overlap: keep the strongest
    (largest log-likelihood ratio above its threshold)."""
    spans = sorted(spans, key=lambda s: -s.peak)
    kept: list[Span] = []
    taken: dict[tuple[int, int], list[Span]] = {}
    for sp in spans:
        others = taken.setdefault((sp.series, sp.direction), [])
        if any(o.start <= sp.end and sp.start <= o.end for o in others):
            continue
        others.append(sp)
        kept.append(sp)
    return sorted(kept, key=lambda s: (s.series, s.start))


def detect(frame: pl.DataFrame, *, timezone: str | None = None, kind: str | None = None,
           params: Params | None = None) -> pl.DataFrame:
    """Anomalies in one hourly series.

    ``frame``: a polars frame with ``ts`` (datetime; naive means UTC) and either ``value`` or
    ``numerator`` and ``denominator`` (a rate judged binomially at its denominator; ``value`` is then
    numerator / denominator). Timestamps are bucketed to the hour (several rows in one hour: values
    averaged, numerators and denominators summed); missing hours are missing, never zero.

    ``timezone``: the zone whose wall clock the seasonality follows (default: the zone of ``ts``, else
    UTC) — hour of week is local, so a daylight-saving change is not an anomaly.
    ``kind``: ``"rate"`` (default with numerator/denominator), ``"value"`` (default otherwise: robust
    additive model) or ``"count"`` (non-negative counts judged as Poisson).
    ``params``: ``Params`` (see its docstring for every default).

    Returns one row per hour with data: ``ts, value, expected, lower, upper, score, is_anomaly``.
    ``score`` is the signed standardised residual; ``[lower, upper]`` is the band a single point must
    leave to alarm on its own; ``is_anomaly`` also marks smaller deviations that persist (CUSUM).
    The first ``min_history_hours`` have no expectation and are never anomalous.
    """
    p = params or Params()
    if "ts" not in frame.columns:
        raise ValueError("detect needs a 'ts' column (datetime)")
    has_rate = "numerator" in frame.columns and "denominator" in frame.columns
    if not has_rate and "value" not in frame.columns:
        raise ValueError("detect needs 'value', or 'numerator' and 'denominator'")
    kind = kind or ("rate" if has_rate else "value")
    if kind == "rate" and not has_rate:
        raise ValueError("kind='rate' needs 'numerator' and 'denominator' columns")
    ts = frame["ts"]
    if ts.dtype == pl.Date or ts.dtype == pl.String:
        ts = ts.cast(pl.Datetime("us"))
    tz_col = getattr(ts.dtype, "time_zone", None)
    tz = timezone or tz_col or "UTC"
    ts_utc = ts.dt.convert_time_zone("UTC") if tz_col else ts.dt.replace_time_zone("UTC")
    hour = (ts_utc.dt.epoch("s") // 3600).alias("hour")
    cols = [hour]
    if kind == "rate":
        cols += [frame["numerator"].cast(pl.Float64).alias("n"), frame["denominator"].cast(pl.Float64).alias("d")]
        g = pl.DataFrame(cols).drop_nulls("hour").group_by("hour").agg(pl.col("n").sum(), pl.col("d").sum())
    else:
        cols += [frame["value"].cast(pl.Float64).alias("n")]
        g = pl.DataFrame(cols).drop_nulls("hour").group_by("hour").agg(pl.col("n").mean())
    g = g.sort("hour")
    empty = pl.DataFrame(schema={"ts": pl.Datetime("us", "UTC"), "value": pl.Float64, "expected": pl.Float64,
                                 "lower": pl.Float64, "upper": pl.Float64, "score": pl.Float64, "is_anomaly": pl.Boolean})
    if g.height == 0:
        return empty
    h0, h1 = int(g["hour"][0]), int(g["hour"][-1])
    hours = np.arange(h0, h1 + 1, dtype=np.int64)
    idx = g["hour"].to_numpy() - h0
    num = np.full((1, hours.size), np.nan)
    num[0, idx] = g["n"].fill_null(np.nan).to_numpy()
    den = None
    if kind == "rate":
        den = np.full((1, hours.size), np.nan)
        den[0, idx] = g["d"].fill_null(np.nan).to_numpy()
    sc = score_matrix(kind, num, den, hours, [tz], p)
    mu, var = sc.expected[0, idx], sc.var[0, idx]
    if kind == "rate":
        d = den[0, idx]
        band = p.band_z * np.sqrt(var)
        with np.errstate(invalid="ignore", divide="ignore"):
            value = np.where(d > 0, num[0, idx] / d, np.nan)
            expected = np.where(d > 0, mu / d, np.nan)
            lower = np.clip(np.where(d > 0, (mu - band) / d, np.nan), 0, 1)
            upper = np.clip(np.where(d > 0, (mu + band) / d, np.nan), 0, 1)
    else:
        bz = p.band_z if kind == "count" else p.value_band_z
        value, expected = num[0, idx], mu
        lower, upper = mu - bz * np.sqrt(var), mu + bz * np.sqrt(var)
        if kind == "count":
            lower = np.maximum(lower, 0.0)
    out = pl.DataFrame({
        "ts": pl.Series(hours[idx] * 3_600_000_000, dtype=pl.Int64).cast(pl.Datetime("us", "UTC")),
        "value": value, "expected": expected, "lower": lower, "upper": upper,
        "score": sc.score[0, idx], "is_anomaly": sc.anomaly[0, idx] != 0,
    })
    if tz_col and tz_col != "UTC":
        out = out.with_columns(pl.col("ts").dt.convert_time_zone(tz_col))
    return out.with_columns(pl.col(c).fill_nan(None) for c in ("value", "expected", "lower", "upper"))
