"""Turn the simulated arrays into one polars frame per event type, in the contract's input shape.

Each builder keeps events inside the window (the extract stops at ``end``), orders rows by time
(deliveries by arrival), numbers event ids ``<prefix>-<seed>-<n>`` in file order, and writes
timestamps as ISO-8601 text (mostly UTC "Z", a small share in the user's local offset).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from ..contract import DELIVERY_STATUSES, ENCODINGS
from . import catalog as C
from .clock import Window, iso_series
from .engagement import CONVERSION_TYPES, RECEIPTS
from .experiments import EXPERIMENTS, VARIANT_EXPERIMENT, VARIANTS
from .mess import duplicate_callbacks, local_offsets
from .population import Population
from .textgen import hex_strings, ipv4, labels, sequential_ids

PREFIX = {
    "users": "usr", "assignments": "asg", "sends": "snd", "deliveries": "dlr",
    "clicks": "clk", "dwells": "dwl", "conversions": "cnv", "replies": "rpl",
}
COLUMNS = {
    "users": ("event_id", "occurred_at", "user_id", "segment", "region", "country", "carrier", "timezone",
              "consent_sms", "consent_email", "consent_push", "active_hours", "phone", "email"),
    "assignments": ("event_id", "occurred_at", "user_id", "experiment_id", "variant", "unit_id"),
    "sends": ("event_id", "occurred_at", "message_id", "user_id", "campaign_id", "channel", "template_id", "variant",
              "experiment_id", "provider", "provider_message_id", "recipient", "encoding", "segments", "priority",
              "category", "scheduled_for"),
    "deliveries": ("event_id", "occurred_at", "message_id", "user_id", "campaign_id", "channel", "status",
                   "provider_status", "error_code", "provider", "provider_message_id", "carrier", "country", "region"),
    "clicks": ("event_id", "occurred_at", "message_id", "user_id", "campaign_id", "channel", "link_id", "url",
               "user_agent", "ip"),
    "dwells": ("event_id", "occurred_at", "message_id", "user_id", "campaign_id", "channel", "page", "dwell_seconds"),
    "conversions": ("event_id", "occurred_at", "user_id", "campaign_id", "conversion_type", "value", "currency"),
    "replies": ("event_id", "occurred_at", "message_id", "user_id", "channel", "text", "keyword", "in_reply_to",
                "sender"),
}
CAMPAIGN_IDS = tuple(c.id for c in C.CAMPAIGNS)
EXPERIMENT_IDS = tuple(e.id for e in EXPERIMENTS)


@dataclass
class Context:
    """What every builder needs: seed, window, population, rng, and the sends' message numbering."""

    seed: int
    window: Window
    pop: Population
    rng: np.random.Generator
    sends: dict[str, np.ndarray]
    message_id: pl.Series  # per send (in simulation order)
    provider: np.ndarray  # per send
    local_rows: int = 0

    def stamp(self, user: np.ndarray, t: np.ndarray, name: str = "occurred_at") -> pl.Series:
        """ISO text for event times, a small share in the user's local offset (counted in ``local_rows``)."""
        offsets = local_offsets(self.pop.timezone[user], t, self.window, self.rng)
        self.local_rows += int((offsets != -1).sum())
        return iso_series(name, t, offsets)

    def message_cols(self, send: np.ndarray) -> dict[str, pl.Series]:
        """message_id, user_id, campaign_id, channel of the given sends."""
        return {
            "message_id": self.message_id.gather(send),
            "user_id": self.pop.user_id.gather(self.sends["user"][send]),
            "campaign_id": labels(CAMPAIGN_IDS, self.sends["campaign"][send]),
            "channel": labels(C.CHANNELS, self.sends["channel"][send]),
        }


def finish(kind: str, seed: int, t: np.ndarray, cols: dict[str, pl.Series]) -> pl.DataFrame:
    """Order rows by time (stable), number the event ids, and put the columns in contract order."""
    order = np.argsort(t, kind="stable")
    frame = pl.DataFrame(cols)[order]
    frame = frame.with_columns(sequential_ids(f"{PREFIX[kind]}-{seed}-", frame.height).alias("event_id"))
    return frame.select(COLUMNS[kind])


def message_numbers(seed: int, t_send: np.ndarray) -> tuple[pl.Series, np.ndarray]:
    """Message ids numbered in send-time order, per send in simulation order; and that order."""
    order = np.argsort(t_send, kind="stable")
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    return sequential_ids(f"msg-{seed}-", order.size).gather(rank), order


def provider_message_ids(provider: np.ndarray, rng: np.random.Generator) -> pl.Series:
    """Vendor-style ids: Kannel uuid / decimal, Twilio SM+hex, SendGrid and FCM message names."""
    n = provider.size
    parts = []
    for code in range(len(C.PROVIDERS)):
        rows = np.nonzero(provider == code)[0]
        if rows.size == 0:
            continue
        h = hex_strings(rows.size, 32, rng)
        frame = pl.DataFrame({"row": rows, "h": h, "d": rng.integers(10**11, 10**12, rows.size)})
        name = C.PROVIDERS[code]
        if name == "kannel-a":
            expr = pl.concat_str([pl.col("h").str.slice(i, k) for i, k in ((0, 8), (8, 4), (12, 4), (16, 4), (20, 12))],
                                 separator="-")
        elif name == "kannel-b":
            expr = pl.col("d").cast(pl.String)
        elif name == "twilio":
            expr = pl.concat_str(pl.lit("SM"), "h")
        elif name == "sendgrid":
            expr = pl.concat_str(pl.col("h").str.slice(0, 22), pl.lit(".filterdrecv-"), pl.col("d").cast(pl.String).str.slice(0, 4), pl.lit("-0"))
        else:
            expr = pl.concat_str(pl.lit("projects/nudgelab-app/messages/0:"), pl.col("d").cast(pl.String),
                                 pl.lit("%"), pl.col("h").str.slice(0, 16))
        parts.append(frame.select("row", expr.alias("pmid")))
    if not parts:
        return pl.Series("pmid", [], dtype=pl.String)
    out = pl.concat(parts).sort("row")
    assert out.height == n
    return out["pmid"]


def users_table(ctx: Context, stop_time: np.ndarray) -> pl.DataFrame:
    """Initial profiles (at sign-up) plus a consent_sms=false version after each STOP that lands in the window."""
    pop = ctx.pop
    stopped = np.nonzero(stop_time < ctx.window.end - 2)[0]
    user = np.concatenate([np.arange(pop.n), stopped])
    t = np.concatenate([pop.signup, stop_time[stopped] + 2])
    consent = pop.consent[user].copy()
    consent[pop.n:, C.SMS] = False
    combos = [f"{s:02d}-{e:02d}" for s in C.ACTIVE_START_HOURS for e in C.ACTIVE_END_HOURS]
    hours = (np.searchsorted(C.ACTIVE_START_HOURS, pop.active_start[user]) * len(C.ACTIVE_END_HOURS)
             + np.searchsorted(C.ACTIVE_END_HOURS, pop.active_end[user]))
    cols = {
        "occurred_at": ctx.stamp(user, t),
        "user_id": pop.user_id.gather(user),
        "segment": labels(C.SEGMENTS, pop.segment[user]),
        "region": labels([r.code for r in C.REGIONS], pop.region[user]),
        "country": labels([c.code for c in C.COUNTRIES], pop.country[user]),
        "carrier": labels([k.name for k in C.CARRIERS], pop.carrier[user]),
        "timezone": labels(C.TIMEZONES, pop.timezone[user]),
        "consent_sms": pl.Series(consent[:, C.SMS]),
        "consent_email": pl.Series(consent[:, C.EMAIL]),
        "consent_push": pl.Series(consent[:, C.PUSH]),
        "active_hours": labels(combos, hours),
        "phone": pop.phone.gather(user),
        "email": pop.email.gather(user),
    }
    return finish("users", ctx.seed, t, cols)


def assignments_table(ctx: Context, assign: dict[str, np.ndarray]) -> pl.DataFrame:
    """One row per (experiment, unit); unit = user."""
    user, t = assign["user"], assign["t"]
    keep = t < ctx.window.end
    user, t, variant, exp = user[keep], t[keep], assign["variant"][keep], assign["experiment"][keep]
    uid = ctx.pop.user_id.gather(user)
    cols = {
        "occurred_at": ctx.stamp(user, t),
        "user_id": uid,
        "experiment_id": labels(EXPERIMENT_IDS, exp),
        "variant": labels(VARIANTS, variant),
        "unit_id": uid,
    }
    return finish("assignments", ctx.seed, t, cols)


def sends_table(ctx: Context, pmid: pl.Series) -> pl.DataFrame:
    """One row per message handed to a provider."""
    s, pop, rng = ctx.sends, ctx.pop, ctx.rng
    n = s["user"].size
    idx = np.arange(n)
    campaign, channel, user = s["campaign"], s["channel"], s["user"]
    sms = channel == C.SMS
    ucs2 = sms & (rng.random(n) < np.asarray([c.ucs2_share for c in C.CAMPAIGNS])[campaign])
    lo = np.asarray([c.sms_segments[0] for c in C.CAMPAIGNS])[campaign]
    hi = np.asarray([c.sms_segments[1] for c in C.CAMPAIGNS])[campaign]
    segments = lo + (rng.random(n) * (hi - lo + 1)).astype(np.int64) + ucs2
    recipient = pl.DataFrame({"c": channel, "u": user}).select(
        pl.when(pl.col("c") == C.SMS).then(pop.phone.gather(user))
        .when(pl.col("c") == C.EMAIL).then(pop.email.gather(user))
        .otherwise(pop.device_token.gather(user)).alias("recipient")
    ).to_series()
    variant = s["variant"]
    exp = np.where(variant >= 0, VARIANT_EXPERIMENT[np.maximum(variant, 0)], -1)
    cols = {
        "occurred_at": ctx.stamp(user, s["t_send"]),
        **ctx.message_cols(idx),
        "template_id": labels(C.TEMPLATES, s["template"]),
        "variant": labels(VARIANTS, variant),
        "experiment_id": labels(EXPERIMENT_IDS, exp),
        "provider": labels(C.PROVIDERS, ctx.provider),
        "provider_message_id": pmid,
        "recipient": recipient,
        "encoding": labels(ENCODINGS, np.where(sms, ucs2.astype(np.int64), -1)),
        "segments": pl.DataFrame({"s": segments.astype(np.int64), "m": sms}).select(
            pl.when(pl.col("m")).then(pl.col("s")).alias("segments")).to_series(),
        "priority": pl.Series(np.asarray([c.priority for c in C.CAMPAIGNS])[campaign].astype(np.int64)),
        "category": labels([c.category for c in C.CAMPAIGNS], campaign),
        "scheduled_for": iso_series("scheduled_for", s["t_sched"]),
    }
    return finish("sends", ctx.seed, s["t_send"], cols)


def deliveries_table(ctx: Context, dlv: dict[str, np.ndarray], pmid: pl.Series) -> tuple[pl.DataFrame, int]:
    """Receipts: an accepted one (SMS and e-mail) then a final one per send; duplicated callbacks added."""
    acc = np.nonzero(dlv["has_accept"])[0]
    n = dlv["status"].size
    send = np.concatenate([acc, np.arange(n)])
    status = np.concatenate([np.zeros(acc.size, np.int64), dlv["status"]])
    vocab = np.concatenate([dlv["v_accept"][acc], dlv["v_final"]])
    t = np.concatenate([dlv["t_accept"][acc], dlv["t_final"]])
    keep = t < ctx.window.end
    send, status, vocab, t = send[keep], status[keep], vocab[keep], t[keep]
    user = ctx.sends["user"][send]
    sms = ctx.sends["channel"][send] == C.SMS
    pop = ctx.pop
    cols = {
        "occurred_at": ctx.stamp(user, t),
        **ctx.message_cols(send),
        "status": labels(DELIVERY_STATUSES, status),
        "provider_status": labels([r[2] for r in RECEIPTS], vocab),
        "error_code": labels([r[3] for r in RECEIPTS], vocab),
        "provider": labels(C.PROVIDERS, ctx.provider[send]),
        "provider_message_id": pmid.gather(send),
        "carrier": labels([k.name for k in C.CARRIERS], np.where(sms, pop.carrier[user], -1)),
        "country": labels([c.code for c in C.COUNTRIES], np.where(sms, pop.country[user], -1)),
        "region": labels([r.code for r in C.REGIONS], np.where(sms, pop.region[user], -1)),
    }
    frame = finish("deliveries", ctx.seed, t, cols)
    return duplicate_callbacks(frame, np.sort(t, kind="stable"), ctx.rng)


def clicks_table(ctx: Context, clicks: dict[str, np.ndarray]) -> pl.DataFrame:
    """Tracked-link fetches: humans and link-preview bots (no is_bot column: the user agent tells)."""
    keep = clicks["t"] < ctx.window.end
    c = {k: v[keep] for k, v in clicks.items()}
    send = c["send"]
    uniq, inverse = np.unique(send, return_inverse=True)
    link = hex_strings(uniq.size, 10, ctx.rng).gather(inverse)
    user = ctx.sends["user"][send]
    cols = {
        "occurred_at": ctx.stamp(user, c["t"]),
        **ctx.message_cols(send),
        "link_id": link,
        "url": link.to_frame("l").select(pl.concat_str(pl.lit(f"https://{C.LINK_DOMAIN}/"), "l")).to_series(),
        "user_agent": labels(C.HUMAN_USER_AGENTS + C.BOT_USER_AGENTS, c["ua"]),
        "ip": ipv4(c["ip_a"], c["ip_b"], c["ip_c"], c["ip_d"]),
    }
    return finish("clicks", ctx.seed, c["t"], cols)


def dwells_table(ctx: Context, dwells: dict[str, np.ndarray]) -> pl.DataFrame:
    """Landing-page beacons: page per campaign and seconds on page."""
    keep = dwells["t"] < ctx.window.end
    send, t, seconds = dwells["send"][keep], dwells["t"][keep], dwells["seconds"][keep]
    cols = {
        "occurred_at": ctx.stamp(ctx.sends["user"][send], t),
        **ctx.message_cols(send),
        "page": labels([c.page for c in C.CAMPAIGNS], ctx.sends["campaign"][send]),
        "dwell_seconds": pl.Series(seconds.astype(np.float64)),
    }
    return finish("dwells", ctx.seed, t, cols)


def conversions_table(ctx: Context, conv: dict[str, np.ndarray]) -> pl.DataFrame:
    """Conversions with type, value and the user's currency; campaign_id only when the source passed it on."""
    keep = conv["t"] < ctx.window.end
    c = {k: v[keep] for k, v in conv.items()}
    cols = {
        "occurred_at": ctx.stamp(c["user"], c["t"]),
        "user_id": ctx.pop.user_id.gather(c["user"]),
        "campaign_id": labels(CAMPAIGN_IDS, c["campaign"]),
        "conversion_type": labels(CONVERSION_TYPES, c["type"]),
        "value": pl.Series(c["value"].astype(np.float64)),
        "currency": labels([k.currency for k in C.COUNTRIES], ctx.pop.country[c["user"]]),
    }
    return finish("conversions", ctx.seed, c["t"], cols)


def replies_table(ctx: Context, replies: dict[str, np.ndarray]) -> pl.DataFrame:
    """Inbound SMS: text (some Chinese, some emoji), keyword, the message replied to, the sender's number."""
    keep = replies["t"] < ctx.window.end
    send, kind, text, t = (replies[k][keep] for k in ("send", "kind", "text", "t"))
    user = ctx.sends["user"][send]
    texts = [x for _, group in C.REPLY_KINDS for x in group]
    cols = {
        "occurred_at": ctx.stamp(user, t),
        "message_id": pl.Series([None] * send.size, dtype=pl.String),
        "user_id": ctx.pop.user_id.gather(user),
        "channel": labels(C.CHANNELS, np.full(send.size, C.SMS)),
        "text": labels(texts, text),
        "keyword": labels([k for k, _ in C.REPLY_KINDS], kind),
        "in_reply_to": ctx.message_id.gather(send),
        "sender": ctx.pop.phone.gather(user),
    }
    return finish("replies", ctx.seed, t, cols)
