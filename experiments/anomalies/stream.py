"""Scoring that moves forward in time: a full scoring and an incremental one are the same loop.

``score_stream`` walks the hour grid in chunks that never cross a UTC midnight. For each chunk it asks
for the expectations of the chunk's hours only (``expect(cols, num_h, den_h)``), turns them into
log-likelihood ratios and continues every CUSUM from where it stood. Everything that looks back is
refreshed only at UTC midnights, from what was known then:

* the hours of alarmed spans (as estimated at that midnight) are blanked out of the history that later
  expectations read (``mask``), so an incident does not become next week's normal;
* each series' over-dispersion for the next day is the median of z² = (observed − expected)² / variance
  over its informative past hours (a histogram of log z², so it is kept in a few hundred counters per
  series), clipped to [1, max_dispersion]; series with too few informative hours take the median of
  their group.

So a scoring that stops at any hour and resumes from its ``StreamState`` gives exactly what one pass
over the same hours gives (``tests/test_anomalies_stream.py``), and resuming costs only the new hours.
Alarmed spans are formed when a CUSUM run ends (or, for runs still open, at the end of the call) from
the run's own log-likelihood ratios, recomputed from the stored expectations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from experiments.anomalies.baseline import MEDIAN_CHI2_1, Params

# the z² histogram: log10 z² from 10^-4 to 10^3 in steps of 1/40 decade, with an under- and an overflow bin
Z2_LOW, Z2_STEP, Z2_BINS = -4.0, 0.025, 280
INFORMATIVE = 5.0  # hours with at least this many expected events inform the dispersion

Expect = Callable[[np.ndarray, np.ndarray, np.ndarray | None], tuple[np.ndarray, np.ndarray]]
Llr = Callable[[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray], np.ndarray]


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
class StreamState:
    """Everything a scoring needs to continue: per series × hour the expectations and the blanked-out
    hours, per series the dispersion counters, per chart row (chart × direction × series) the CUSUM."""

    hour0: int  # UTC hour stamp of position 0
    next: int  # first position not scored yet
    threshold: float  # each chart's alarm level h (fixed when the scoring started)
    mu: np.ndarray  # float32 [S, T]
    var: np.ndarray  # float32 [S, T], before dispersion
    mask: np.ndarray  # bool [S, T]: hours of alarmed spans, left out of later baselines
    hist: np.ndarray  # int32 [S, Z2_BINS + 2]: log z² histogram of informative, unmasked past hours
    phi_days: np.ndarray  # float32 [S, days]: the dispersion used on each UTC day since hour0's
    C: np.ndarray  # [rows, S] CUSUM values
    alarmed: np.ndarray  # bool [rows, S]: the current run has reached the threshold
    run_start: np.ndarray  # int64 [rows, S]: position where the current run (C > 0) began, -1 if none
    closed: list[Span] = field(default_factory=list)  # spans of runs that have ended

    @property
    def day0(self) -> int:
        return self.hour0 // 24

    def grow(self, S: int, T: int) -> None:
        """Make room for more series and more hours (appended), as a bigger mart brings."""
        s0, t0 = self.mu.shape
        if S < s0 or T < t0:
            raise ValueError("the state holds more series or hours than the data")
        pad = ((0, S - s0), (0, T - t0))
        self.mu = np.pad(self.mu, pad, constant_values=np.nan)
        self.var = np.pad(self.var, pad, constant_values=np.nan)
        self.mask = np.pad(self.mask, pad, constant_values=False)
        self.hist = np.pad(self.hist, ((0, S - s0), (0, 0)))
        days = (self.hour0 + T - 1) // 24 - self.day0 + 1
        self.phi_days = np.pad(self.phi_days, ((0, S - s0), (0, days - self.phi_days.shape[1])), constant_values=np.nan)
        rows = self.C.shape[0]
        self.C = np.concatenate([self.C, np.zeros((rows, S - s0))], axis=1)
        self.alarmed = np.concatenate([self.alarmed, np.zeros((rows, S - s0), bool)], axis=1)
        self.run_start = np.concatenate([self.run_start, np.full((rows, S - s0), -1, np.int64)], axis=1)

    def realign(self, hour0: int, order: np.ndarray) -> None:
        """Fit the state to a new grid and series list: the grid now starts at ``hour0`` (not before the
        state's; the hours before it are forgotten, as the mart's history window rolls on) and
        ``order[i]`` is the stored row of new series i, or -1 for a series not seen before (it starts
        empty, like a slice with no history). Stored series absent from ``order`` are dropped."""
        k = hour0 - self.hour0
        if k < 0:
            raise ValueError("the new grid starts before the state's")
        if k:
            cut = min(k, self.mu.shape[1])
            self.mu, self.var, self.mask = self.mu[:, cut:], self.var[:, cut:], self.mask[:, cut:]
            self.phi_days = self.phi_days[:, hour0 // 24 - self.day0:]
            self.hour0, self.next = hour0, max(self.next - k, 0)
            self.run_start = np.where(self.run_start >= 0, np.maximum(self.run_start - k, 0), -1)
            self.closed = [Span(sp.series, sp.direction, max(sp.start - k, 0), sp.end - k, sp.peak, sp.open,
                                max(sp.core - k, 0)) for sp in self.closed if sp.end - k >= 0]
        src = np.where(order >= 0, order, self.mu.shape[0])  # the extra last row is an empty series
        self.grow(self.mu.shape[0] + 1, self.mu.shape[1])
        for name in ("mu", "var", "mask", "hist", "phi_days"):
            setattr(self, name, getattr(self, name)[src])
        self.C, self.alarmed, self.run_start = self.C[:, src], self.alarmed[:, src], self.run_start[:, src]
        new_row = np.full(src.max(initial=0) + 1, -1, np.int64)
        new_row[order[order >= 0]] = np.nonzero(order >= 0)[0]
        self.closed = [Span(int(new_row[sp.series]), sp.direction, sp.start, sp.end, sp.peak, sp.open, sp.core)
                       for sp in self.closed if sp.series < new_row.size and new_row[sp.series] >= 0]


def new_state(S: int, T: int, rows: int, hour0: int, threshold: float) -> StreamState:
    days = (hour0 + T - 1) // 24 - hour0 // 24 + 1
    return StreamState(hour0, 0, threshold, np.full((S, T), np.nan, np.float32), np.full((S, T), np.nan, np.float32),
                       np.zeros((S, T), bool), np.zeros((S, Z2_BINS + 2), np.int32),
                       np.full((S, days), np.nan, np.float32), np.zeros((rows, S)), np.zeros((rows, S), bool),
                       np.full((rows, S), -1, np.int64))


def z2_bins(z2: np.ndarray) -> np.ndarray:
    return np.clip(np.floor((np.log10(np.maximum(z2, 1e-300)) - Z2_LOW) / Z2_STEP).astype(np.int64) + 1, 0, Z2_BINS + 1)


def hist_median(hist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(median z², count) per series from the histograms (linear within the median's bin, in log z²)."""
    n = hist.sum(axis=1)
    c = np.cumsum(hist, axis=1)
    half = n / 2.0
    k = np.minimum(np.argmax(c >= half[:, None], axis=1), Z2_BINS + 1)
    below = np.where(k > 0, np.take_along_axis(c, np.maximum(k - 1, 0)[:, None], axis=1)[:, 0], 0)
    inside = np.maximum(np.take_along_axis(hist, k[:, None], axis=1)[:, 0], 1)
    frac = np.clip((half - below) / inside, 0.0, 1.0)
    log_z2 = Z2_LOW + (np.clip(k, 1, Z2_BINS) - 1 + frac) * Z2_STEP
    return np.where(n > 0, 10.0 ** log_z2, np.nan), n


def day_dispersion(hist: np.ndarray, p: Params, groups: np.ndarray | None, min_points: int) -> np.ndarray:
    """Per series the dispersion for the coming day: median z² / median χ²₁ clipped to [1, max], or the
    median of its group's (1 without a group) when it has fewer than ``min_points`` informative hours."""
    med, n = hist_median(hist)
    phi = np.clip(med / MEDIAN_CHI2_1, 1.0, p.max_dispersion)
    own = n >= min_points
    if groups is None:
        return np.where(own, phi, 1.0)
    fallback = np.ones(phi.size)
    for g in np.unique(groups):
        rows = groups == g
        vals = phi[rows & own]
        fallback[rows] = float(np.median(vals)) if vals.size else 1.0
    return np.where(own, phi, fallback)


def cusum_chunk(state: StreamState, L: np.ndarray, cols: np.ndarray, cap: float) -> list[tuple[int, int, int]]:
    """Continue every chart row's CUSUM over the chunk's log-likelihood ratios ``L`` [rows, S, n];
    returns the alarmed runs that ended inside the chunk as (row, first, last) positions."""
    h = state.threshold
    top = max(cap * h, h)
    ended: list[tuple[int, int, int]] = []
    C, alarmed, start = state.C, state.alarmed, state.run_start
    for j, t in enumerate(cols):
        prev_open = C > 0
        C = np.maximum(C + L[:, :, j], 0.0)
        now_open = C > 0
        closing = prev_open & ~now_open
        if closing.any():
            for r, s in zip(*np.nonzero(closing & alarmed)):
                ended.append((int(r) * C.shape[1] + int(s), int(start[r, s]), int(t) - 1))
        start = np.where(now_open & ~prev_open, t, np.where(now_open, start, -1))
        alarmed = (alarmed | (C >= h)) & now_open
        C = np.where(alarmed, np.minimum(C, top), C)
    state.C, state.alarmed, state.run_start = C, alarmed, start
    return ended


def level_llr(kind: str, n: np.ndarray, d: np.ndarray | None, mu: np.ndarray, var: np.ndarray, fit: slice) -> np.ndarray:
    """Per-point log-likelihood ratio of the level fitted (maximum likelihood) on ``fit`` against the baseline."""
    with np.errstate(invalid="ignore", divide="ignore"):
        if kind == "rate":
            n, d = np.nan_to_num(n), np.nan_to_num(d)
            pbar = np.clip(np.where(d > 0, mu / np.where(d > 0, d, 1), 0.5), 1e-6, 1 - 1e-6)
            phi = np.maximum(var / np.maximum(d * pbar * (1 - pbar), 1e-12), 1.0)
            p1 = np.clip(n[fit].sum() / d[fit].sum() if d[fit].sum() > 0 else 0.5, 1e-4, 1 - 1e-4)
            out = (n * np.log(p1 / pbar) + (d - n) * np.log((1 - p1) / (1 - pbar))) / phi
            out = np.where(d > 0, out, 0.0)
        else:
            n = np.nan_to_num(n)
            m = np.maximum(np.nan_to_num(mu), 0.0)
            ratio = float(np.clip(n[fit].sum() / max(m[fit].sum(), 1e-9), 1e-3, 1e3))
            out = (n * np.log(ratio) - m * (ratio - 1.0)) / np.maximum(np.nan_to_num(var) / np.maximum(m, 1e-9), 1.0)
    return np.nan_to_num(out, nan=0.0)


class Scorer:
    """One series × hour matrix being scored: the data, the model hooks and the state."""

    def __init__(self, kind: str, num: np.ndarray, den: np.ndarray | None, hours: np.ndarray, expect: Expect,
                 llr: Llr, p: Params, charts: int, groups: np.ndarray | None, min_points: int,
                 state: StreamState | None, threshold: float) -> None:
        self.kind, self.num, self.den, self.hours, self.expect, self.llr, self.p = kind, num, den, hours, expect, llr, p
        self.charts, self.groups, self.min_points = charts, groups, min_points
        S, T = num.shape
        if state is None:
            state = new_state(S, T, 2 * charts, int(hours[0]), threshold)
        elif state.hour0 != int(hours[0]):
            raise ValueError("the hour grid starts elsewhere than the state's: rescore")
        else:
            state.grow(S, T)
        self.state = state
        self.num_h = np.where(state.mask, np.nan, num)
        self.den_h = None if den is None else np.where(state.mask, np.nan, den)

    def phi_at(self, cols: np.ndarray) -> np.ndarray:
        return self.state.phi_days[:, (self.hours[cols] // 24) - self.state.day0].astype(np.float64)

    def window(self, s: int, a: int, b: int) -> tuple[np.ndarray, ...]:
        """num, den, mu, var (dispersion included) and the charts' LLRs [rows, n] of series s over [a, b]."""
        st = self.state
        cols = np.arange(a, b + 1)
        n = self.num[s:s + 1, a:b + 1]
        d = None if self.den is None else self.den[s:s + 1, a:b + 1]
        mu = st.mu[s:s + 1, a:b + 1].astype(np.float64)
        var = st.var[s:s + 1, a:b + 1].astype(np.float64) * st.phi_days[s, (self.hours[cols] // 24) - st.day0]
        return n[0], None if d is None else d[0], mu[0], var[0], self.llr(n, d, mu, var)[:, 0, :]

    def span(self, row: int, a: int, b: int, is_open: bool) -> Span:
        """The span of an alarmed run [a, b] of chart row ``row``: it ends at the hour maximising the
        run's cumulative log-likelihood ratio; the plausible change points are those whose sum up to
        that end is within ``start_slack`` of the best; it starts at the first of them whose own
        evidence for the span's level is at least ``start_evidence`` (else at the latest plausible
        one), so hours without information never start an incident."""
        S = self.num.shape[0]
        chart_row, s = divmod(row, S)
        n, d, mu, var, L_all = self.window(s, a, b)
        L = L_all[chart_row]
        p = self.p
        cs = np.cumsum(L)
        e = int(np.argmax(cs))
        before = np.concatenate([[0.0], cs[:e]])
        S_tau = cs[e] - before
        best = float(S_tau.max())
        plausible = np.nonzero(S_tau >= best - p.start_slack)[0]
        tau = int(plausible[-1])
        w = slice(0, e + 1)
        own = level_llr(self.kind, n[w], None if d is None else d[w], mu[w], var[w], fit=slice(tau, e + 1))
        cand = np.nonzero((S_tau >= best - p.start_slack) & (own >= p.start_evidence))[0]
        cand = cand[cand <= tau] if cand.size and cand[0] <= tau else cand
        start = int(cand[0]) if cand.size else tau
        return Span(s, -1 if chart_row % 2 == 0 else 1, a + start, a + e, best - self.state.threshold, is_open, a + tau)

    def open_spans(self, last: int) -> list[Span]:
        st = self.state
        rows, series = np.nonzero(st.alarmed & (st.C > 0))
        S = self.num.shape[0]
        return [self.span(int(r) * S + int(s), int(st.run_start[r, s]), last, True) for r, s in zip(rows, series)]

    def midnight(self, day_cols: np.ndarray, last: int) -> None:
        """At a UTC midnight: blank out the hours of every span known now, and learn the day's z²."""
        st = self.state
        for sp in st.closed + self.open_spans(last):
            st.mask[sp.series, sp.start:sp.end + 1] = True
        changed = np.nonzero(st.mask.any(axis=1))[0]
        if changed.size:
            self.num_h[changed] = np.where(st.mask[changed], np.nan, self.num[changed])
            if self.den_h is not None:
                self.den_h[changed] = np.where(st.mask[changed], np.nan, self.den[changed])
        mu = st.mu[:, day_cols].astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            z2 = (self.num[:, day_cols] - mu) ** 2 / st.var[:, day_cols].astype(np.float64)
        ok = (mu >= INFORMATIVE) & np.isfinite(z2) & ~st.mask[:, day_cols]
        s_idx, _ = np.nonzero(ok)
        if s_idx.size:
            np.add.at(st.hist, (s_idx, z2_bins(z2[ok])), 1)

    def run(self, until: int) -> None:
        """Score positions [state.next, until)."""
        st = self.state
        t = st.next
        while t < until:
            day = int(self.hours[t]) // 24 - st.day0
            if np.isnan(st.phi_days[:, day]).any():  # the day's first hour (or series new today)
                st.phi_days[:, day] = day_dispersion(st.hist, self.p, self.groups, self.min_points)
            day_end = t + (24 - int(self.hours[t]) % 24)
            stop = min(day_end, until)
            cols = np.arange(t, stop)
            mu, var = self.expect(cols, self.num_h, self.den_h)
            st.mu[:, cols], st.var[:, cols] = mu, var
            mu64, var64 = st.mu[:, cols].astype(np.float64), st.var[:, cols].astype(np.float64) * self.phi_at(cols)
            L = self.llr(self.num[:, cols], None if self.den is None else self.den[:, cols], mu64, var64)
            for flat, a, b in cusum_chunk(st, L, cols, self.p.cap):
                st.closed.append(self.span(flat, a, b, False))
            if stop == day_end:
                self.midnight(np.arange(max(day_end - 24, 0), day_end), stop - 1)
            t = stop
        st.next = max(st.next, until)


def score_stream(kind: str, num: np.ndarray, den: np.ndarray | None, hours: np.ndarray, expect: Expect, llr: Llr,
                 p: Params, charts: int, *, until: int | None = None, groups: np.ndarray | None = None,
                 min_points: int = 12, state: StreamState | None = None,
                 threshold: float | None = None) -> tuple[Scorer, list[Span]]:
    """Score [state.next, until) (everything on a fresh state) and return the scorer (its state
    updated) and every alarmed span known now: those of ended runs and, as open spans, the runs still
    alarmed at position ``until − 1``."""
    h = threshold if threshold is not None else p.threshold + np.log(charts)
    sc = Scorer(kind, num, den, hours, expect, llr, p, charts, groups, min_points, state, h)
    end = num.shape[1] if until is None else until
    sc.run(end)
    spans = list(sc.state.closed) + (sc.open_spans(sc.state.next - 1) if sc.state.next > 0 else [])
    return sc, spans
