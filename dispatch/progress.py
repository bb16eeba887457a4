"""How a run is going, from ops.sqlite alone (so it is live, before any ingest or build): the
outbox's states, the delivery reports matched to its messages, and what the receiver heard back
(human and machine clicks, replies, opt-outs of its users since the run was queued)."""

from __future__ import annotations

import sqlite3

FAILED_REPORTS = ("undelivered", "failed", "rejected", "expired")
STAGES = ("queued", "sent", "delivered", "failed", "cancelled", "clicked", "bot_clicks", "replied", "opted_out")


def runs(ops: sqlite3.Connection, limit: int = 50) -> list[dict]:
    """The newest runs first: run, campaign, when, audience, queued, held out."""
    rows = ops.execute("SELECT run_id, campaign_id, created_at, audience, queued, held_out FROM runs "
                       "ORDER BY created_at DESC LIMIT ?", [limit]).fetchall()
    return [dict(zip(("run_id", "campaign_id", "created_at", "audience", "queued", "held_out"), r)) for r in rows]


def progress(ops: sqlite3.Connection, run_id: str) -> dict[str, int]:
    """Messages of the run at each stage. ``queued`` is still waiting (queued, retry, claimed,
    sending); ``sent`` the gateway took; ``delivered`` has a delivered report; ``failed`` died in
    the outbox or got a failure report and no delivered one; ``clicked``/``replied`` count messages
    with a human click / a reply; ``bot_clicks`` machine fetches; ``opted_out`` the run's users who
    opted out (STOP) since it was queued."""
    one = ops.execute(
        f"""
        WITH m AS (SELECT message_id, user_id, channel, state FROM messages WHERE run_id = ?1),
        reports AS (
            SELECT r.message_id, max(r.status = 'delivered') AS delivered,
                   max(r.status IN ({", ".join(f"'{s}'" for s in FAILED_REPORTS)})) AS failed
            FROM receipts r JOIN m USING (message_id) GROUP BY r.message_id
        ),
        heard AS (
            SELECT x.message_id, max(x.kind = 'click') AS clicked, sum(x.kind = 'bot_click') AS bots,
                   max(x.kind = 'reply') AS replied
            FROM responses x JOIN m USING (message_id) GROUP BY x.message_id
        )
        SELECT
            count(*) FILTER (WHERE m.state IN ('queued', 'retry', 'claimed', 'sending', 'unknown')),
            count(*) FILTER (WHERE m.state = 'sent'),
            count(*) FILTER (WHERE coalesce(reports.delivered, 0) = 1),
            count(*) FILTER (WHERE m.state = 'dead' OR (coalesce(reports.failed, 0) = 1
                                                       AND coalesce(reports.delivered, 0) = 0)),
            count(*) FILTER (WHERE m.state = 'cancelled'),
            count(*) FILTER (WHERE coalesce(heard.clicked, 0) = 1),
            coalesce(sum(heard.bots), 0),
            count(*) FILTER (WHERE coalesce(heard.replied, 0) = 1),
            (SELECT count(DISTINCT s.user_id) FROM suppressions s
              WHERE s.reason = 'stop_reply' AND s.user_id IN (SELECT user_id FROM m)
                AND s.created_at >= (SELECT created_at FROM runs WHERE run_id = ?1))
        FROM m LEFT JOIN reports USING (message_id) LEFT JOIN heard USING (message_id)
        """, [run_id]).fetchone()
    return dict(zip(STAGES, (int(v or 0) for v in one)))
