"""The planted experiments: their arms, splits and true effects, and the per-user arm draws.

Randomisation unit = user. Each experiment is attached to one campaign; a user is assigned (and
gets one assignment row) the first time that campaign targets them. Effects are multipliers on
the probability of a human click or of a conversion after a click, so the true relative lift on
the stated metric equals the multiplier minus one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
import yaml

from . import catalog as C


@dataclass(frozen=True)
class Experiment:
    """One experiment on one campaign; per-arm multipliers encode the planted effect."""

    id: str
    campaign: int
    arms: tuple[str, ...]
    weights: tuple[float, ...]
    control: str
    treatment: str
    metric: str
    metric_definition: str
    planted_relative_effect: float | None
    click_multiplier: tuple[float, ...]
    conversion_multiplier: tuple[float, ...]
    suppressed: tuple[bool, ...]
    description: str
    # how the owner defined it (experiments.yml): the marts' metric names
    name: str = ""
    goal_metrics: tuple[str, ...] = ()
    guardrails: tuple[str, ...] = ()


PROMO_LIFT = 0.23
BILL_LIFT = 0.15

EXPERIMENTS: tuple[Experiment, ...] = (
    Experiment(
        "exp_promo_wording", C.PROMO, ("limited_time_offer", "exclusive_privilege"), (0.5, 0.5),
        "limited_time_offer", "exclusive_privilege", "click_through_rate",
        "delivered promotions messages with at least one human click / delivered promotions messages",
        PROMO_LIFT, (1.0, 1.0 + PROMO_LIFT), (1.0, 1.0), (False, False),
        "Promotion wording: 'exclusive privilege' raises human click-through per delivered message by 23 % "
        "relative to 'limited time offer'.",
        "Promotion wording", ("click_through",), ("conversions", "revenue"),
    ),
    Experiment(
        "exp_bill_personalisation", C.BILL, ("generic", "personalised"), (0.5, 0.5),
        "generic", "personalised", "conversion_rate",
        "payment conversions that follow a human click on the reminder / delivered bill_due reminders "
        "(the click rate is the same in both arms; P(payment | click) is 15 % higher when personalised)",
        BILL_LIFT, (1.0, 1.0), (1.0, 1.0 + BILL_LIFT), (False, False),
        "Personalised bill reminder (name, amount, due date) raises on-time payment by 15 % relative.",
        "Personalised bill reminder", ("converted",), (),
    ),
    Experiment(
        "exp_cart_holdout", C.CART, ("holdout", "treatment"), (0.1, 0.9),
        "holdout", "treatment", "purchase_rate",
        "purchase conversions per assigned unit; holdout units never get a cart_abandonment send, both arms "
        "share the same organic purchase probability after an abandonment",
        None, (1.0, 1.0), (1.0, 1.0), (True, False),
        "Holdout: 10 % of cart abandoners are assigned to 'holdout' and never messaged (incrementality).",
        "Cart reminder holdout", ("converted",), (),
    ),
    Experiment(
        "exp_parcel_aa", C.PARCEL, ("a1", "a2"), (0.5, 0.5),
        "a1", "a2", "click_through_rate",
        "delivered parcel_shipped messages with at least one human click / delivered parcel_shipped messages",
        0.0, (1.0, 1.0), (1.0, 1.0), (False, False),
        "A/A test: two identical arms on parcel_shipped; any significant difference is a false positive.",
        "Parcel A/A", ("click_through",), ("conversions", "revenue"),
    ),
)

# Global variant codes: the arms of all experiments in order.
VARIANTS: tuple[str, ...] = tuple(a for e in EXPERIMENTS for a in e.arms)
VARIANT_OFFSET: tuple[int, ...] = tuple(int(x) for x in np.cumsum([0] + [len(e.arms) for e in EXPERIMENTS])[:-1])
VARIANT_EXPERIMENT: np.ndarray = np.array([i for i, e in enumerate(EXPERIMENTS) for _ in e.arms], dtype=np.int16)
VARIANT_CLICK: np.ndarray = np.array([m for e in EXPERIMENTS for m in e.click_multiplier] + [1.0])
VARIANT_CONVERSION: np.ndarray = np.array([m for e in EXPERIMENTS for m in e.conversion_multiplier] + [1.0])
VARIANT_SUPPRESSED: np.ndarray = np.array([s for e in EXPERIMENTS for s in e.suppressed] + [False])
# Which experiment runs on each campaign (-1 = none).
CAMPAIGN_EXPERIMENT: tuple[int, ...] = tuple(
    next((i for i, e in enumerate(EXPERIMENTS) if e.campaign == c), -1) for c in range(len(C.CAMPAIGNS))
)


def variant_code(experiment_id: str, arm: str) -> int:
    """The global variant code of ``arm`` in ``experiment_id``."""
    i = next(k for k, e in enumerate(EXPERIMENTS) if e.id == experiment_id)
    return VARIANT_OFFSET[i] + EXPERIMENTS[i].arms.index(arm)


def draw_arms(n_users: int, rng: np.random.Generator) -> np.ndarray:
    """Global variant code per (experiment, user), drawn independently per experiment by its split."""
    out = np.empty((len(EXPERIMENTS), n_users), dtype=np.int16)
    for i, e in enumerate(EXPERIMENTS):
        w = np.asarray(e.weights, dtype=float)
        out[i] = VARIANT_OFFSET[i] + rng.choice(len(e.arms), size=n_users, p=w / w.sum())
    return out


def assignments(user: np.ndarray, campaign: np.ndarray, t_sched: np.ndarray, arms: np.ndarray,
                rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One assignment per (experiment, targeted user), timed shortly before the campaign first targets them."""
    parts = []
    for i, e in enumerate(EXPERIMENTS):
        rows = np.nonzero(campaign == e.campaign)[0]
        if rows.size == 0:
            continue
        order = np.lexsort((t_sched[rows], user[rows]))
        u = user[rows][order]
        first = np.ones(u.size, dtype=bool)
        first[1:] = u[1:] != u[:-1]
        units = u[first]
        t_first = t_sched[rows][order][first]
        parts.append((np.full(units.size, i, dtype=np.int16), units, arms[i, units], t_first))
    exp = np.concatenate([p[0] for p in parts]) if parts else np.empty(0, np.int16)
    units = np.concatenate([p[1] for p in parts]) if parts else np.empty(0, np.int64)
    variant = np.concatenate([p[2] for p in parts]) if parts else np.empty(0, np.int16)
    t_first = np.concatenate([p[3] for p in parts]) if parts else np.empty(0, np.int64)
    t = t_first - rng.integers(1, 301, t_first.size)
    return {"experiment": exp, "user": units, "variant": variant, "t": t}


MEASURED_METRICS = ("click_through", "conversion_per_delivered", "clicked", "converted", "conversions", "revenue")
DEFINITIONS_FILE = "experiments.yml"


def definitions_yaml(window_start: int) -> str:
    """The owners' definitions of the planted experiments, as ``nudgelab ingest`` reads them: arms,
    planned weights, control, goal metric, guardrails; every other measured metric is secondary.
    Defined the day before the window opens (a fixed time, so the file is byte-identical per seed)."""
    start = datetime.fromtimestamp(window_start, timezone.utc)
    experiments = []
    for e in EXPERIMENTS:
        experiments.append({
            "id": e.id,
            "name": e.name,
            "hypothesis": e.description,
            "owner": "Growth team",
            "unit": "user",
            "campaign": C.CAMPAIGNS[e.campaign].id,
            "variants": [{"name": a, "weight": w, **({"control": True} if a == e.control else {})}
                         for a, w in zip(e.arms, e.weights)],
            "goal_metrics": list(e.goal_metrics),
            "secondary_metrics": [m for m in MEASURED_METRICS if m not in e.goal_metrics and m not in e.guardrails],
            "guardrails": [{"metric": m, "margin": 0.02} for m in e.guardrails],
            "alpha": 0.05,
            "start": start.date().isoformat(),
            "status": "running",
            "defined_at": (start - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        })
    header = "# Experiment definitions of the generated scenario (what `nudgelab ingest` lands in raw.experiments)\n"
    return header + yaml.safe_dump({"experiments": experiments}, sort_keys=False, allow_unicode=True, width=100)
