"""Campaigns — compose a send, see exactly what it would do, confirm it, and follow it live.

Compose (channels, templates with a tracked link, audience filter, an optional A/B experiment
with a holdout, schedule) or paste a campaign file; "Preview" plans it through dispatch's planner
(nothing is written): the audience, who the policies exclude and why, the split, the SMS
encodings, segments and cost, and the messages as sample users would get them. "Queue" writes that
plan to the outbox (once); the worker (``nudgelab dispatch run``) sends it. "Follow a run" reads
ops.sqlite every few seconds: queued, sent, delivered, failed, clicked, replied, opted out. The
page never writes the warehouse: sends, reports and replies reach it through the spool.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import altair as alt
import polars as pl
import streamlit as st

from app_pages import campaign_form, data, widgets
from dispatch import progress
from dispatch.campaign import CampaignError, campaign_from_dict, campaign_from_text
from dispatch.ops import OpsError, connect
from dispatch.sending import SendError, plan_send, queue, receiver_url

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "campaigns"
STAGE_LABELS = {"queued": "waiting to send", "sent": "sent", "delivered": "delivered", "failed": "failed",
                "cancelled": "cancelled", "clicked": "clicked (people)", "bot_clicks": "machine fetches",
                "replied": "replied", "opted_out": "opted out"}

st.title("Campaigns")
st.caption("Compose a send, preview exactly what it would do, queue it, and follow it live. The sidebar filters "
           "do not apply here.")
settings = data.settings()
options = data.query(data.AUDIENCE_OPTIONS).row(0, named=True)


def _form_values() -> campaign_form.Form:
    """The compose form (its widgets keep their values across reruns)."""
    left, right = st.columns(2)
    with left:
        campaign_id = st.text_input("Campaign id", value=f"reminder_{date.today():%Y%m%d}", key="cmp_id",
                                    help="Letters, digits, _ - . — one id per campaign; every send of it is a run.")
        name = st.text_input("Name", key="cmp_name", placeholder="December bill reminder")
        category = st.radio("Category", ("transactional", "promotional"), horizontal=True, key="cmp_category",
                            help="Promotional sends always obey frequency caps and quiet hours.")
        channels = st.multiselect("Channels, in order of preference", campaign_form.CHANNELS, default=["sms"],
                                  key="cmp_channels", help="A user without consent or an address on the first "
                                  "channel gets the next one. Push and RCS cards: use a campaign file.")
        link_url = st.text_input("Tracked link (the deep link)", key="cmp_link", placeholder="https://example.com/pay",
                                 help="Put {{ link('link') }} in a message: each recipient gets a short tracked link "
                                 "to it; clicks and dwell time come back through the receiver.")
    with right:
        segments = st.multiselect("Segments", options["segments"] or [], key="cmp_segments")
        regions = st.multiselect("Regions", options["regions"] or [], key="cmp_regions")
        carriers = st.multiselect("Carriers", options["carriers"] or [], key="cmp_carriers")
        limit = st.number_input("At most this many users (0: everyone who matches)", min_value=0, value=0, step=100,
                                key="cmp_limit")
        quiet = st.number_input("Skip users contacted within the last hours (0: no such rule)", min_value=0.0,
                                value=0.0, step=12.0, key="cmp_recent")
    st.subheader("Message")
    sms = subject = email = ""
    if "sms" in channels:
        sms = st.text_area("SMS text", key="cmp_sms", height=90,
                           placeholder="Your parcel {{ user_id }} ships today: {{ link('link') }} Reply STOP to opt out")
    if "email" in channels:
        subject = st.text_input("E-mail subject", key="cmp_subject")
        email = st.text_area("E-mail text", key="cmp_email", height=90)
    experiment = st.toggle("Test a second wording (A/B experiment)", key="cmp_experiment")
    sms_b = subject_b = email_b = hypothesis = experiment_id = ""
    share_b, holdout, goal = 0.5, 0.0, campaign_form.METRICS[0]
    if experiment:
        if "sms" in channels:
            sms_b = st.text_area("SMS text, wording B", key="cmp_sms_b", height=90)
        if "email" in channels:
            subject_b = st.text_input("E-mail subject, wording B", key="cmp_subject_b")
            email_b = st.text_area("E-mail text, wording B", key="cmp_email_b", height=90)
        a, b, c = st.columns(3)
        share_b = a.slider("Share of wording B (%)", 5, 95, 50, key="cmp_share_b") / 100
        holdout = b.slider("Holdout: assigned, never sent (%)", 0, 50, 0, key="cmp_holdout") / 100
        goal = c.selectbox("Goal metric", campaign_form.METRICS, key="cmp_goal")
        experiment_id = st.text_input("Experiment id", key="cmp_experiment_id", placeholder=f"exp_{campaign_id}")
        hypothesis = st.text_input("Hypothesis", key="cmp_hypothesis")
    st.subheader("When")
    schedule = st.radio("Send", campaign_form.SCHEDULES, horizontal=True, key="cmp_schedule",
                        format_func={"now": "now", "best_hour": "at each user's best hour",
                                     "at": "at a time (UTC)"}.get)
    at_date = at_time = None
    if schedule == "at":
        a, b = st.columns(2)
        tomorrow = datetime.now(timezone.utc) + timedelta(days=1)
        at_date = a.date_input("Day", value=tomorrow.date(), key="cmp_at_date")
        at_time = b.time_input("Time (UTC)", value=time(10, 0), key="cmp_at_time")
    return campaign_form.Form(
        campaign_id=campaign_id, name=name, category=category, channels=tuple(channels), sms=sms, subject=subject,
        email=email, link_url=link_url, segments=tuple(segments), regions=tuple(regions), carriers=tuple(carriers),
        limit=int(limit), not_contacted_within_hours=float(quiet), experiment=experiment,
        experiment_id=experiment_id, sms_b=sms_b, subject_b=subject_b, email_b=email_b, share_b=share_b,
        holdout=holdout, goal_metric=goal, hypothesis=hypothesis, schedule=schedule, at_date=at_date, at_time=at_time)


def _campaign_from_file():
    examples = sorted(p.name for p in EXAMPLES.glob("*.yml"))
    chosen = st.selectbox("Start from an example", examples, key="cmp_example")
    if st.session_state.get("cmp_example_loaded") != chosen:
        st.session_state["cmp_yaml"] = (EXAMPLES / chosen).read_text(encoding="utf-8")
        st.session_state["cmp_example_loaded"] = chosen
    text = st.text_area("Campaign file (YAML; file paths are relative to examples/campaigns/)", key="cmp_yaml",
                        height=360)
    return lambda: campaign_from_text(text, name="the campaign file", base=EXAMPLES)


def _show_problems(exc: CampaignError) -> None:
    st.error("The campaign cannot be sent as it is:\n\n" + "\n".join(f"- {p}" for p in exc.problems))


def _preview(plan) -> None:
    c = plan.campaign
    st.subheader(f"Preview: {c.name} ({c.campaign_id})")
    excluded = sum(plan.excluded.values())
    cols = st.columns(5)
    cols[0].metric("Audience", f"{plan.matched:,}")
    cols[1].metric("Would queue", f"{plan.queued:,}")
    cols[2].metric("Excluded", f"{excluded:,}")
    cols[3].metric("Held out", f"{plan.held_out:,}")
    cols[4].metric("Cost", f"{sum(plan.cost.values()):,.2f} {plan.currency}")
    if plan.excluded:
        st.markdown("**Excluded by the policies, in the order they apply**")
        st.dataframe(pl.DataFrame({"reason": [r.replace("_", " ") for r in plan.excluded],
                                   "users": list(plan.excluded.values())}),
                     hide_index=True, key="cmp_excluded", column_config={"users": widgets.COUNT})
    facts = []
    if plan.per_channel:
        facts.append("Channels: " + ", ".join(f"{ch} {n:,}" for ch, n in plan.per_channel.items())
                     + (f" ({plan.fallbacks:,} on a fallback channel)" if plan.fallbacks else ""))
    if plan.per_variant:
        facts.append("Split: " + ", ".join(f"{arm} {n:,}" for arm, n in plan.per_variant.items()))
    if plan.encodings:
        facts.append("SMS: " + ", ".join(f"{k} {v:,}" for k, v in plan.encodings.items())
                     + f"; {plan.units.get('sms', 0):,} segments in all")
    for reason, count in plan.deferred.items():
        facts.append(f"Deferred by {reason.replace('_', ' ')}: {count:,}")
    if plan.first_due:
        facts.append(f"Sending from {plan.first_due:%Y-%m-%d %H:%M} to {plan.last_due:%Y-%m-%d %H:%M} UTC")
    if plan.defer_existing or plan.cancel_existing:
        facts.append(f"Lower-priority queued messages that yield: {len(plan.defer_existing):,} deferred, "
                     f"{len(plan.cancel_existing):,} cancelled")
    for fact in facts:
        st.markdown(f"- {fact}")
    if plan.previews:
        users = [p.user_id for p in plan.previews]
        known = data.query(data.USER_PROFILES.format(marks=", ".join("?" for _ in users)), users)
        profile = {r["user_id"]: r for r in known.iter_rows(named=True)}
        st.markdown("**As sample users would get it**")
        for p in plan.previews:
            who = profile.get(p.user_id, {})
            where = ", ".join(str(who[k]) for k in ("segment", "region", "carrier") if who.get(k))
            detail = (f"{p.encoding}, {p.segments} segment{'s' if p.segments != 1 else ''}, {p.characters} characters"
                      if p.encoding else f"{p.characters} characters")
            with st.container(border=True):
                st.caption(f"{p.variant} · {p.channel} · user {p.user_id}" + (f" ({where})" if where else "")
                           + f" · {detail}")
                if p.subject:
                    st.markdown(f"**{p.subject}**")
                st.text(p.body)


def _compose() -> None:
    mode = st.radio("Compose", ("with the form", "from a campaign file"), horizontal=True, key="cmp_mode")
    if mode == "with the form":
        form = _form_values()
        build = lambda: campaign_from_dict(campaign_form.document(form), source="the form")  # noqa: E731
    else:
        build = _campaign_from_file()
    outcome = st.session_state.get("cmp_outcome")
    if outcome:
        (st.success if outcome[0] == "success" else st.error)(outcome[1])
    if st.button("Preview", type="secondary", key="cmp_preview"):
        st.session_state.pop("cmp_plan", None)
        st.session_state.pop("cmp_outcome", None)
        try:
            campaign = build()
            with st.spinner("Planning: audience, policies, assignment, rendering…"):
                st.session_state["cmp_plan"] = plan_send(settings, campaign, snapshot=data.connection().cursor())
        except CampaignError as exc:
            _show_problems(exc)
        except SendError as exc:
            st.error(str(exc) + ("".join(f"\n- {d}" for d in exc.details) if exc.details else ""))
    plan = st.session_state.get("cmp_plan")
    if plan is None:
        return
    _preview(plan)
    if not plan.queued:
        st.warning("Nothing would be sent: every user of the audience is excluded or held out.")
        return
    if st.button(f"Queue {plan.queued:,} messages", type="primary", key="cmp_confirm"):
        try:
            queue(settings, plan)
        except SendError as exc:
            st.session_state["cmp_outcome"] = ("error", str(exc))
        else:
            st.session_state["follow_run"] = plan.run_id
            st.session_state["cmp_outcome"] = ("success", (
                f"Queued run {plan.run_id}: {plan.queued:,} messages. The worker sends them (`nudgelab dispatch run`); "
                f"delivery reports and clicks come back through the receiver at {receiver_url()}. Follow it under "
                "\"Follow a run\"."))
        st.session_state.pop("cmp_plan", None)   # a plan is queued at most once
        st.rerun()


@st.fragment(run_every=timedelta(seconds=3))
def _follow() -> None:
    if not settings.ops_path.exists():
        st.info("No campaign has been queued yet.")
        return
    try:
        ops = connect(settings.ops_path)
    except OpsError as exc:
        st.error(str(exc))
        return
    try:
        known = progress.runs(ops)
        if not known:
            st.info("No campaign has been queued yet.")
            return
        ids = [r["run_id"] for r in known]
        if st.session_state.get("follow_run") not in ids:
            st.session_state["follow_run"] = ids[0]
        chosen = st.selectbox("Run", ids, key="follow_run",
                              format_func=lambda i: next(f"{r['campaign_id']} — {r['created_at'][:16].replace('T', ' ')} "
                                                         f"UTC ({r['queued']:,} queued)" for r in known if r["run_id"] == i))
        run = next(r for r in known if r["run_id"] == chosen)
        stages = progress.progress(ops, chosen)
    finally:
        ops.close()
    st.caption(f"Audience {run['audience']:,}; held out {run['held_out']:,}. Live from the outbox and the receiver "
               "(refreshed every 3 seconds); the dashboards show it after the next ingest and build.")
    cols = st.columns(len(progress.STAGES))
    for col, stage in zip(cols, progress.STAGES):
        col.metric(STAGE_LABELS[stage], f"{stages[stage]:,}")
    frame = pl.DataFrame({"stage": [STAGE_LABELS[s] for s in progress.STAGES],
                          "messages": [stages[s] for s in progress.STAGES]})
    chart = alt.Chart(frame).mark_bar().encode(
        x=alt.X("messages:Q", title="messages (opted out: users)"),
        y=alt.Y("stage:N", sort=[STAGE_LABELS[s] for s in progress.STAGES], title=None),
        tooltip=["stage", alt.Tooltip("messages:Q", format=",")])
    st.altair_chart(chart, width="stretch", key="follow_chart")


compose, follow = st.tabs(["Compose and send", "Follow a run"])
with compose:
    _compose()
with follow:
    _follow()
