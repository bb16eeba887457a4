"""Planning: power, minimum detectable effect and required sample size for proportion and mean metrics.

The test planned for is the one ``compare`` runs: a test of the absolute difference with unpooled
variances, SE = √(σ²_c/n_c + σ²_t/n_t), under its normal limit. For a proportion σ² = p(1−p) in each
arm (the treatment's at the alternative p + δ); for a mean, a common standard deviation.
Two-sided power counts both rejection regions, Φ((δ−δ₀)/SE − z) + Φ(−(δ−δ₀)/SE − z) with
z = z_{1−α/2}; ``alternative="greater"`` counts Φ((δ−δ₀)/SE − z_{1−α}), ``"less"`` the mirror. δ₀ is
``margin`` (0: no difference; −2 % with greater: non-inferiority at 2 %). ``comparisons`` plans for a
family of that many tests (goal metrics × treatment arms) at α / comparisons each — Bonferroni,
which is also the first step of Holm, so the plan holds for the correction the analysis runs.
``ratio`` is n_treatment / n_control; ``relative=True`` states effects and margins as lifts on the
baseline.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special


ALTERNATIVES = ("two-sided", "greater", "less")


def _family_alpha(alpha: float, comparisons: int, alternative: str) -> float:
    """α per test for a family of ``comparisons`` tests; refuses what describes no test."""
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {', '.join(ALTERNATIVES)}, not {alternative!r}")
    if not (isinstance(comparisons, (int, np.integer)) and comparisons >= 1):
        raise ValueError(f"comparisons must be a whole number of at least 1, not {comparisons!r}")
    return alpha / comparisons


def _check(metric_type: str, baseline: NDArray, std: ArrayLike | None, alpha: float, ratio: float) -> None:
    """Refuse planning inputs that describe no possible experiment."""
    if metric_type not in ("proportion", "mean"):
        raise ValueError(f"power calculations cover proportion and mean metrics, not {metric_type!r}")
    if metric_type == "proportion" and np.any((baseline <= 0) | (baseline >= 1)):
        raise ValueError("a proportion's baseline must lie strictly between 0 and 1")
    if metric_type == "mean" and (std is None or np.any(np.asarray(std, dtype=float) <= 0)):
        raise ValueError("a mean metric needs a positive std")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), not {alpha}")
    if not ratio > 0:
        raise ValueError(f"ratio (n_treatment / n_control) must be positive, not {ratio}")


def _variances(metric_type: str, baseline: NDArray, delta: NDArray, std: ArrayLike | None) -> tuple[NDArray, NDArray]:
    """Per-unit variances of control and treatment at the alternative."""
    if metric_type == "proportion":
        alt = baseline + delta
        if np.any((alt < 0) | (alt > 1)):
            raise ValueError("baseline + effect must stay within [0, 1] for a proportion")
        return baseline * (1 - baseline), alt * (1 - alt)
    s2 = np.asarray(std, dtype=float) ** 2
    return s2 + 0 * delta, s2 + 0 * delta


def _power_of(standardised: NDArray, alpha: float, alternative: str = "two-sided") -> NDArray[np.float64]:
    """Power of the z test when the effect is `standardised` standard errors beyond the null."""
    if alternative == "two-sided":
        z = special.ndtri(1 - alpha / 2)
        x = np.abs(standardised)
        return special.ndtr(x - z) + special.ndtr(-x - z)
    z = special.ndtri(1 - alpha)
    return special.ndtr((standardised if alternative == "greater" else -standardised) - z)


def _standardised_for_power(alpha: float, target: float, alternative: str = "two-sided") -> float:
    """The |effect − null|/SE at which the test reaches the target power (bisection; power rises with it)."""
    if not alpha < target < 1:
        raise ValueError(f"power must lie in (alpha, 1), not {target}")
    sign = -1.0 if alternative == "less" else 1.0
    lo, hi = 0.0, 60.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _power_of(np.asarray(sign * mid), alpha, alternative) < target else (lo, mid)
    return 0.5 * (lo + hi)


def power(effect: ArrayLike, n_control: ArrayLike, *, baseline: ArrayLike, metric_type: str = "proportion",
          std: ArrayLike | None = None, alpha: float = 0.05, ratio: float = 1.0, relative: bool = False,
          alternative: str = "two-sided", margin: float = 0.0, comparisons: int = 1) -> NDArray[np.float64]:
    """Probability that the test at α (per test: α / comparisons) rejects its null (no difference, or
    ``margin``) when the true effect is `effect`, with n_control (and ratio × n_control) units."""
    b = np.asarray(baseline, dtype=float)
    _check(metric_type, b, std, alpha, ratio)
    a = _family_alpha(alpha, comparisons, alternative)
    scale = b if relative else 1.0
    delta = np.asarray(effect, dtype=float) * scale
    vc, vt = _variances(metric_type, b, delta, std)
    nc = np.asarray(n_control, dtype=float)
    se = np.sqrt(vc / nc + vt / (ratio * nc))
    return _power_of((delta - margin * scale) / se, a, alternative)


def sample_size(effect: ArrayLike, *, baseline: ArrayLike, metric_type: str = "proportion", std: ArrayLike | None = None,
                alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0, relative: bool = False,
                alternative: str = "two-sided", margin: float = 0.0, comparisons: int = 1) -> NDArray[np.int64]:
    """Smallest control-arm size (treatment: ⌈ratio × n⌉) at which the test reaches `power` for `effect`."""
    b = np.asarray(baseline, dtype=float)
    _check(metric_type, b, std, alpha, ratio)
    a = _family_alpha(alpha, comparisons, alternative)
    scale = b if relative else 1.0
    delta = np.asarray(effect, dtype=float) * scale
    gap = delta - margin * scale
    if np.any(gap == 0):
        raise ValueError("an effect equal to the null cannot be detected at any sample size")
    if alternative != "two-sided" and np.any(np.sign(gap) != (1 if alternative == "greater" else -1)):
        raise ValueError(f"a {alternative} test detects effects on its own side of the null only")
    vc, vt = _variances(metric_type, b, delta, std)
    x = _standardised_for_power(a, power, alternative)
    return np.ceil(x * x * (vc + vt / ratio) / (gap * gap) - 1e-9).astype(np.int64)


def mde(n_control: ArrayLike, *, baseline: ArrayLike, metric_type: str = "proportion", std: ArrayLike | None = None,
        alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0, relative: bool = False,
        direction: int = 1, alternative: str = "two-sided", margin: float = 0.0,
        comparisons: int = 1) -> NDArray[np.float64]:
    """Smallest effect (absolute, or relative to the baseline) in `direction` (+1 up, −1 down; a
    one-sided test's own side) detected with `power`; with a margin, the effect beyond which the
    test shows it clears the margin.

    NaN where no effect within a proportion's range [0, 1] reaches the power (too few units).
    """
    b = np.asarray(baseline, dtype=float)
    _check(metric_type, b, std, alpha, ratio)
    a = _family_alpha(alpha, comparisons, alternative)
    if direction not in (1, -1):
        raise ValueError("direction must be +1 or -1")
    if alternative != "two-sided":
        direction = 1 if alternative == "greater" else -1
    nc, nt = np.asarray(n_control, dtype=float), ratio * np.asarray(n_control, dtype=float)
    x = _standardised_for_power(a, power, alternative)
    null = margin * (b if relative else 1.0)
    if metric_type == "mean":
        delta = null + direction * x * np.asarray(std, dtype=float) * np.sqrt(1 / nc + 1 / nt) + 0 * b
    else:  # (δ−δ₀)/SE(δ) grows with δ on the test's side, so bisect on δ within the room the baseline leaves
        start = null + 0 * b + 0 * nc
        room = np.where(direction > 0, 1 - b - start, b + start) + 0 * nc
        lo, hi = np.zeros_like(room), np.maximum(room, 0.0)
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            alt = b + start + direction * mid
            se = np.sqrt(b * (1 - b) / nc + alt * (1 - alt) / nt)
            below = mid / se < x
            lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        delta = start + direction * 0.5 * (lo + hi)
        delta = np.where(hi >= room * (1 - 1e-12), np.nan, delta)
    return delta / b if relative else delta


def conditional_power(z_now: ArrayLike, information: ArrayLike, *, alpha: float = 0.05,
                      alternative: str = "two-sided") -> NDArray[np.float64]:
    """The probability that a fixed-horizon test started now at z statistic ``z_now`` with the
    fraction ``information`` (units now / units at the planned end) rejects at the end, if the
    effect stays what it is now (the current trend; Lan and Wittes' B-value). The final statistic
    is then N(z_now/√t, 1 − t) given today's: power = Φ((z_now/√t − z)/√(1 − t)) (+ the other
    tail for a two-sided test). At t = 1 it is 1 or 0: the experiment is over."""
    z_now, t = np.broadcast_arrays(np.asarray(z_now, dtype=float), np.asarray(information, dtype=float))
    if np.any((t <= 0) | (t > 1)):
        raise ValueError("the information fraction (units now / units at the end) must lie in (0, 1]")
    _family_alpha(alpha, 1, alternative)
    drift = z_now / np.sqrt(t)
    rest = np.sqrt(np.maximum(1.0 - t, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        if alternative == "two-sided":
            z = special.ndtri(1 - alpha / 2)
            upper = np.where(rest > 0, special.ndtr((drift - z) / rest), (drift > z).astype(float))
            lower = np.where(rest > 0, special.ndtr((-drift - z) / rest), (-drift > z).astype(float))
            return upper + lower
        z = special.ndtri(1 - alpha)
        signed = drift if alternative == "greater" else -drift
        return np.where(rest > 0, special.ndtr((signed - z) / rest), (signed > z).astype(float))


def sequential_conditional_power(estimate: float, se: float, n_now: float, n_end: float, looks: int, *,
                                 alpha: float = 0.05, n_star: float = 5000.0, alternative: str = "two-sided",
                                 null: float = 0.0, paths: int = 20_000, seed: int = 0) -> float:
    """The probability that the always-valid test rejects at one of ``looks`` evenly spaced looks
    between now (``n_now`` units) and the planned end (``n_end``), if the effect stays ``estimate``:
    simulated over ``paths`` continuations of the running estimate (its per-unit variance from
    today's standard error), each look judged by the same confidence sequence as the analysis."""
    from experiments import sequential as seq

    if not (n_end >= n_now > 0 and looks >= 1 and se > 0):
        raise ValueError("need n_end ≥ n_now > 0 units, at least one look and a positive standard error")
    rng = np.random.default_rng(seed)
    per_unit = se * se * n_now          # σ² of one unit's contribution to the effect estimate
    marks = np.linspace(n_now, n_end, looks + 1)[1:]
    total = np.full(paths, estimate * n_now)
    done = np.zeros(paths, dtype=bool)
    before = n_now
    for n in marks:
        step = n - before
        total += rng.normal(estimate * step, np.sqrt(per_unit * step), paths)
        before = n
        now = total / n
        p = seq.p_value(now, np.sqrt(per_unit / n), n, alpha, n_star,
                        {"two-sided": 0, "greater": 1, "less": -1}[alternative], null)
        done |= p < alpha
    return float(done.mean())
