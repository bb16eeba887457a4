"""Thompson-sampling allocation: the next units' split from what the experiment has shown so far.

Read from the published snapshot's ``marts.fct_experiment_stats`` (the sufficient statistics the
results job reads; dispatch never imports ``experiments``): for the experiment's first goal
metric, each arm's latest cumulative n, Σx, Σx² (and Σy, Σy², Σxy for a ratio metric). Each arm's
mean gets a normal posterior (the delta method for a ratio), 20,000 joint draws give each arm's
chance of being best (higher is better), and the weights are those chances with a floor per arm,
so no arm starves and the estimate for every arm keeps improving. With fewer than ``MIN_UNITS``
units in some arm, or no statistics yet, the planned weights are used and the reason is given.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import duckdb
import numpy as np

from warehouse.sql import rows

DRAWS = 20_000
MIN_UNITS = 100

STATS_SQL = """
SELECT variant, metric_type, n, sum_x, sum_x2, sum_y, sum_y2, sum_xy
FROM marts.fct_experiment_stats
WHERE experiment_id = ? AND metric = ? AND scope = 'cumulative' AND dimension = 'overall'
QUALIFY row_number() OVER (PARTITION BY variant ORDER BY analysis_date DESC) = 1
"""


@dataclass(frozen=True)
class Allocation:
    weights: dict[str, float]
    method: str               # thompson or fixed
    note: str = ""
    chance_to_be_best: dict[str, float] | None = None


def _posterior(metric_type: str, n: float, sx: float, sx2: float, sy: float, sy2: float, sxy: float) -> tuple[float, float]:
    """(mean, standard error) of one arm's metric."""
    if metric_type == "ratio":
        xbar, ybar = sx / n, sy / n
        if ybar <= 0:
            return 0.0, float("inf")
        r = xbar / ybar
        vx, vy, cxy = sx2 / n - xbar ** 2, sy2 / n - ybar ** 2, sxy / n - xbar * ybar
        var = max(vx - 2 * r * cxy + r * r * vy, 0.0) / (n * ybar ** 2)
        return r, var ** 0.5
    mean = sx / n
    var = max(sx2 / n - mean ** 2, 0.0) / n
    return mean, var ** 0.5


def thompson(conn: duckdb.DuckDBPyConnection, experiment_id: str, metric: str, planned: dict[str, float],
             floor: float) -> Allocation:
    """Weights over the arms of ``planned`` (the variants, not the holdout)."""
    found = {r[0]: r[1:] for r in rows(conn, STATS_SQL, [experiment_id, metric])}
    arms = list(planned)
    missing = [a for a in arms if a not in found or (found[a][1] or 0) < MIN_UNITS]
    if missing:
        return Allocation(dict(planned), "fixed", f"{metric}: fewer than {MIN_UNITS} units so far in "
                          f"{', '.join(missing)}; the planned weights are used")
    params = [_posterior(found[a][0], *(float(v or 0) for v in found[a][1:])) for a in arms]
    seed = int.from_bytes(hashlib.sha256(experiment_id.encode()).digest()[:4], "big")
    rng = np.random.default_rng(seed)
    means = np.array([p[0] for p in params])
    ses = np.array([p[1] if np.isfinite(p[1]) else 1e9 for p in params])
    draws = rng.normal(means, ses, size=(DRAWS, len(arms)))
    best = np.bincount(draws.argmax(axis=1), minlength=len(arms)) / DRAWS
    floor = min(max(floor, 0.0), 1.0 / len(arms))
    weights = floor + (1 - floor * len(arms)) * best
    weights = weights / weights.sum()
    return Allocation({a: float(w) for a, w in zip(arms, weights)}, "thompson",
                      f"{metric}: chance to be best " + ", ".join(f"{a} {b:.0%}" for a, b in zip(arms, best)),
                      {a: float(b) for a, b in zip(arms, best)})
