"""From the hourly mart to scored series: every slice (each combination of campaign, channel,
provider, region and carrier, the total included) and every metric, as series × hour matrices.

Slices that carry a region are modelled on their own, in the region's local time. A slice without
a region gets the *sum* of the expectations of its per-region parts, so its expectation follows
each region's wall clock (daylight-saving changes of one country do not alarm the total) and
adjusts to the hour's mix of regions.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl
import scipy.sparse as sp

from experiments.anomalies.baseline import Params
from experiments.anomalies.detect import Scored, make_expect, score_matrix

DIMS = ("campaign_id", "channel", "provider", "region", "carrier")
COUNTS = ("sent", "delivered", "clicked", "converted")
# the sends of each slice's campaign in its region (dropping whichever of the two it does not name):
# the denominator of send_share
CAMPAIGN_SENT = "campaign_sent"
# a slice estimates its own over-dispersion only from this many informative hours (≥ 5 expected
# events); sparser slices, whose few busy hours an incident could dominate, take their grouping's median
OWN_DISPERSION_POINTS = 48


@dataclass(frozen=True)
class Metric:
    """A metric: a rate (numerator over denominator) or a count; ``settle_hours`` is how long the
    cohort of a send hour keeps growing (later receipts, clicks, conversions), so younger hours are
    not judged yet.

    Send volume is the operators' decision — calendars (bills due on the 1st–28th, promotions on
    Tuesdays), audiences and growth move it far more than any fault does, and the warehouse holds
    sends, not plans. So volume is judged in two parts: ``send_share``, the share of a campaign's
    sends in a region that a slice carries (a provider, channel or carrier losing or gaining its usual
    part of the traffic is a fault whatever the calendar does; a slice without a region or campaign is
    expected to carry the sum, over its regions and campaigns, of its usual shares of what each sends
    now), and
    ``send_volume`` on the total only, where only a large change is an incident (a stalled or runaway
    sender; see ``localise.PRACTICAL``)."""

    name: str
    kind: str
    numerator: str
    denominator: str | None
    settle_hours: int
    only_total: bool = False  # judged on the total only (the volume a team decides to send)


METRICS = (
    Metric("delivery_rate", "rate", "delivered", "sent", 24),
    Metric("click_rate", "rate", "clicked", "delivered", 24),
    Metric("conversion_rate", "rate", "converted", "delivered", 72),
    Metric("send_share", "rate", "sent", CAMPAIGN_SENT, 1),
    Metric("send_volume", "count", "sent", None, 1, only_total=True),
)


def groupings() -> list[tuple[str, ...]]:
    """All 32 subsets of the dimensions, coarsest first."""
    return [g for r in range(len(DIMS) + 1) for g in itertools.combinations(DIMS, r)]


@dataclass
class SliceSet:
    """All slices: their keys, grouping and count matrices on one hour grid."""

    hours: np.ndarray  # UTC hour stamps (hours since the epoch)
    keys: pl.DataFrame  # one row per series: grouping (tuple as text), the five dims (null = all), tz
    grouping_of: list[tuple[str, ...]]
    counts: dict[str, np.ndarray]  # [S, T] per count column
    index: dict[tuple, int] = field(default_factory=dict)  # (grouping, values) → series row

    def slice_dims(self, s: int) -> dict[str, str]:
        row = self.keys.row(s, named=True)
        return {d: row[d] for d in DIMS if row[d] is not None}


def build_slices(frame: pl.DataFrame, region_tz: dict[str, str]) -> SliceSet:
    """Sum the leaf rows of the mart into every slice (vectorised per grouping: each dimension's values
    as integer codes, a grouping's slices as the distinct combinations of its codes)."""
    hour = (frame["hour_at"].dt.epoch("s") // 3600).to_numpy()
    h0, h1 = int(hour.min()), int(hour.max())
    hours = np.arange(h0, h1 + 1, dtype=np.int64)
    T = hours.size
    t = hour - h0
    codes, levels = {}, {}
    for d in DIMS:
        col = frame[d].fill_null("(none)")
        codes[d] = (col.rank("dense").cast(pl.Int64) - 1).to_numpy()  # dense rank = position among the sorted values
        levels[d] = col.unique().sort().to_numpy()
    vals = {c: frame[c].cast(pl.Float64).to_numpy() for c in COUNTS}
    key_frames, gro, counts = [], [], {c: [] for c in COUNTS}
    for g in groupings():
        combined = np.zeros(len(frame), dtype=np.int64)
        for d in g:
            combined = combined * levels[d].size + codes[d]
        uniq, first, ids = np.unique(combined, return_index=True, return_inverse=True)
        n = uniq.size if g else 1
        ids = ids.reshape(-1) if g else np.zeros(len(frame), dtype=np.int64)
        flat = ids * T + t
        for c in COUNTS:
            counts[c].append(np.bincount(flat, weights=vals[c], minlength=n * T).reshape(n, T))
        rows = first if g else first[:1]
        keys = pl.DataFrame({d: (levels[d][codes[d][rows]] if d in g else np.full(n, None, dtype=object))
                             for d in DIMS}, schema={d: pl.String for d in DIMS})
        key_frames.append(keys.with_columns(pl.lit("|".join(g)).alias("grouping")))
        gro.extend([g] * n)
    keys = pl.concat(key_frames).with_row_index("series")
    keys = keys.with_columns(pl.col("region").replace_strict(region_tz, default="UTC").alias("tz"))
    out = SliceSet(hours, keys, gro, {c: np.concatenate(v) for c, v in counts.items()})
    cols = {d: keys[d].to_list() for d in DIMS}
    for i, g in enumerate(gro):
        out.index[(g, tuple(cols[d][i] for d in g))] = i
    scope = ("campaign_id", "region")
    campaign_of = np.array([out.index[(tuple(d for d in scope if d in g), tuple(cols[d][i] for d in scope if d in g))]
                            for i, g in enumerate(gro)])
    out.counts[CAMPAIGN_SENT] = out.counts["sent"][campaign_of]
    return out


def _parent_matrix(ss: SliceSet, g: tuple[str, ...], rows_g: np.ndarray, rows_gr: np.ndarray) -> sp.csr_matrix:
    """Sparse [S_g, S_{g+region}] summing each per-region slice into its region-less parent."""
    cols = {d: ss.keys[d].to_list() for d in g}
    parent = np.array([ss.index[(g, tuple(cols[d][int(r)] for d in g))] for r in rows_gr]) if g else np.full(rows_gr.size, rows_g[0])
    pos = {int(s): i for i, s in enumerate(rows_g)}
    pi = np.array([pos[int(p)] for p in parent], dtype=np.int64)
    return sp.csr_matrix((np.ones(rows_gr.size), (pi, np.arange(rows_gr.size))), shape=(rows_g.size, rows_gr.size))


def _sum_parts(A: sp.csr_matrix, rows_g: np.ndarray, rows_parts: np.ndarray, den: np.ndarray | None,
               mu: np.ndarray, var: np.ndarray) -> None:
    """Expectations of a grouping's slices (``rows_g``) as the sums of their parts' (``rows_parts``, one
    dimension finer; ``A`` sums parts into slices); for rates scaled up to the parts whose expectation
    is unknown (none if they carry more than a tenth of the denominator, or there is no denominator:
    a slice with nothing to judge must not pass on a "known" zero to the slices summed from it)."""
    m_c, v_c = mu[rows_parts], var[rows_parts]
    known = np.isfinite(m_c)
    if den is not None:
        d_c = np.nan_to_num(den[rows_parts])
        d_known = A @ np.where(known, d_c, 0.0)
        d_all = A @ d_c
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.where(d_known > 0, d_all / d_known, np.nan)  # no denominator: nothing to judge
        scale = np.where(d_known >= 0.9 * d_all, scale, np.nan)
        mu[rows_g] = (A @ np.where(known, m_c, 0.0)) * scale
        var[rows_g] = (A @ np.where(known, v_c, 0.0)) * scale
    else:
        missing = A @ (~known).astype(float)
        mu[rows_g] = np.where(missing > 0, np.nan, A @ np.where(known, m_c, 0.0))
        var[rows_g] = np.where(missing > 0, np.nan, A @ np.where(known, v_c, 0.0))


def metric_counts(ss: SliceSet, metric: Metric, rows: slice = slice(None)) -> tuple[np.ndarray, np.ndarray | None, int]:
    """The metric's numerator and denominator matrices (of the slices ``rows``; all by default), hours
    younger than its settle time blanked out, and the number of positions that can be judged now."""
    num = ss.counts[metric.numerator][rows].copy()
    den = ss.counts[metric.denominator][rows].copy() if metric.denominator else None
    T = ss.hours.size
    cut = max(T - metric.settle_hours, 0)
    num[:, cut:] = np.nan
    if den is not None:
        den[:, cut:] = np.nan
    return num, den, cut


def score_metric(ss: SliceSet, metric: Metric, p: Params, state=None) -> Scored:
    """Score one metric over all slices (expectations for slices without a region, and for rates
    without a campaign, summed from their parts); ``state`` continues an earlier scoring."""
    if metric.kind == "count":
        p = replace(p, count_daily_fallback=False)
    num, den, cut = metric_counts(ss, metric)
    S = num.shape[0]
    gro = ss.grouping_of
    tz = ss.keys["tz"].to_list()
    by_g: dict[tuple, list[int]] = {}
    for i, g in enumerate(gro):
        by_g.setdefault(g, []).append(i)
    rows_of = {g: np.array(v) for g, v in by_g.items()}
    # rates are modelled within a campaign (campaigns differ several-fold and their mix moves hour by
    # hour); a slice without one sums its campaigns' parts
    by_campaign = metric.kind == "rate"
    direct = np.nonzero(np.array(["region" in g and (not by_campaign or "campaign_id" in g) for g in gro]))[0]
    leaf = make_expect(metric.kind, num[direct], None if den is None else den[direct], ss.hours,
                       [tz[i] for i in direct], p)
    sums = []
    for dim, todo in (("region", lambda g: "region" not in g and (not by_campaign or "campaign_id" in g)),
                      ("campaign_id", lambda g: by_campaign and "campaign_id" not in g)):
        for g, rows_g in rows_of.items():
            if todo(g):
                parts = rows_of[tuple(d for d in DIMS if d in g or d == dim)]
                sums.append((_parent_matrix(ss, g, rows_g, parts), rows_g, parts))

    def expect(cols: np.ndarray, num_h: np.ndarray, den_h: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        mu = np.full((S, cols.size), np.nan)
        var = np.full((S, cols.size), np.nan)
        mu[direct], var[direct] = leaf(cols, num_h[direct], None if den_h is None else den_h[direct])
        d = None if den is None else den[:, cols]
        for A, rows_g, parts in sums:
            _sum_parts(A, rows_g, parts, d, mu, var)
        return mu, var

    # sparse slices borrow the over-dispersion typical of their grouping
    groups = np.array([hash(g) for g in gro])
    return score_matrix(metric.kind, num, den, ss.hours, tz, p, expect=expect, groups=groups,
                        min_points=OWN_DISPERSION_POINTS, state=state, until=cut)
