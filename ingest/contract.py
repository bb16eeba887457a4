"""The event contract: one raw table per event type, its columns, types and allowed values.

This module is the single source of truth for the raw layer. Readers produce records whose keys
are the *input* names below (all values as text); the loader turns them into typed columns,
quarantines what does not fit, and lands the rest in ``raw.<type>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CHANNELS = ("sms", "email", "push", "rcs")
DELIVERY_STATUSES = ("accepted", "delivered", "undelivered", "failed", "expired", "rejected", "unknown")
ENCODINGS = ("gsm7", "ucs2")
EXPERIMENT_STATUSES = ("draft", "running", "stopped")
# transactional (a bill, a parcel, a security alert) or promotional (caps and quiet hours always apply)
MESSAGE_CATEGORIES = ("transactional", "promotional")

# A message's final status is the receipt with the highest precedence, never the latest arrival:
# a terminal failure is not overwritten by a later "accepted" from another segment or a retry.
STATUS_PRECEDENCE = {
    "unknown": 0,
    "accepted": 1,
    "delivered": 2,
    "expired": 3,
    "rejected": 4,
    "undelivered": 5,
    "failed": 6,
}


@dataclass(frozen=True)
class Field:
    """One column of a raw table.

    ``kind`` is one of text, timestamp, int, float, bool, enum, hash, json.
    ``source`` is the input name when it differs from the column (a ``hash`` column is filled
    from a raw phone number, e-mail or IP address that never reaches the warehouse).
    """

    name: str
    kind: str = "text"
    required: bool = False
    values: tuple[str, ...] = ()
    source: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    # free text a person may have typed an address into (a reply, a URL): redacted before landing
    free_text: bool = False

    @property
    def input_name(self) -> str:
        return self.source or self.name

    @property
    def sql_type(self) -> str:
        return {
            "text": "VARCHAR",
            "enum": "VARCHAR",
            "hash": "VARCHAR",
            "timestamp": "TIMESTAMPTZ",
            "int": "BIGINT",
            "float": "DOUBLE",
            "bool": "BOOLEAN",
            "json": "JSON",
        }[self.kind]


# Columns every raw table starts with. event_id is derived when the source has none.
COMMON: tuple[Field, ...] = (
    Field("event_id", required=True),
    Field("occurred_at", "timestamp", required=True),
    Field("message_id"),
    Field("user_id"),
    Field("campaign_id"),
    Field("channel", "enum", values=CHANNELS),
)
# Columns every raw table ends with; the loader fills them.
TRAILER: tuple[Field, ...] = (
    Field("source"),
    Field("extra", "json"),
    Field("batch_id"),
    Field("line_number", "int"),
    Field("ingested_at", "timestamp"),
)


@dataclass(frozen=True)
class EventType:
    name: str
    description: str
    fields: tuple[Field, ...]
    # Columns that must be present (besides event_id and occurred_at); a tuple inside means "one of".
    required_any: tuple[tuple[str, ...], ...] = ()
    # Columns whose values decide the derived event_id when the source gives none.
    natural_key: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[Field, ...]:
        return COMMON + self.fields + TRAILER

    @property
    def column_names(self) -> list[str]:
        return [f.name for f in self.columns]

    @property
    def input_fields(self) -> tuple[Field, ...]:
        """Fields a reader may provide (everything but the loader-filled trailer)."""
        return COMMON + self.fields

    @property
    def table(self) -> str:
        return f"raw.{self.name}"


EVENT_TYPES: dict[str, EventType] = {
    t.name: t
    for t in (
        EventType(
            "sends",
            "One row per message handed to a provider (or to the outbox for holdout checks).",
            (
                Field("template_id"),
                Field("variant"),
                Field("experiment_id"),
                Field("provider"),
                Field("provider_message_id"),
                Field("recipient_hash", "hash", source="recipient"),
                Field("encoding", "enum", values=ENCODINGS),
                Field("segments", "int", minimum=1, maximum=255),
                Field("priority", "int", minimum=0, maximum=9),
                Field("category", "enum", values=MESSAGE_CATEGORIES),
                Field("scheduled_for", "timestamp"),
            ),
            required_any=(("message_id",), ("user_id",), ("channel",)),
        ),
        EventType(
            "deliveries",
            "One row per delivery receipt (append-only; duplicates of the same receipt are dropped).",
            (
                Field("status", "enum", required=True, values=DELIVERY_STATUSES),
                Field("provider_status"),
                Field("error_code"),
                Field("provider"),
                Field("provider_message_id"),
                Field("carrier"),
                Field("country"),
                Field("region"),
            ),
            required_any=(("message_id", "provider_message_id"),),
            natural_key=("provider", "provider_message_id", "message_id", "status", "error_code", "occurred_at"),
        ),
        EventType(
            "clicks",
            "One row per fetch of a tracked link; bots are flagged, kept, and not counted as human.",
            (
                Field("link_id"),
                Field("url", free_text=True),
                Field("user_agent"),
                Field("ip_hash", "hash", source="ip"),
                Field("is_bot", "bool"),
                Field("bot_reason"),
                Field("provider_message_id"),   # an ESP's or gateway's id: matched to its send on loading
            ),
            required_any=(("message_id", "user_id", "provider_message_id"),),
        ),
        EventType(
            "dwells",
            "One row per landing-page visit with the seconds the visitor stayed.",
            (
                Field("page", free_text=True),
                Field("dwell_seconds", "float", required=True, minimum=0, maximum=86400),
            ),
            required_any=(("message_id", "user_id"),),
        ),
        EventType(
            "conversions",
            "One row per conversion (payment, booking, purchase); attribution happens in dbt.",
            (
                Field("conversion_type", required=True),
                Field("value", "float", minimum=0),
                Field("currency"),
            ),
            required_any=(("user_id",),),
        ),
        EventType(
            "replies",
            "One row per inbound message from a recipient (STOP, HELP, a quick-reply choice).",
            (
                Field("text", free_text=True),
                Field("keyword"),
                Field("in_reply_to"),
                Field("sender_hash", "hash", source="sender"),
            ),
            required_any=(("user_id", "sender"),),
        ),
        EventType(
            "assignments",
            "One row per unit assigned to an experiment arm (holdout units are assigned, never sent).",
            (
                Field("experiment_id", required=True),
                Field("variant", required=True),
                Field("unit_id", required=True),
            ),
            natural_key=("experiment_id", "unit_id", "variant"),
        ),
        EventType(
            "experiments",
            "One row per version of an experiment's definition (the newest version wins in dbt): arms and "
            "planned weights, control, goal/secondary/guardrail metrics, alpha, dates, status.",
            (
                Field("experiment_id", required=True),
                Field("name"),
                Field("hypothesis"),
                Field("owner"),
                Field("unit"),
                Field("variants", "json", required=True),
                Field("control", required=True),
                Field("goal_metrics", "json", required=True),
                Field("secondary_metrics", "json"),
                Field("guardrail_metrics", "json"),
                Field("metric_tests", "json"),   # {metric: {alternative, margin}}: one-sided / non-zero null
                Field("bayes_prior", "json"),    # {mean, sd, scale}: the Bayesian view's prior
                Field("alpha", "float", minimum=0.0001, maximum=0.5),
                Field("start_at", "timestamp"),
                Field("end_at", "timestamp"),
                Field("status", "enum", values=EXPERIMENT_STATUSES),
            ),
        ),
        EventType(
            "users",
            "One row per version of a user's profile (upserted: the latest version wins in dbt).",
            (
                Field("segment"),
                Field("region"),
                Field("country"),
                Field("carrier"),
                Field("timezone"),
                Field("consent_sms", "bool"),
                Field("consent_email", "bool"),
                Field("consent_push", "bool"),
                Field("active_hours"),
                Field("phone_hash", "hash", source="phone"),
                Field("email_hash", "hash", source="email"),
            ),
            required_any=(("user_id",),),
        ),
    )
}

# Which type a file holds, by a word in its name (first match wins, longest words first).
TYPE_ALIASES: dict[str, str] = {
    "send": "sends",
    "sent": "sends",
    "deliver": "deliveries",
    "dlr": "deliveries",
    "receipt": "deliveries",
    "status": "deliveries",
    "click": "clicks",
    "dwell": "dwells",
    "conversion": "conversions",
    "reply": "replies",
    "replies": "replies",
    "inbound": "replies",
    "assignment": "assignments",
    "user": "users",
    "experiment": "experiments",
    "definition": "experiments",
}


def event_type(name: str) -> EventType:
    """The contract for ``name`` (singular, plural and a few synonyms accepted)."""
    key = name.strip().lower()
    if key in EVENT_TYPES:
        return EVENT_TYPES[key]
    for alias, canonical in TYPE_ALIASES.items():
        if key == alias or key == alias + "s":
            return EVENT_TYPES[canonical]
    raise KeyError(f"unknown event type {name!r}; expected one of {', '.join(EVENT_TYPES)}")


@dataclass
class Record:
    """What a reader yields for one source record.

    ``values`` maps input names (see ``EventType.input_fields`` and ``Field.input_name``) to text;
    anything else a source carries goes to ``extra`` and is kept as JSON. ``reason`` is set when the
    reader could not make sense of the record at all: the loader then quarantines it as it is.
    """

    line: int
    raw: str
    event_type: str | None = None
    values: dict[str, str | None] = field(default_factory=dict)
    extra: dict[str, object] = field(default_factory=dict)
    reason: str | None = None
