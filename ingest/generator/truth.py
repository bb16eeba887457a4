"""The ground truth: what was planted (experiments, incidents, mess) and what the files hold, as JSON.

Besides the planted parameters it records per-arm counts observed in the written files (computed
from the simulation arrays with the same cutoff), so analyses can be checked against both the
true effect and the realised sample.
"""

from __future__ import annotations

import numpy as np

from ..contract import DELIVERY_STATUSES
from . import catalog as C
from .campaigns import CART_EMAIL_DELAY, CART_SMS_DELAY, PROMO_AUDIENCE
from .clock import Window, iso
from .engagement import (CLOCK_SKEW_PROVIDER, CLOCK_SKEW_SECONDS, CONVERSION_TYPES, LATE_SHARE, NEVER)
from .experiments import EXPERIMENTS, VARIANT_OFFSET
from .mess import DUPLICATE_SHARE, LOCAL_OFFSET_SHARE
from .population import Population


def experiment_truth(sends: dict[str, np.ndarray], dlv: dict[str, np.ndarray], first_click: np.ndarray,
                     conv: dict[str, np.ndarray], assign: dict[str, np.ndarray], window: Window) -> list[dict]:
    """Definitions, planned splits and the observed per-arm counts of every experiment."""
    delivered = dlv["delivered"] & (dlv["t_final"] < window.end)
    clicked = delivered & (first_click < window.end)
    conv_ok = (conv["send"] >= 0) & (conv["t"] < window.end)
    converted = np.zeros(sends["user"].size, dtype=bool)
    converted[conv["send"][conv_ok]] = True
    converted &= delivered
    assigned = assign["t"] < window.end
    purchase = CONVERSION_TYPES.index("purchase")
    out = []
    for i, e in enumerate(EXPERIMENTS):
        arms = []
        for k, arm in enumerate(e.arms):
            code = VARIANT_OFFSET[i] + k
            mine = (sends["variant"] == code) & (sends["campaign"] == e.campaign)
            units = assign["user"][assigned & (assign["variant"] == code)]
            n_del = int((mine & delivered).sum())
            n_click = int((mine & clicked).sum())
            n_conv = int((mine & converted).sum())
            record = {
                "arm": arm,
                "planned_share": e.weights[k],
                "units": int(units.size),
                "sends": int(mine.sum()),
                "delivered": n_del,
                "human_clicked_messages": n_click,
                "converted_messages": n_conv,
                "click_through_rate": n_click / n_del if n_del else None,
                "conversion_rate": n_conv / n_del if n_del else None,
            }
            if e.id == "exp_cart_holdout":
                t_unit = np.full(int(assign["user"].max(initial=-1)) + 1, NEVER, dtype=np.int64)
                sel = assigned & (assign["variant"] == code)
                t_unit[assign["user"][sel]] = assign["t"][sel]
                buys = (conv["type"] == purchase) & (conv["t"] < window.end) & (conv["user"] < t_unit.size)
                u = conv["user"][buys]
                after = conv["t"][buys] >= t_unit[u]
                record["purchases_after_assignment"] = int(after.sum())
                record["purchases_per_unit"] = int(after.sum()) / units.size if units.size else None
            arms.append(record)
        metric_key = "purchases_per_unit" if e.metric == "purchase_rate" else e.metric
        ctrl = next(a for a in arms if a["arm"] == e.control)[metric_key]
        treat = next(a for a in arms if a["arm"] == e.treatment)[metric_key]
        out.append({
            "id": e.id,
            "campaign_id": C.CAMPAIGNS[e.campaign].id,
            "unit": "user",
            "arms": list(e.arms),
            "split": dict(zip(e.arms, e.weights)),
            "control": e.control,
            "treatment": e.treatment,
            "metric": e.metric,
            "metric_definition": e.metric_definition,
            "planted_relative_effect": e.planted_relative_effect,
            "description": e.description,
            "observed": {
                "arms": arms,
                "relative_effect": (treat / ctrl - 1) if ctrl and treat is not None else None,
            },
        })
    return out


def campaign_truth() -> list[dict]:
    """The campaigns as documented logic."""
    return [
        {
            "id": c.id,
            "trigger": c.trigger,
            "templates": list(c.templates),
            "priority": c.priority,
            "landing_page": c.page,
            "base_human_click_rate": c.click if c.id != "cart_abandonment" else {"sms": c.click, "email": C.CART_EMAIL_CLICK},
            "conversion_type": c.conversion_type,
            "conversion_probability_after_click": c.conversion,
        }
        for c in C.CAMPAIGNS
    ]


def population_truth(pop: Population) -> dict:
    """Counts of users per segment, country, and consent per channel."""
    return {
        "segments": {s: int((pop.segment == i).sum()) for i, s in enumerate(C.SEGMENTS)},
        "countries": {c.code: int((pop.country == i).sum()) for i, c in enumerate(C.COUNTRIES)},
        "consent": {ch: int(pop.consent[:, i].sum()) for i, ch in enumerate(C.CHANNELS)},
        "regions": {c.code: [r.code for r in c.regions] for c in C.COUNTRIES},
        "carriers": {c.code: [k.name for k in c.carriers] for c in C.COUNTRIES},
        "timezones": {r.code: r.timezone for r in C.REGIONS},
    }


def mess_truth(late_receipts: int, local_rows: int) -> dict:
    """The real-log mess planted in the files."""
    return {
        "late_receipts": late_receipts,
        "late_receipts_definition": f"final receipts (delivered/undelivered, SMS and e-mail; about {LATE_SHARE:.0%}) "
        "whose occurred_at is 1-18 h after the message actually reached the handset; clicks can precede them",
        "clock_skew": {
            "provider": C.PROVIDERS[CLOCK_SKEW_PROVIDER],
            "table": "deliveries",
            "seconds": CLOCK_SKEW_SECONDS,
            "direction": "ahead",
            "description": f"every receipt from {C.PROVIDERS[CLOCK_SKEW_PROVIDER]} is stamped {CLOCK_SKEW_SECONDS} s "
            "after the true instant (its clock runs fast)",
        },
        "duplicate_share": DUPLICATE_SHARE,
        "duplicates_definition": "exact copies of earlier delivery rows (same event_id and values) placed later in "
        "the file (arriving 30 s to 2 h after the original)",
        "timestamp_offsets": {
            "share": LOCAL_OFFSET_SHARE,
            "rows": local_rows,
            "description": "most timestamps end in 'Z'; about 2 % of event rows are written in the user's local time "
            "with its offset (e.g. '+02:00', '-07:00', '+05:30', '+00:00') for the same instant; scheduled_for is "
            "always UTC; no timestamp is naive",
        },
    }


def notes() -> list[str]:
    """Facts the readers of the files need."""
    return [
        "window: sends are scheduled in [start, end); the extract stops at end, so later receipts, clicks and "
        "conversions are absent (users' first profile rows are dated at sign-up, before start)",
        "deliveries rows are in arrival order; the other files are ordered by occurred_at",
        "bots: clicks whose user_agent contains one of bot_user_agent_tokens (case-insensitive) are link-preview "
        "fetches, within 0-6 s of delivery; every other click is human",
        f"cart_abandonment: SMS {CART_SMS_DELAY // 60} min after abandonment to users with SMS consent (holdout "
        f"excluded); the e-mail is scheduled exactly {CART_EMAIL_DELAY // 3600} h after the SMS's scheduled_for, only "
        "if the SMS has no human click before then and the user consents to e-mail",
        "consent: a user's sends only use consented channels; a STOP reply creates a new users row with "
        "consent_sms=false 2 s later and no SMS is sent to that user after the STOP",
        f"promotions audience per blast by segment {dict(zip(C.SEGMENTS, PROMO_AUDIENCE))}",
        "conversions: campaign_id is filled for about 15 % of message-driven conversions (the source passed it on); "
        "attribution is left to dbt; organic (unattributed) conversions are all conversion_type 'purchase'",
        "replies: message_id is empty, in_reply_to is the message answered, keyword is empty for free text",
        f"statuses used: {', '.join(s for s in DELIVERY_STATUSES if s != 'unknown')}; push has no accepted receipt; "
        "a rejected SMS/e-mail has no accepted receipt",
    ]


def window_truth(window: Window) -> dict:
    """Start and end of the window as ISO text."""
    return {"start": iso(window.start), "end": iso(window.end)}
