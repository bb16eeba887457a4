"""Campaign logic: who gets which message when, per campaign, as planned sends (vectorised per day).

Sends respect consent (the first consented channel in the campaign's preference order), follow
each campaign's timing rule in the user's local time, and carry the user's experiment arm. The
cart-abandonment e-mail is planned separately, after clicks are known, because it only goes out
when the SMS got no human click within 24 hours.
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np

from . import catalog as C
from .clock import DAY, HOUR, Window
from .experiments import CAMPAIGN_EXPERIMENT, EXPERIMENTS, VARIANT_OFFSET
from .population import Population

SEND_FIELDS = ("user", "campaign", "channel", "template", "variant", "t_sched", "t_send", "value")

PARCEL_RATE = 0.03
PARCEL_SEGMENT = (1.3, 1.0, 2.0, 0.3)
PARCEL_WEEKDAY = (1.2, 1.15, 1.1, 1.1, 1.0, 0.6, 0.35)
APPOINTMENT_RATE = 0.008
APPOINTMENT_SEGMENT = (1.0, 1.0, 1.5, 0.4)
APPOINTMENT_WEEKDAY = (1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.1)
CART_RATE = (0.02, 0.012, 0.02, 0.004)
CART_WEEKDAY = (1.0, 1.0, 1.0, 1.0, 1.1, 1.3, 1.4)
CART_SMS_DELAY = 30 * 60
CART_EMAIL_DELAY = DAY
PROMO_WEEKDAYS = {1: 11 * HOUR, 3: 11 * HOUR, 5: 18 * HOUR}  # Tue, Thu 11:00; Sat 18:00 local
PROMO_AUDIENCE = (0.4, 0.4, 0.55, 0.2)
PROMO_SPREAD = 40 * 60
BILL_HOUR = 10 * HOUR
BILL_DAYS_BEFORE = 3


def take(table: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    """The rows (mask or index) of a table of parallel arrays."""
    return {k: v[rows] for k, v in table.items()}


def concat(tables: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Tables of parallel arrays stacked (same keys)."""
    return {k: np.concatenate([t[k] for t in tables]) for k in tables[0]}


class Planner:
    """Plans the sends of every campaign for one population and window."""

    def __init__(self, pop: Population, window: Window, arms: np.ndarray, rng: np.random.Generator) -> None:
        """Keep the inputs and precompute the local days (-1..days) and their weekdays."""
        self.pop, self.window, self.arms, self.rng = pop, window, arms, rng
        self.day0 = window.start - window.start % DAY
        self.local_days = np.arange(-1, window.days + 1)
        self.weekday = (window.start_weekday + self.local_days) % 7

    def plan(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """All planned sends (holdout rows included, to be suppressed after assignment) and the organic
        purchases that follow cart abandonment regardless of messaging."""
        carts, organic = self.cart_abandonment()
        parts = [self.parcel_shipped(), self.bill_due(), self.appointment_confirmation(), carts, self.promotions()]
        return concat(parts), organic

    # -- helpers ---------------------------------------------------------------------------------
    def daily_draw(self, rate: np.ndarray, day_mult: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(user, local day) pairs where a per-user-day Bernoulli(rate[user] * day_mult[day]) fires."""
        users, days = [], []
        for k, d in enumerate(self.local_days):
            hit = np.nonzero(self.rng.random(self.pop.n) < rate * day_mult[k])[0]
            users.append(hit)
            days.append(np.full(hit.size, d, dtype=np.int64))
        return np.concatenate(users), np.concatenate(days)

    def to_utc(self, users: np.ndarray, day: np.ndarray, tod: np.ndarray) -> np.ndarray:
        """UTC instants of local wall times (local day index, seconds after local midnight)."""
        return self.window.local_to_utc(self.pop.timezone[users], self.day0 + day * DAY + tod)

    def channel(self, users: np.ndarray, order: tuple[int, ...]) -> np.ndarray:
        """First consented channel in ``order`` per user, -1 when none is consented."""
        out = np.full(users.size, -1, dtype=np.int8)
        for ch in reversed(order):
            out = np.where(self.pop.consent[users, ch], ch, out)
        return out

    def pick_template(self, names: tuple[str, ...], n: int, weights: tuple[float, ...] | None = None) -> np.ndarray:
        """Template codes drawn from ``names``."""
        codes = np.array([C.TEMPLATE_INDEX[t] for t in names], dtype=np.int16)
        p = None if weights is None else np.asarray(weights) / np.sum(weights)
        return codes[self.rng.choice(len(names), size=n, p=p)]

    def variant_of(self, campaign: int, users: np.ndarray) -> np.ndarray:
        """The users' arm in the campaign's experiment (-1 when the campaign has none)."""
        exp = CAMPAIGN_EXPERIMENT[campaign]
        return self.arms[exp, users] if exp >= 0 else np.full(users.size, -1, dtype=np.int16)

    def queue_delay(self, n: int) -> np.ndarray:
        """Seconds between scheduled time and hand-over to the provider for a transactional send."""
        return 1 + self.rng.exponential(4.0, n).astype(np.int64)

    def rows(self, campaign: int, users: np.ndarray, channel: np.ndarray, template: np.ndarray,
             t_sched: np.ndarray, t_send: np.ndarray, value: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Planned sends, keeping only consented ones scheduled inside the window."""
        keep = (channel >= 0) & (t_sched >= self.window.start) & (t_send < self.window.end)
        table = {
            "user": users.astype(np.int64),
            "campaign": np.full(users.size, campaign, dtype=np.int8),
            "channel": channel.astype(np.int8),
            "template": template.astype(np.int16),
            "variant": self.variant_of(campaign, users).astype(np.int16),
            "t_sched": t_sched.astype(np.int64),
            "t_send": t_send.astype(np.int64),
            "value": np.full(users.size, np.nan) if value is None else value.astype(float),
        }
        return take(table, keep)

    def arm_templates(self, campaign: int, users: np.ndarray, by_arm: dict[str, tuple[str, ...]]) -> np.ndarray:
        """Template codes chosen within the templates of each user's arm."""
        variant = self.variant_of(campaign, users)
        exp = CAMPAIGN_EXPERIMENT[campaign]
        out = np.empty(users.size, dtype=np.int16)
        for arm, names in by_arm.items():
            rows = variant == VARIANT_OFFSET[exp] + EXPERIMENTS[exp].arms.index(arm)
            out[rows] = self.pick_template(names, int(rows.sum()))
        return out

    # -- campaigns --------------------------------------------------------------------------------
    def parcel_shipped(self) -> dict[str, np.ndarray]:
        """Shipping notices: per user-day chance by segment and weekday, 08:00-20:00 local."""
        seg = np.asarray(PARCEL_SEGMENT)[self.pop.segment]
        users, day = self.daily_draw(PARCEL_RATE * seg, np.asarray(PARCEL_WEEKDAY)[self.weekday])
        tod = self.rng.integers(8 * HOUR, 20 * HOUR, users.size)
        t_sched = self.to_utc(users, day, tod)
        channel = self.channel(users, (C.SMS, C.PUSH, C.EMAIL))
        template = self.pick_template(C.CAMPAIGNS[C.PARCEL].templates, users.size, (0.45, 0.35, 0.2))
        return self.rows(C.PARCEL, users, channel, template, t_sched, t_sched + self.queue_delay(users.size))

    def bill_due(self) -> dict[str, np.ndarray]:
        """Monthly bill reminders three days before each bill holder's due day, 10:00 local."""
        holders = np.nonzero(self.pop.has_bill)[0]
        first = datetime.fromtimestamp(self.day0, timezone.utc).replace(day=1)
        users, days = [], []
        year, month = first.year, first.month
        while True:
            start = datetime(year, month, 1, tzinfo=timezone.utc)
            offset = (int(start.timestamp()) - self.day0) // DAY
            if offset > self.window.days + BILL_DAYS_BEFORE + 1:
                break
            d = offset + self.pop.bill_day[holders].astype(np.int64) - 1 - BILL_DAYS_BEFORE
            ok = (d >= -1) & (d <= self.window.days)
            users.append(holders[ok])
            days.append(d[ok])
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        u, d = np.concatenate(users), np.concatenate(days)
        t_sched = self.to_utc(u, d, np.full(u.size, BILL_HOUR))
        channel = self.channel(u, (C.SMS, C.EMAIL, C.PUSH))
        template = self.arm_templates(C.BILL, u, {
            "generic": ("bill_due_generic_v1", "bill_due_generic_v2"),
            "personalised": ("bill_due_personalised_v1", "bill_due_personalised_v2"),
        })
        t_send = t_sched + self.rng.integers(0, 600, u.size)
        return self.rows(C.BILL, u, channel, template, t_sched, t_send, self.pop.bill_amount[u])

    def appointment_confirmation(self) -> dict[str, np.ndarray]:
        """Confirmation requests 24 h before an appointment (weekday slots 08:00-17:45 local)."""
        seg = np.asarray(APPOINTMENT_SEGMENT)[self.pop.segment]
        appointment_weekday = (self.weekday + 1) % 7
        users, day = self.daily_draw(APPOINTMENT_RATE * seg, np.asarray(APPOINTMENT_WEEKDAY)[appointment_weekday])
        tod = 8 * HOUR + 900 * self.rng.integers(0, 40, users.size)
        t_sched = self.to_utc(users, day, tod)
        channel = self.channel(users, (C.SMS, C.EMAIL))
        template = self.pick_template(C.CAMPAIGNS[C.APPOINTMENT].templates, users.size)
        return self.rows(C.APPOINTMENT, users, channel, template, t_sched, t_sched + self.queue_delay(users.size))

    def cart_abandonment(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Cart SMS 30 min after an abandonment (mostly in active hours); organic purchases after some."""
        pop = self.pop
        users, day = self.daily_draw(np.asarray(CART_RATE)[pop.segment], np.asarray(CART_WEEKDAY)[self.weekday])
        n = users.size
        lo = pop.active_start[users].astype(np.int64) * HOUR
        hi = pop.active_end[users].astype(np.int64) * HOUR
        in_active = self.rng.random(n) < 0.85
        tod = np.where(in_active, lo + (self.rng.random(n) * (hi - lo)).astype(np.int64), self.rng.integers(0, DAY, n))
        t_abandon = self.to_utc(users, day, tod)
        mu, sigma = C.CONVERSION_VALUE["purchase"]
        cart_value = np.round(np.exp(self.rng.normal(np.log(mu), sigma, n)) * pop.money_scale[users], 2)
        t_sched = t_abandon + CART_SMS_DELAY
        channel = np.where(pop.consent[users, C.SMS], C.SMS, -1).astype(np.int8)
        template = self.pick_template(("cart_sms_v1", "cart_sms_v2"), n)
        sends = self.rows(C.CART, users, channel, template, t_sched, t_sched + self.queue_delay(n), cart_value)
        buys = self.rng.random(n) < C.CART_ORGANIC_PURCHASE
        t_buy = t_abandon + np.exp(self.rng.normal(np.log(5 * HOUR), 1.0, n)).astype(np.int64)
        ok = buys & (t_buy >= self.window.start) & (t_buy < self.window.end)
        organic = {"user": users[ok].astype(np.int64), "t": t_buy[ok], "value": cart_value[ok]}
        return sends, organic

    def promotions(self) -> dict[str, np.ndarray]:
        """Promotion blasts on Tue/Thu 11:00 and Sat 18:00 local to a per-blast audience, spread over 40 min."""
        pop = self.pop
        audience = np.asarray(PROMO_AUDIENCE)[pop.segment]
        parts = []
        for k, d in enumerate(self.local_days):
            wd = int(self.weekday[k])
            if wd not in PROMO_WEEKDAYS:
                continue
            users = np.nonzero(self.rng.random(pop.n) < audience)[0]
            t_sched = self.to_utc(users, np.full(users.size, d), np.full(users.size, PROMO_WEEKDAYS[wd]))
            channel = self.channel(users, (C.SMS, C.EMAIL, C.PUSH))
            template = self.arm_templates(C.PROMO, users, {
                "limited_time_offer": ("promo_limited_time_offer_v1", "promo_limited_time_offer_v2"),
                "exclusive_privilege": ("promo_exclusive_privilege_v1", "promo_exclusive_privilege_v2"),
            })
            t_send = t_sched + self.rng.integers(0, PROMO_SPREAD, users.size)
            parts.append(self.rows(C.PROMO, users, channel, template, t_sched, t_send))
        if not parts:
            return self.rows(C.PROMO, *(np.empty(0, np.int64) for _ in range(5)), np.empty(0, np.int64))
        return concat(parts)

    def cart_followups(self, sends: dict[str, np.ndarray], first_click: np.ndarray) -> dict[str, np.ndarray]:
        """Cart e-mails 24 h after each cart SMS that got no human click by then (e-mail consent needed)."""
        sms = np.nonzero((sends["campaign"] == C.CART) & (sends["channel"] == C.SMS))[0]
        t_sched = sends["t_sched"][sms] + CART_EMAIL_DELAY
        unclicked = first_click[sms] >= t_sched
        rows = sms[unclicked]
        users = sends["user"][rows]
        t_sched = t_sched[unclicked]
        channel = np.where(self.pop.consent[users, C.EMAIL], C.EMAIL, -1).astype(np.int8)
        template = self.pick_template(("cart_email_v1", "cart_email_v2"), rows.size)
        out = self.rows(C.CART, users, channel, template, t_sched, t_sched + self.queue_delay(rows.size),
                        sends["value"][rows])
        return out
