"""Who a campaign is for: ``marts.dim_users`` in the published snapshot, filtered, sized before
anything is queued.

Filters (all optional, combined with AND): segments, regions, countries, carriers; activity (a
human click within N days); at least N human clicks in all; last contact at least N hours ago
(the warehouse's last send on any channel; the planner adds what ops.sqlite sent since); a users
file or an id list (only those users, with the file's other columns as their template
variables); a limit (a deterministic sample, the same users for the same campaign and filters).
Users named by a file or list but absent from ``dim_users`` are excluded as ``unknown_user``: with
no profile, their consent is unknown.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl

from dispatch import users_file
from dispatch.campaign import Audience
from warehouse.sql import frame as query_frame

USER_COLUMNS = ("user_id", "segment", "region", "country", "carrier", "timezone", "consent_sms", "consent_email",
                "consent_push", "is_opted_out", "last_sms_at", "last_email_at", "last_push_at",
                "last_human_click_at", "messages_7d", "human_clicks", "best_send_hour")


class AudienceError(ValueError):
    """An audience that cannot be read (one line)."""


@dataclass
class AudienceResult:
    frame: pl.DataFrame                 # one row per user (per user x dedupe value with a dedupe key)
    matched: int                        # users matching the filters, before policies
    excluded: Counter = field(default_factory=Counter)
    variables: tuple[str, ...] = ()     # per-user variables from the users file


def read_users_file(path: Path) -> pl.DataFrame:
    """A users file (CSV, JSON lines, Parquet) as text columns, with a ``user_id`` column."""
    try:
        data = users_file.read(path)
    except users_file.UsersFileError as exc:
        raise AudienceError(str(exc)) from exc
    data = data.with_columns(pl.all().cast(pl.String))
    return data.with_columns(pl.col("user_id").str.strip_chars()).filter(pl.col("user_id").is_not_null() & (pl.col("user_id") != ""))


def _where(audience: Audience, now: datetime) -> tuple[str, list]:
    clauses, params = [], []
    for column, values in (("segment", audience.segments), ("region", audience.regions),
                           ("country", audience.countries), ("carrier", audience.carriers)):
        if values:
            clauses.append(f"{column} IN ({', '.join('?' for _ in values)})")
            params.extend(values)
    if audience.active_within_days:
        clauses.append("last_human_click_at >= ?")
        params.append(now - timedelta(days=audience.active_within_days))
    if audience.min_human_clicks:
        clauses.append("human_clicks >= ?")
        params.append(audience.min_human_clicks)
    if audience.not_contacted_within_hours:
        clauses.append("coalesce(greatest(last_sms_at, last_email_at, last_push_at), TIMESTAMPTZ '1970-01-01') < ?")
        params.append(now - timedelta(hours=audience.not_contacted_within_hours))
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _sample_order(campaign_id: str, users: pl.Series) -> pl.Series:
    return pl.Series([hashlib.sha256(f"{campaign_id}\x00{u}".encode()).digest()[:8] for u in users], dtype=pl.Binary)


def select_audience(conn: duckdb.DuckDBPyConnection, campaign_id: str, audience: Audience, now: datetime,
                    dedupe_key: str | None = None) -> AudienceResult:
    """The users of a campaign from the snapshot behind ``conn`` (see the module docstring)."""
    where, params = _where(audience, now)
    try:
        users = query_frame(conn, f"SELECT {', '.join(USER_COLUMNS)} FROM marts.dim_users{where}", params)
    except duckdb.Error as exc:
        raise AudienceError(f"the published snapshot has no usable marts.dim_users ({str(exc).splitlines()[0]}): "
                            "run `nudgelab build`") from exc
    excluded: Counter = Counter()
    variables: tuple[str, ...] = ()
    listed: pl.DataFrame | None = None
    if audience.users_file:
        listed = read_users_file(Path(audience.users_file))
        if dedupe_key and dedupe_key not in listed.columns:
            raise AudienceError(f"{audience.users_file}: no {dedupe_key} column for the campaign's dedupe_key")
    if audience.user_ids:
        ids = pl.DataFrame({"user_id": list(audience.user_ids)})
        listed = ids if listed is None else listed.join(ids, on="user_id", how="semi")
    if listed is not None:
        keys = ["user_id", dedupe_key] if dedupe_key else ["user_id"]
        unique = listed.unique(subset=keys, keep="last", maintain_order=True)
        if unique.height < listed.height:
            excluded["duplicate_in_file"] += listed.height - unique.height
        known = unique.join(users.select("user_id"), on="user_id", how="semi")
        # users in the list who exist in the warehouse but fail the filters are not "unknown"
        everyone = query_frame(conn, "SELECT user_id FROM marts.dim_users WHERE user_id IN (SELECT unnest(?))",
                               [unique["user_id"].unique().to_list()])
        unknown = unique.join(everyone, on="user_id", how="anti").height
        if unknown:
            excluded["unknown_user"] += unknown
        overlap = [c for c in known.columns if c in USER_COLUMNS and c != "user_id"]  # the profile wins
        variables = tuple(c for c in known.columns if c != "user_id" and c not in overlap)
        users = users.join(known.drop(overlap), on="user_id", how="inner")
    if audience.limit and users.height > audience.limit:
        users = (users.with_columns(_sample_order(campaign_id, users["user_id"]).alias("_order"))
                 .sort("_order").head(audience.limit).drop("_order"))
    return AudienceResult(users, users.height, excluded, variables)
