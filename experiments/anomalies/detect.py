"""Scoring: per-point log-likelihood ratios, CUSUM alarms, alarmed spans, and the generic ``detect`` API.

Each point gets a log-likelihood ratio for "down" and for "up" against each alternative in
``Params.shifts`` (log-odds for rates, log for counts), divided by the series' over-dispersion.
One-sided CUSUMs accumulate them across hours, so that a slice with 13 messages an hour is alarmed by
a shift that persists, a slice with 40,000 by a single hour, and a slice with 40 messages by neither a
single empty hour nor noise. An alarmed CUSUM run becomes one anomalous span (start, end) — the unit
that ``localise`` turns into incidents. The walk through time is ``stream.score_stream``: a scoring
can stop after any hour and continue later from its state with the same result.

Real-valued series (``detect`` without a denominator) go to the causal detector in ``online``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from experiments.anomalies.baseline import Params, expect_counts, expect_rates, lag_index, local_hours
from experiments.anomalies.online import OnlineParams, detect_stream, local_band
from experiments.anomalies.stream import Span, StreamState, score_stream

KINDS = ("rate", "count")


@dataclass
class Scored:
    """Matrices [series, hour] of a scoring run and its alarmed spans."""

    expected: np.ndarray  # expected numerator
    var: np.ndarray  # predictive variance of the numerator, dispersion included
    num: np.ndarray  # the observed numerator
    anomaly: np.ndarray  # int8: -1 / +1 inside an alarmed span, else 0
    spans: list[Span] = field(default_factory=list)
    state: StreamState | None = None  # to continue the scoring later: ``score_matrix(..., state=)``

    @property
    def score(self) -> np.ndarray:
        """Signed standardised residual (continuity-corrected by half a message)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            r = self.num - self.expected
            z = np.sign(r) * np.maximum(np.abs(r) - 0.5, 0.0) / np.sqrt(np.maximum(self.var, 1e-12))
        return np.where(np.isfinite(z), z, 0.0)


def series_lags(hours: np.ndarray, tz: str | None, p: Params) -> tuple[np.ndarray, np.ndarray]:
    """Weekly and daily lag indexes on the UTC hour grid ``hours`` for local time zone ``tz``."""
    local = local_hours(hours, tz)
    return (lag_index(local, [168 * w for w in range(1, p.weeks + 1)]),
            lag_index(local, [24 * d for d in range(1, p.days + 1)]))


def make_expect(kind: str, num: np.ndarray, den: np.ndarray | None, hours: np.ndarray, tzs: list[str | None],
                p: Params, chunk: int = 2000):
    """The expectation hook of ``score_stream`` for rate or count series: ``expect(cols, num_h, den_h)``
    → (expected numerator, base predictive variance) at positions ``cols``; series are grouped by time
    zone (lag indexes computed once per zone) and worked through in chunks (memory stays bounded)."""
    S = num.shape[0]
    tz_arr = np.array([t or "UTC" for t in tzs], dtype=object)
    zones = [(np.nonzero(tz_arr == tz)[0], *series_lags(hours, tz, p)) for tz in dict.fromkeys(tz_arr.tolist())]

    def expect(cols: np.ndarray, num_h: np.ndarray, den_h: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        mu = np.full((S, cols.size), np.nan)
        var = np.full((S, cols.size), np.nan)
        for rows, week_idx, day_idx in zones:
            for lo in range(0, rows.size, chunk):
                r = rows[lo:lo + chunk]
                if kind == "rate":
                    e = expect_rates(num[r], den[r], week_idx, day_idx, p, cols, num_h[r], den_h[r])
                else:
                    e = expect_counts(num[r], week_idx, day_idx, p, cols, num_h[r])
                mu[r], var[r] = e.mu, e.var
        return mu, var

    return expect


def log_likelihood_ratios(kind: str, num: np.ndarray, den: np.ndarray | None, mu: np.ndarray, var: np.ndarray,
                          p: Params) -> np.ndarray:
    """[2k, S, T] log-likelihood ratios per point: for each chart (shift δ) down then up; 0 where the
    point is not scored. Rates: binomial at log-odds ± δ around the expected rate; counts: Poisson at
    expected·e^(±δ); both divided by the point's over-dispersion (predictive variance over the
    binomial / Poisson one)."""
    shifts = p.shifts
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
        else:
            n = np.nan_to_num(num)
            m = np.maximum(mu, 0.0)
            phi = np.maximum(var / np.maximum(m, 1e-9), 1.0)
            for c, delta in enumerate(shifts):
                for k, sgn in enumerate((-1.0, 1.0)):
                    llr = (n * sgn * delta - m * (np.exp(sgn * delta) - 1.0)) / phi
                    out[2 * c + k] = np.where(scored, llr, 0.0)
    return np.nan_to_num(out, nan=0.0, posinf=1e6, neginf=-1e6)


def threshold(p: Params, series: int) -> float:
    """Each chart's alarm level: ``p.threshold`` + ln(charts), raised by ln(S / series_per_threshold)
    for a run over more series than that (see ``Params``), S being the number of series rounded up to
    a power of two — so the level, and with it a stored scoring state, stays put while slices come
    and go, and changes only when their number doubles."""
    rounded = 2.0 ** np.ceil(np.log2(max(series, 1)))
    return float(p.threshold + np.log(len(p.shifts)) + np.log(max(1.0, rounded / p.series_per_threshold)))


def score_matrix(kind: str, num: np.ndarray, den: np.ndarray | None, hours: np.ndarray, tzs: list[str | None],
                 p: Params = Params(), *, expect=None, groups: np.ndarray | None = None, min_points: int = 12,
                 state: StreamState | None = None, until: int | None = None) -> Scored:
    """Score a [series, hour] matrix of rates (``num`` over ``den``) or counts (``den`` None).

    ``expect``: the expectation hook (default: each series on its own, ``make_expect``); ``groups``: a
    group id per series whose median dispersion a series with fewer than ``min_points`` informative
    hours takes. ``state``: the state of an earlier scoring of the same grid (a prefix of these hours,
    the same first series): only positions from ``state.next`` to ``until`` (default: all) are scored
    now, with the same result as one scoring of everything. Returns expectations, scores, spans and
    the state to continue from."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    num = np.asarray(num, dtype=np.float64)
    den = None if den is None else np.asarray(den, dtype=np.float64)
    expect = expect or make_expect(kind, num, den, hours, tzs, p)

    def llr(n, d, mu, var):
        return log_likelihood_ratios(kind, n, d, mu, var, p)

    h = state.threshold if state is not None else threshold(p, num.shape[0])
    scorer, found = score_stream(kind, num, den, hours, expect, llr, p, len(p.shifts), until=until, groups=groups,
                                 min_points=min_points, state=state, threshold=h)
    st = scorer.state
    T = num.shape[1]
    phi = np.nan_to_num(st.phi_days, nan=1.0)[:, (hours // 24) - st.day0]
    spans = _best_of_overlapping(found)
    anomaly = np.zeros(num.shape, dtype=np.int8)
    for sp in spans:
        anomaly[sp.series, sp.start:min(sp.end, T - 1) + 1] = sp.direction
    return Scored(st.mu.astype(np.float64), st.var * phi, num, anomaly, spans, st)


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
           params: Params | None = None, online: OnlineParams | None = None) -> pl.DataFrame:
    """Anomalies in one series.

    ``frame``: a polars frame with ``ts`` (datetime; naive means UTC) and either ``value`` or
    ``numerator`` and ``denominator``.

    * ``kind="value"`` (the default with ``value``): any real-valued series at any sampling interval,
      judged causally — every point only from the points before it — by ``online.detect_stream``
      (``online``: its ``OnlineParams``). Rows with the same timestamp are averaged. ``is_anomaly``
      marks the points where an alarm is raised (one per episode: the first sign, as an operator or
      NAB wants it); ``expected`` is the local prediction and ``[lower, upper]`` the band a point may
      not leave without alarming on its own.
    * ``kind="rate"`` (the default with numerator/denominator) or ``"count"`` (non-negative counts,
      Poisson-like): hourly series with the warehouse's model — rows are bucketed to the hour
      (numerators and denominators summed, counts summed), missing hours are missing, never zero;
      seasonality follows the wall clock of ``timezone`` (default: the zone of ``ts``, else UTC), so a
      daylight-saving change is not an anomaly; ``params``: ``Params``. ``is_anomaly`` marks every hour
      of an alarmed span (a persisting small shift included); the first ``min_history_hours`` have no
      expectation and are never anomalous.

    Returns one row per hour (per timestamp for values) with data:
    ``ts, value, expected, lower, upper, score, is_anomaly``.
    """
    if "ts" not in frame.columns:
        raise ValueError("detect needs a 'ts' column (datetime)")
    has_rate = "numerator" in frame.columns and "denominator" in frame.columns
    if not has_rate and "value" not in frame.columns:
        raise ValueError("detect needs 'value', or 'numerator' and 'denominator'")
    kind = kind or ("rate" if has_rate else "value")
    if kind == "rate" and not has_rate:
        raise ValueError("kind='rate' needs 'numerator' and 'denominator' columns")
    if kind not in (*KINDS, "value"):
        raise ValueError(f"kind must be one of {(*KINDS, 'value')}, not {kind!r}")
    ts = frame["ts"]
    if ts.dtype == pl.Date or ts.dtype == pl.String:
        ts = ts.cast(pl.Datetime("us"))
    tz_col = getattr(ts.dtype, "time_zone", None)
    ts_utc = ts.dt.convert_time_zone("UTC") if tz_col else ts.dt.replace_time_zone("UTC")
    if kind == "value":
        out = _detect_values(ts_utc, frame, online or OnlineParams())
    else:
        out = _detect_hourly(ts_utc, frame, kind, timezone or tz_col or "UTC", params or Params())
    if tz_col and tz_col != "UTC":
        out = out.with_columns(pl.col("ts").dt.convert_time_zone(tz_col))
    return out.with_columns(pl.col(c).fill_nan(None) for c in ("value", "expected", "lower", "upper"))


OUTPUT = {"ts": pl.Datetime("us", "UTC"), "value": pl.Float64, "expected": pl.Float64, "lower": pl.Float64,
          "upper": pl.Float64, "score": pl.Float64, "is_anomaly": pl.Boolean}


def _detect_values(ts_utc: pl.Series, frame: pl.DataFrame, op: OnlineParams) -> pl.DataFrame:
    g = pl.DataFrame([ts_utc.alias("ts"), frame["value"].cast(pl.Float64).alias("value")]).drop_nulls("ts")
    g = g.group_by("ts").agg(pl.col("value").mean()).sort("ts")
    if g.height == 0:
        return pl.DataFrame(schema=OUTPUT)
    y = g["value"].fill_null(np.nan).to_numpy()
    stamps = g["ts"].dt.replace_time_zone(None).to_numpy()
    alarm, score = detect_stream(stamps, y, op)
    expected, half = local_band(y, op)
    return g.with_columns(pl.Series("expected", expected), pl.Series("lower", expected - half),
                          pl.Series("upper", expected + half), pl.Series("score", score),
                          pl.Series("is_anomaly", alarm)).select(list(OUTPUT))


def _detect_hourly(ts_utc: pl.Series, frame: pl.DataFrame, kind: str, tz: str, p: Params) -> pl.DataFrame:
    hour = (ts_utc.dt.epoch("s") // 3600).alias("hour")
    if kind == "rate":
        cols = [hour, frame["numerator"].cast(pl.Float64).alias("n"), frame["denominator"].cast(pl.Float64).alias("d")]
        g = pl.DataFrame(cols).drop_nulls("hour").group_by("hour").agg(pl.col("n").sum(), pl.col("d").sum())
    else:
        g = pl.DataFrame([hour, frame["value"].cast(pl.Float64).alias("n")]).drop_nulls("hour").group_by("hour").agg(
            pl.col("n").sum())
    g = g.sort("hour")
    if g.height == 0:
        return pl.DataFrame(schema=OUTPUT)
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
    band = p.band_z * np.sqrt(var)
    if kind == "rate":
        d = den[0, idx]
        with np.errstate(invalid="ignore", divide="ignore"):
            value = np.where(d > 0, num[0, idx] / d, np.nan)
            expected = np.where(d > 0, mu / d, np.nan)
            lower = np.clip(np.where(d > 0, (mu - band) / d, np.nan), 0, 1)
            upper = np.clip(np.where(d > 0, (mu + band) / d, np.nan), 0, 1)
    else:
        value, expected = num[0, idx], mu
        lower, upper = np.maximum(mu - band, 0.0), mu + band
    return pl.DataFrame({
        "ts": pl.Series(hours[idx] * 3_600_000_000, dtype=pl.Int64).cast(pl.Datetime("us", "UTC")),
        "value": value, "expected": expected, "lower": lower, "upper": upper,
        "score": sc.score[0, idx], "is_anomaly": sc.anomaly[0, idx] != 0,
    })
