"""What happens after a send: delivery receipts, replies and opt-outs, clicks (human and bot), dwells, conversions.

Every step is a vectorised draw over all sends at once. Probabilities follow the catalog (carrier
and gateway delivery quality, campaign click and conversion rates, the user's segment and active
hours, the experiment arm) and the incidents. Times are int64 UTC seconds.
"""

from __future__ import annotations

import numpy as np

from ..contract import DELIVERY_STATUSES
from . import catalog as C
from .clock import DAY, HOUR, Window
from .experiments import VARIANT_CLICK, VARIANT_CONVERSION
from .incidents import Incidents, blocked_clicks, in_outage
from .population import Population

NEVER = np.iinfo(np.int64).max
ACCEPTED, DELIVERED, UNDELIVERED, FAILED, EXPIRED, REJECTED = (DELIVERY_STATUSES.index(s) for s in (
    "accepted", "delivered", "undelivered", "failed", "expired", "rejected"))

# (provider, status, provider_status, error_code): the vendor vocabulary of each receipt.
RECEIPTS: tuple[tuple[int, int, str, str | None], ...] = tuple(
    [(p, ACCEPTED, "ACCEPTD", None) for p in (C.KANNEL_A, C.KANNEL_B)]
    + [(p, DELIVERED, "DELIVRD", "000") for p in (C.KANNEL_A, C.KANNEL_B)]
    + [(p, UNDELIVERED, "UNDELIV", e) for p in (C.KANNEL_A, C.KANNEL_B) for e in ("001", "006", "034")]
    + [(p, FAILED, "NACK/0x00000045/Submit failed", "0x00000045") for p in (C.KANNEL_A, C.KANNEL_B)]
    + [(p, EXPIRED, "EXPIRED", "027") for p in (C.KANNEL_A, C.KANNEL_B)]
    + [(p, REJECTED, "REJECTD", "0x0000000B") for p in (C.KANNEL_A, C.KANNEL_B)]
    + [
        (C.TWILIO, ACCEPTED, "sent", None),
        (C.TWILIO, DELIVERED, "delivered", None),
        (C.TWILIO, UNDELIVERED, "undelivered", "30003"),
        (C.TWILIO, UNDELIVERED, "undelivered", "30005"),
        (C.TWILIO, UNDELIVERED, "undelivered", "30006"),
        (C.TWILIO, UNDELIVERED, "undelivered", "30007"),
        (C.TWILIO, FAILED, "failed", "30008"),
        (C.TWILIO, FAILED, "failed", "30034"),
        (C.SENDGRID, ACCEPTED, "processed", None),
        (C.SENDGRID, DELIVERED, "delivered", None),
        (C.SENDGRID, UNDELIVERED, "bounce", "550 5.1.1"),
        (C.SENDGRID, UNDELIVERED, "bounce", "552 5.2.2"),
        (C.SENDGRID, REJECTED, "dropped", "Bounced Address"),
        (C.SENDGRID, REJECTED, "dropped", "Unsubscribed Address"),
        (C.FCM, DELIVERED, "success", None),
        (C.FCM, FAILED, "UNREGISTERED", "messaging/registration-token-not-registered"),
        (C.FCM, FAILED, "INVALID_ARGUMENT", "messaging/invalid-argument"),
    ]
    + [(C.KANNEL_A, -1, "NACK/0x00000058/Throttling error", "0x00000058")]
)
THROTTLED = len(RECEIPTS) - 1
# How failures split over (undelivered, failed, expired, rejected) per provider.
FAILURE_MIX = {
    C.KANNEL_A: (0.45, 0.25, 0.20, 0.10),
    C.KANNEL_B: (0.45, 0.25, 0.20, 0.10),
    C.TWILIO: (0.60, 0.40, 0.0, 0.0),
    C.SENDGRID: (0.70, 0.0, 0.0, 0.30),
    C.FCM: (0.0, 1.0, 0.0, 0.0),
}
FAILURE_STATUSES = np.array([UNDELIVERED, FAILED, EXPIRED, REJECTED])
LATE_SHARE = 0.03
CLOCK_SKEW_PROVIDER = C.KANNEL_B
CLOCK_SKEW_SECONDS = 150
REPEAT_CLICK = 0.12
DWELL_SHARE = 0.85
CAMPAIGN_VISIBLE_SHARE = 0.15
CONVERSION_DELAY = {"pickup": (20 * HOUR, 0.5), "payment": (2 * HOUR, 1.2), "booking": (300, 0.8), "purchase": (1200, 1.0)}
CONVERSION_TYPES: tuple[str, ...] = tuple(dict.fromkeys(c.conversion_type for c in C.CAMPAIGNS))
ORGANIC_ACTIVE_OUT = 0.25


def _lognormal(rng: np.random.Generator, median: float, sigma: float, n: int) -> np.ndarray:
    """Lognormal draws with the given median."""
    return np.exp(rng.normal(np.log(median), sigma, n)) if sigma > 0 else np.full(n, float(median))


def _receipt_index() -> tuple[np.ndarray, np.ndarray]:
    """Per (provider, status): offset into RECEIPTS and number of vocabulary options."""
    offset = np.zeros((len(C.PROVIDERS), len(DELIVERY_STATUSES)), dtype=np.int64)
    count = np.zeros_like(offset)
    for i, (p, s, _, _) in enumerate(RECEIPTS):
        if s < 0:
            continue
        if count[p, s] == 0:
            offset[p, s] = i
        count[p, s] += 1
    return offset, count


def route(sends: dict[str, np.ndarray], pop: Population, rng: np.random.Generator) -> np.ndarray:
    """Provider per send: SMS by the country's gateway routing, e-mail via SendGrid, push via FCM."""
    channel = sends["channel"]
    provider = np.where(channel == C.EMAIL, C.SENDGRID, C.FCM).astype(np.int8)
    country = pop.country[sends["user"]]
    u = rng.random(channel.size)
    for code, spec in enumerate(C.COUNTRIES):
        rows = (channel == C.SMS) & (country == code)
        names = [C.PROVIDERS.index(p) for p, _ in spec.sms_routes]
        cum = np.cumsum([w for _, w in spec.sms_routes])
        cum = cum / cum[-1]
        pick = np.minimum(np.searchsorted(cum, u[rows], side="right"), len(names) - 1)
        provider[rows] = np.asarray(names)[pick]
    return provider


def deliver(sends: dict[str, np.ndarray], pop: Population, incidents: Incidents,
            rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per send: provider, final status, true handset time and the receipts' reported times and vocabulary."""
    n = sends["user"].size
    user, channel, t_send = sends["user"], sends["channel"], sends["t_send"]
    provider = route(sends, pop, rng)
    carrier_ok = np.array([k.delivery for k in C.CARRIERS])[pop.carrier[user]]
    p = np.select(
        [channel == C.SMS, channel == C.EMAIL],
        [carrier_ok * np.asarray(C.PROVIDER_DELIVERY)[provider],
         np.where(pop.segment[user] == 3, C.EMAIL_DELIVERY - 0.045, C.EMAIL_DELIVERY)],
        C.PUSH_DELIVERY,
    )
    outage = in_outage(incidents.outage, provider, t_send)
    p = np.where(outage, incidents.outage.delivery, p)
    delivered = rng.random(n) < p

    u = rng.random(n)
    fail = np.empty(n, dtype=np.int8)
    for prov, mix in FAILURE_MIX.items():
        rows = provider == prov
        cum = np.cumsum(mix) / np.sum(mix)
        fail[rows] = FAILURE_STATUSES[np.minimum(np.searchsorted(cum, u[rows], side="right"), 3)]
    fail = np.where(outage, np.where(u < 0.7, FAILED, EXPIRED), fail)
    status = np.where(delivered, DELIVERED, fail).astype(np.int8)

    has_accept = (channel != C.PUSH) & (status != REJECTED)
    t_accept = t_send + rng.integers(0, 3, n)
    latency = np.select(
        [channel == C.SMS, channel == C.EMAIL],
        [_lognormal(rng, 4.0, 0.9, n), _lognormal(rng, 3.0, 0.8, n)],
        _lognormal(rng, 1.0, 0.5, n),
    )
    base = np.where(has_accept, t_accept, t_send)
    t_true = base + np.maximum(1, latency).astype(np.int64)
    bounce = np.where(channel == C.SMS, _lognormal(rng, 90.0, 1.0, n), _lognormal(rng, 10.0, 0.8, n))
    t_final = np.select(
        [status == DELIVERED, status == UNDELIVERED, status == FAILED, status == EXPIRED],
        [t_true, base + np.maximum(1, bounce).astype(np.int64), base + rng.integers(1, 21, n),
         base + DAY + rng.integers(0, 2 * HOUR, n)],
        t_send + rng.integers(0, 4, n),
    )
    late = ((channel != C.PUSH) & ((status == DELIVERED) | (status == UNDELIVERED)) & (rng.random(n) < LATE_SHARE))
    delay = np.clip(_lognormal(rng, 3 * HOUR, 0.6, n), HOUR, 18 * HOUR).astype(np.int64)
    t_final = np.where(late, t_final + delay, t_final)
    skew = np.where(provider == CLOCK_SKEW_PROVIDER, CLOCK_SKEW_SECONDS, 0)

    offset, count = _receipt_index()
    v_accept = offset[provider, ACCEPTED]
    v_final = offset[provider, status] + (rng.random(n) * count[provider, status]).astype(np.int64)
    v_final = np.where(outage & (status == FAILED), THROTTLED, v_final)
    return {
        "provider": provider, "status": status, "delivered": delivered, "t_true": t_true,
        "has_accept": has_accept, "t_accept": t_accept + skew, "t_final": t_final + skew,
        "v_accept": v_accept, "v_final": v_final, "late": late, "outage": outage,
    }


def draw_replies(sends: dict[str, np.ndarray], dlv: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Inbound SMS: STOP/HELP/START/free text on any delivered SMS, quick replies to appointment requests."""
    rows = np.nonzero(dlv["delivered"] & (sends["channel"] == C.SMS))[0]
    campaign = sends["campaign"][rows]
    u = rng.random(rows.size)
    p_stop = np.where(campaign == C.PROMO, C.REPLY_STOP_PROMO, C.REPLY_STOP_OTHER)
    edges = np.stack([p_stop, p_stop + C.REPLY_HELP, p_stop + C.REPLY_HELP + C.REPLY_START,
                      p_stop + C.REPLY_HELP + C.REPLY_START + C.REPLY_FREE])
    general = np.select([u < edges[0], u < edges[1], u < edges[2], u < edges[3]], [C.STOP, C.HELP, C.START, C.FREE], -1)
    u2 = rng.random(rows.size)
    split = np.cumsum(C.REPLY_APPOINTMENT_SPLIT) * C.REPLY_APPOINTMENT
    quick = np.select([u2 < split[0], u2 < split[1], u2 < split[2]], [C.CHOICE_1, C.CHOICE_2, C.YES], -1)
    kind = np.where((general < 0) & (campaign == C.APPOINTMENT), quick, general)
    keep = kind >= 0
    rows, kind = rows[keep], kind[keep].astype(np.int8)
    sizes = np.array([len(t) for _, t in C.REPLY_KINDS])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    text = offsets[kind] + (rng.random(rows.size) * sizes[kind]).astype(np.int64)
    t = dlv["t_true"][rows] + np.maximum(10, _lognormal(rng, 240.0, 1.2, rows.size)).astype(np.int64)
    return {"send": rows, "kind": kind, "text": text, "t": t}


def opt_outs(sends: dict[str, np.ndarray], replies: dict[str, np.ndarray], n_users: int) -> np.ndarray:
    """Per user, the time of their first STOP reply (NEVER if none)."""
    t_stop = np.full(n_users, NEVER, dtype=np.int64)
    stop = replies["kind"] == C.STOP
    np.minimum.at(t_stop, sends["user"][replies["send"][stop]], replies["t"][stop])
    return t_stop


def draw_clicks(sends: dict[str, np.ndarray], dlv: dict[str, np.ndarray], pop: Population, window: Window,
                incidents: Incidents, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Human clicks (campaign, arm, segment, local hour vs active hours, link block) and preview-bot fetches."""
    rows = np.nonzero(dlv["delivered"])[0]
    user = sends["user"][rows]
    campaign = sends["campaign"][rows]
    channel = sends["channel"][rows]
    t_true = dlv["t_true"][rows]
    base = np.asarray([c.click for c in C.CAMPAIGNS])[campaign]
    base = np.where((campaign == C.CART) & (channel == C.EMAIL), C.CART_EMAIL_CLICK, base)
    hour = window.local_hour(pop.timezone[user], t_true)
    active = (hour >= pop.active_start[user]) & (hour < pop.active_end[user])
    p = (base * np.asarray(C.CHANNEL_CLICK)[channel] * np.asarray(C.SEGMENT_CLICK)[pop.segment[user]]
         * np.asarray(C.HOUR_CURVE)[hour] * np.where(active, C.ACTIVE_IN, C.ACTIVE_OUT)
         * VARIANT_CLICK[sends["variant"][rows]])
    clicked = rows[rng.random(rows.size) < p]
    first = dlv["t_true"][clicked] + np.maximum(5, _lognormal(rng, 480.0, 1.4, clicked.size)).astype(np.int64)
    repeats = rng.binomial(2, REPEAT_CLICK, clicked.size)
    again = np.repeat(clicked, repeats)
    t_again = np.repeat(first, repeats) + np.maximum(5, _lognormal(rng, 600.0, 1.2, again.size)).astype(np.int64)
    h_send = np.concatenate([clicked, again])
    h_t = np.concatenate([first, t_again])
    h_user = sends["user"][h_send]
    lost = blocked_clicks(incidents.link_block, pop.region[h_user], pop.carrier[h_user], h_t, rng)
    h_send, h_t = h_send[~lost], h_t[~lost]

    bot_rows = rows[rng.random(rows.size) < np.asarray(C.BOT_CLICK_RATE)[channel]]
    b_t = dlv["t_true"][bot_rows] + rng.integers(0, 7, bot_rows.size)

    n_h, n_b = h_send.size, bot_rows.size
    ua = np.empty(n_h, dtype=np.int64)
    h_channel = sends["channel"][h_send]
    u = rng.random(n_h)
    for ch, weights in enumerate(C.HUMAN_UA_WEIGHTS):
        sel = h_channel == ch
        cum = np.cumsum(weights) / np.sum(weights)
        ua[sel] = np.minimum(np.searchsorted(cum, u[sel], side="right"), len(weights) - 1)
    bot_ua = rng.choice(len(C.BOT_USER_AGENTS), size=n_b, p=np.asarray(C.BOT_WEIGHTS) / np.sum(C.BOT_WEIGHTS))

    h_country = pop.country[sends["user"][h_send]]
    first_octets = [np.asarray(c.ip_first_octets) for c in C.COUNTRIES]
    a = np.empty(n_h, dtype=np.int64)
    pick = rng.random(n_h)
    for code, octets in enumerate(first_octets):
        sel = h_country == code
        a[sel] = octets[(pick[sel] * octets.size).astype(np.int64)]
    prefixes = np.asarray(C.BOT_IP_PREFIXES)
    octets = rng.integers(0, 256, (n_h + n_b, 2))
    last = rng.integers(1, 255, n_h + n_b)
    return {
        "send": np.concatenate([h_send, bot_rows]),
        "t": np.concatenate([h_t, b_t]),
        "bot": np.concatenate([np.zeros(n_h, bool), np.ones(n_b, bool)]),
        "ua": np.concatenate([ua, len(C.HUMAN_USER_AGENTS) + bot_ua]),
        "ip_a": np.concatenate([a, prefixes[bot_ua, 0]]),
        "ip_b": np.concatenate([octets[:n_h, 0], prefixes[bot_ua, 1]]),
        "ip_c": octets[:, 1],
        "ip_d": last,
    }


def first_human_click(n_sends: int, clicks: dict[str, np.ndarray]) -> np.ndarray:
    """Per send, the time of its first human click (NEVER if none)."""
    first = np.full(n_sends, NEVER, dtype=np.int64)
    human = ~clicks["bot"]
    np.minimum.at(first, clicks["send"][human], clicks["t"][human])
    return first


def draw_conversions(sends: dict[str, np.ndarray], first_click: np.ndarray, pop: Population, window: Window,
                     organic_carts: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Conversions after a first human click (campaign rate x arm), plus organic purchases unrelated to messages."""
    rows = np.nonzero(first_click < NEVER)[0]
    campaign = sends["campaign"][rows]
    rate = np.asarray([c.conversion for c in C.CAMPAIGNS])[campaign] * VARIANT_CONVERSION[sends["variant"][rows]]
    conv = rows[rng.random(rows.size) < rate]
    campaign = sends["campaign"][conv]
    user = sends["user"][conv]
    ctype = np.asarray([CONVERSION_TYPES.index(c.conversion_type) for c in C.CAMPAIGNS])[campaign]
    delay = np.zeros(conv.size)
    value = np.zeros(conv.size)
    for k, name in enumerate(CONVERSION_TYPES):
        sel = ctype == k
        median, sigma = CONVERSION_DELAY[name]
        delay[sel] = _lognormal(rng, median, sigma, int(sel.sum()))
        mu, vs = C.CONVERSION_VALUE[name]
        value[sel] = (_lognormal(rng, mu, vs, int(sel.sum())) if mu > 0 else 0.0) * pop.money_scale[user[sel]]
    carried = ~np.isnan(sends["value"][conv])
    value = np.where(carried, sends["value"][conv], value)
    t = first_click[conv] + np.maximum(30, delay).astype(np.int64)
    visible = rng.random(conv.size) < CAMPAIGN_VISIBLE_SHARE

    seg_rate = C.ORGANIC_PURCHASE_PER_DAY * np.asarray(C.ORGANIC_SEGMENT)[pop.segment]
    counts = rng.poisson(seg_rate * window.days / (0.6 + 0.4 * ORGANIC_ACTIVE_OUT))
    o_user = np.repeat(np.arange(pop.n), counts)
    o_t = rng.integers(window.start, window.end, o_user.size)
    hour = window.local_hour(pop.timezone[o_user], o_t)
    active = (hour >= pop.active_start[o_user]) & (hour < pop.active_end[o_user])
    ok = active | (rng.random(o_user.size) < ORGANIC_ACTIVE_OUT)
    o_user, o_t = o_user[ok], o_t[ok]
    mu, vs = C.CONVERSION_VALUE["purchase"]
    o_value = _lognormal(rng, mu, vs, o_user.size) * pop.money_scale[o_user]

    purchase = CONVERSION_TYPES.index("purchase")
    n_org = o_user.size + organic_carts["user"].size
    return {
        "send": np.concatenate([conv, np.full(n_org, -1)]),
        "user": np.concatenate([user, o_user, organic_carts["user"]]),
        "t": np.concatenate([t, o_t, organic_carts["t"]]),
        "campaign": np.concatenate([np.where(visible, campaign, -1), np.full(n_org, -1)]).astype(np.int16),
        "type": np.concatenate([ctype, np.full(n_org, purchase)]).astype(np.int8),
        "value": np.round(np.concatenate([value, o_value, organic_carts["value"]]), 2),
    }


def draw_dwells(sends: dict[str, np.ndarray], clicks: dict[str, np.ndarray], converted: np.ndarray,
                rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Landing-page dwell beacons after most human clicks (lognormal seconds, longer when the visit converts)."""
    human = np.nonzero(~clicks["bot"])[0]
    keep = human[rng.random(human.size) < DWELL_SHARE]
    send = clicks["send"][keep]
    seconds = _lognormal(rng, 35.0, 1.0, keep.size) * np.where(converted[send], 2.5, 1.0)
    seconds = np.round(np.clip(seconds, 1.0, 3600.0), 1)
    t = clicks["t"][keep] + np.ceil(seconds).astype(np.int64)
    return {"send": send, "t": t, "seconds": seconds}
