"""Incidents from alarmed spans, attributed to the smallest slice that explains them.

One cause (a carrier blocking links in one region) moves many slices at once: the region, the
carrier, the total, and each campaign or channel inside the region × carrier. Starting from the
coarsest alarmed slice, ``drill`` descends one dimension at a time into the child slice that
explains the parent's deviation — the child carries at least ``share`` of the parent's excess while
the rest of the parent is measurably normal — and stops when no child does (the rest being
affected too, or too small to tell). Every alarmed span whose slice is an ancestor, descendant or
alias (same data) of an already localised incident, overlapping it in time, is folded into it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from experiments.anomalies.detect import Scored, Span
from experiments.anomalies.series import DIMS, Metric, SliceSet

SHARE = 0.8  # a child explains its parent when it carries at least this share of the excess ...
REST_NORMAL_Z = 2.0  # ... and the rest of the parent deviates by less than this many s.d. ...
REST_POWER_Z = 3.0  # ... although the rest, had it moved like the child, would have shown it this clearly
MIN_AFFECTED = 5.0  # spans affecting fewer messages than this are not incidents


@dataclass(frozen=True)
class Practical:
    """How large a change must be to matter to an operator, beside being statistically clear: the
    relative change (observed − expected) / expected of the numerator over the incident, separately
    for drops and rises, the messages affected |observed − expected|, and those messages per day of
    the incident (a rate three clicks a day above normal for three weeks is not worth a page)."""

    drop: float
    rise: float
    messages: float
    per_day: float

    def material(self, observed: float, expected: float, direction: int, hours: int) -> bool:
        affected = abs(observed - expected)
        if affected < self.messages or affected * 24.0 / max(hours, 24) < self.per_day:
            return False
        relative = (observed - expected) / expected if expected > 0 else np.inf
        return bool(relative <= -self.drop if direction < 0 else relative >= self.rise)


# a tenth of a rate (95 % delivered → 85.5 %), a fifth of a slice's share of its campaigns' sends,
# and for the total volume half of it missing or twice as much sent
PRACTICAL = {"rate": Practical(0.10, 0.10, 20.0, 5.0), "send_share": Practical(0.20, 0.20, 50.0, 25.0),
             "send_volume": Practical(0.50, 1.00, 200.0, 100.0)}


def practical(metric: Metric) -> Practical:
    return PRACTICAL.get(metric.name) or PRACTICAL[metric.kind]


@dataclass
class Incident:
    metric: str
    direction: int
    dims: dict[str, str]
    start: int  # grid positions, inclusive
    end: int
    open: bool
    observed: float  # numerator (rates) or count over the span
    expected: float
    denominator: float  # rates: Σ denominator over the span; counts: hours
    affected: float  # |observed − expected| in messages
    peak: float  # largest CUSUM log-likelihood ratio
    folded: int = 0  # alarmed spans of related slices folded into this incident
    series: int = -1
    folded_slices: list[str] = field(default_factory=list)


def slice_label(dims: dict[str, str]) -> str:
    return ", ".join(f"{d}={dims[d]}" for d in DIMS if d in dims) or "all"


def alias_classes(ss: SliceSet) -> np.ndarray:
    """Per series, the id of its class of identical series (same counts every hour), represented by
    the member with the fewest dimensions (e.g. channel=email and provider=sendgrid are one slice)."""
    digests = {}
    canon = np.empty(ss.keys.height, dtype=np.int64)
    ndims = [len(g) for g in ss.grouping_of]
    order = sorted(range(ss.keys.height), key=lambda i: (ndims[i], i))
    for i in order:
        h = hashlib.blake2b(b"".join(ss.counts[c][i].tobytes() for c in ss.counts), digest_size=16).digest()
        canon[i] = digests.setdefault(h, i)
    return canon


class Localiser:
    """Localisation for one metric's scored slices."""

    def __init__(self, ss: SliceSet, sc: Scored, metric: Metric, canon: np.ndarray) -> None:
        self.ss, self.sc, self.metric, self.canon = ss, sc, metric, canon
        self.floor = practical(metric)
        num = ss.counts[metric.numerator]
        self.num = num
        self.den = ss.counts[metric.denominator] if metric.denominator else None
        cols = {d: ss.keys[d].to_list() for d in DIMS}
        self.dims_of = [{d: cols[d][i] for d in DIMS if cols[d][i] is not None} for i in range(ss.keys.height)]
        self.by_key = {tuple(sorted(d.items())): i for i, d in enumerate(self.dims_of)}
        self.children: dict[int, list[int]] = {}
        for i, d in enumerate(self.dims_of):
            for k in d:
                parent = self.by_key.get(tuple(sorted((kk, v) for kk, v in d.items() if kk != k)))
                if parent is not None:
                    self.children.setdefault(parent, []).append(i)

    def sums(self, s: int, a: int, b: int) -> tuple[float, float, float, float]:
        """(observed, expected, variance, denominator) of series s over scored hours [a, b]."""
        mu = self.sc.expected[s, a:b + 1]
        ok = np.isfinite(mu)
        n = float(np.nansum(np.where(ok, self.num[s, a:b + 1], 0.0)))
        d = float(np.nansum(np.where(ok, self.den[s, a:b + 1], 0.0))) if self.den is not None else float(ok.sum())
        return n, float(np.nansum(mu)), float(np.nansum(np.where(ok, self.sc.var[s, a:b + 1], 0.0))), d

    def child_series(self, s: int) -> list[int]:
        return self.children.get(s, [])

    def explains(self, parent: int, child: int, a: int, b: int, direction: int) -> bool:
        """Whether ``child`` (any descendant of ``parent``) explains ``parent``'s deviation over [a, b]."""
        n, mu, var, _ = self.sums(parent, a, b)
        excess = direction * (n - mu)
        nc, muc, varc, _ = self.sums(child, a, b)
        exc = direction * (nc - muc)
        if excess <= 0 or muc <= 0 or exc < SHARE * excess:
            return False
        mur, varr = mu - muc, max(var - varc, 1e-9)
        rest_z = (excess - exc) / np.sqrt(varr)
        power = abs(exc / muc) * mur / np.sqrt(varr) if self.metric.kind == "rate" else exc / np.sqrt(varr)
        return bool(rest_z < REST_NORMAL_Z and power >= REST_POWER_Z)

    def rest_moved(self, parent: int, child: int, a: int, b: int, direction: int) -> bool:
        """Whether the part of ``parent`` outside ``child`` deviates the same way, clearly (more than
        ``REST_NORMAL_Z`` s.d.) over [a, b]: evidence that the cause is wider than ``child`` (a short
        window too small to tell is not)."""
        n, mu, var, _ = self.sums(parent, a, b)
        nc, muc, varc, _ = self.sums(child, a, b)
        return bool(direction * ((n - mu) - (nc - muc)) / np.sqrt(max(var - varc, 1e-9)) >= REST_NORMAL_Z)

    def drill(self, s: int, a: int, b: int, direction: int) -> int:
        """The smallest slice under s that explains s's deviation over [a, b]."""
        while True:
            best, best_mu = None, np.inf
            for c in self.child_series(s):
                if self.canon[c] == self.canon[s] or not self.explains(s, c, a, b, direction):
                    continue
                muc = self.sums(c, a, b)[1]
                if muc < best_mu:
                    best, best_mu = c, muc
            if best is None:
                return s
            s = best

    def overlaps_mostly(self, s: int, inc: int, a: int, b: int, direction: int) -> bool:
        """Most (≥ half) of s's excess over [a, b] lies in its intersection with an incident's slice:
        the span is that incident seen from another angle (e.g. carrier × channel during a gateway outage)."""
        ds, di = self.dims_of[s], self.dims_of[inc]
        if any(k in ds and ds[k] != v for k, v in di.items()):
            return False
        both = self.by_key.get(tuple(sorted({**ds, **di}.items())))
        if both is None:
            return False
        n, mu, _, _ = self.sums(s, a, b)
        nb, mub, _, _ = self.sums(both, a, b)
        excess = direction * (n - mu)
        return bool(excess > 0 and direction * (nb - mub) >= 0.5 * excess)

    def is_under(self, x: int, y: int) -> bool:
        """x is y, an alias of y, or a descendant of y."""
        if self.canon[x] == self.canon[y]:
            return True
        dx, dy = self.dims_of[x], self.dims_of[y]
        return len(dx) > len(dy) and all(dx.get(k) == v for k, v in dy.items())

    def related(self, x: int, y: int) -> bool:
        if self.canon[x] == self.canon[y]:
            return True
        dx, dy = self.dims_of[x], self.dims_of[y]
        small, big = (dx, dy) if len(dx) <= len(dy) else (dy, dx)
        return all(big.get(k) == v for k, v in small.items())

    def incidents(self, spans: list[Span]) -> list[Incident]:
        cands = []
        for sp in spans:
            n, mu, _, _ = self.sums(sp.series, sp.start, sp.end)
            if abs(n - mu) >= MIN_AFFECTED:
                cands.append((len(self.dims_of[sp.series]), -abs(n - mu), sp))
        cands.sort(key=lambda c: (c[0], c[1]))
        own = {}
        for _, _, sp in cands:
            own.setdefault((self.canon[sp.series], sp.direction), []).append(sp)
        out: list[Incident] = []
        for _, _, sp in cands:
            core = max(sp.core, sp.start)
            target = int(self.canon[self.drill(sp.series, core, sp.end, sp.direction)])
            hit = None
            for inc in out:
                if inc.direction == sp.direction and inc.start <= sp.end and core <= inc.end and (
                        self.related(inc.series, target) or self.is_under(sp.series, inc.series)
                        or self.overlaps_mostly(sp.series, inc.series, core, sp.end, sp.direction)):
                    hit = inc
                    break
            if hit is not None:
                hit.folded += 1
                hit.folded_slices.append(slice_label(self.dims_of[sp.series]))
                if self.is_under(hit.series, target) and hit.series != target and self.rest_moved(
                        target, hit.series, core, sp.end, sp.direction):
                    self._fill(hit, target, hit.start, hit.end, hit.open, hit.peak)  # widen: the rest moved too
                continue
            a, b, is_open, peak = sp.start, sp.end, sp.open, sp.peak
            for mine in own.get((target, sp.direction), []):
                if mine.start <= sp.end and sp.start <= mine.end:
                    a, b, is_open, peak = mine.start, mine.end, mine.open, mine.peak
                    break
            inc = Incident(self.metric.name, sp.direction, {}, a, b, is_open, 0, 0, 0, 0, peak)
            self._fill(inc, target, a, b, is_open, peak)
            if inc.affected >= MIN_AFFECTED:
                out.append(inc)
        # judged once folding has settled each incident's slice and hours
        return [i for i in out if self.floor.material(i.observed, i.expected, i.direction, i.end - i.start + 1)]

    def _fill(self, inc: Incident, s: int, a: int, b: int, is_open: bool, peak: float) -> None:
        n, mu, _, d = self.sums(s, a, b)
        inc.series, inc.dims, inc.start, inc.end, inc.open, inc.peak = s, self.dims_of[s], a, b, is_open, peak
        inc.observed, inc.expected, inc.denominator, inc.affected = n, mu, d, abs(n - mu)
