"""One send as the operator does it, from the CLI (``nudgelab dispatch send``) or the app's
Campaigns page: ``plan_send`` plans a campaign against ops.sqlite and the published snapshot
(nothing is written: what the operator confirms), ``queue`` writes that plan to the outbox and the
spool in one go. Every failure an operator can fix is a ``SendError`` with one line and details."""

from __future__ import annotations

import os
from datetime import datetime, timezone

from dispatch.audience import AudienceError
from dispatch.campaign import Campaign
from dispatch.ops import OpsError, connect
from dispatch.planner import Context, Plan, PlanError, StalePlan, plan_campaign, queue_plan
from dispatch.receiver import DEFAULT_URL
from dispatch.providers.registry import ProviderConfigError, channel_providers, configured
from dispatch.spooling import flush
from dispatch.timing import TimingError
from warehouse.connections import connect_published



class SendError(RuntimeError):
    def __init__(self, message: str, details: list[str] | None = None, status: int = 2) -> None:
        super().__init__(message)
        self.details, self.status = details or [], status


def receiver_url(given: str | None = None) -> str:
    """The receiver's public base for tracked links and delivery reports."""
    return given or os.environ.get("NUDGELAB_RECEIVER_URL") or DEFAULT_URL


def providers_for(settings, campaign: Campaign) -> dict[str, str]:
    """channel -> provider name for this campaign, from the installation's configuration."""
    try:
        return channel_providers(configured(settings.home), campaign.providers)
    except ProviderConfigError as exc:
        raise SendError(str(exc)) from exc


def open_ops(settings):
    """ops.sqlite of this installation (created on first use), or a SendError saying why not."""
    settings.ensure()
    try:
        return connect(settings.ops_path)
    except OpsError as exc:
        raise SendError(str(exc)) from exc


def plan_send(settings, campaign: Campaign, receiver: str | None = None, now: datetime | None = None,
              snapshot=None, providers: dict[str, str] | None = None) -> Plan:
    """The plan for sending ``campaign`` now: audience, exclusions by reason, previews, cost. It reads
    the published snapshot (``snapshot``: an open connection to it, else one opened here);
    ``providers``: the campaign's channel → provider map when the caller already resolved it."""
    providers = providers if providers is not None else providers_for(settings, campaign)
    ops = open_ops(settings)
    try:
        own = snapshot is None
        if own:
            try:
                snapshot = connect_published(settings)
            except RuntimeError as exc:
                raise SendError(str(exc)) from exc
        try:
            ctx = Context(ops, snapshot, settings.hash_key(), receiver_url(receiver), providers,
                          now or datetime.now(timezone.utc))
            return plan_campaign(campaign, ctx)
        except (PlanError, AudienceError, TimingError) as exc:
            raise SendError(str(exc), getattr(exc, "details", [])[1:]) from exc
        finally:
            if own:
                snapshot.close()
    finally:
        ops.close()


def queue(settings, plan: Plan) -> None:
    """Queue a plan the operator confirmed (once: a second call for the same plan is a StalePlan),
    and spool its experiment definition and assignments."""
    if not plan.queued:
        raise SendError("nothing to queue: every user of the audience was excluded or held out", status=3)
    ops = open_ops(settings)
    try:
        try:
            queue_plan(plan, ops)
        except StalePlan as exc:
            raise SendError(str(exc), status=4) from exc
        flush(ops, settings.spool_dir, settings.hash_key())
    finally:
        ops.close()
