"""Planning on a built scenario's snapshot: the audience reconciles with what is queued, held out
and excluded; the holdout is assigned and never sent; a second send reaches nobody twice; and a
journey's second step is planned from the warehouse at its due time — only for users who did not
click."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from dispatch.campaign import campaign_from_dict
from dispatch.contacts import import_contacts
from dispatch.journeys import plan_due
from dispatch.ops import connect, iso, transaction
from dispatch.planner import Context, plan_campaign, queue_plan
from dispatch.spooling import flush
from tests.conftest import TEST_KEY, run_cli
from warehouse.connections import connect_published

PROVIDERS = {"sms": "file", "email": "file", "push": "file", "rcs": "file"}


def promo(limit: int = 400, holdout: float = 0.2) -> dict:
    return {"campaign": {
        "id": "test_promo", "name": "Test promotion", "category": "promotional", "priority": 2,
        "channels": ["sms", "email"], "audience": {"limit": limit}, "schedule": "now",
        "links": {"offer": "https://shop.example.com/o"},
        "templates": {
            "a": {"sms": "Offer {{ link('offer') }}", "email": {"subject": "Offer", "body": "Offer {{ link('offer') }}"}},
            "b": {"sms": "Our offer 🎁 {{ link('offer') }}", "email": {"subject": "Gift", "body": "Gift {{ link('offer') }}"}}},
        "experiment": {"id": "exp_test_promo", "name": "Test promo", "hypothesis": "b beats a", "owner": "tests",
                       "variants": [{"name": "a", "weight": 0.5, "control": True}, {"name": "b", "weight": 0.5}],
                       "holdout": holdout, "goal_metrics": ["click_through"]}}}


@pytest.fixture
def planning(scenario, scenario_copy):
    settings, _ = scenario_copy
    ops = connect(settings.ops_path)
    report = import_contacts(ops, scenario[0].home.parent / "data" / "users.parquet")
    assert report.added > 0 and report.invalid == 0
    snapshot = connect_published(settings)
    ctx = Context(ops, snapshot, TEST_KEY.encode(), "https://r.example.test", PROVIDERS, datetime.now(timezone.utc))
    yield settings, ops, snapshot, ctx
    snapshot.close()
    ops.close()


def test_the_audience_reconciles_and_the_holdout_is_assigned_but_not_sent(planning):
    settings, ops, _, ctx = planning
    campaign = campaign_from_dict(promo())
    plan = plan_campaign(campaign, ctx)
    assert ops.execute("SELECT count(*) FROM messages").fetchone()[0] == 0       # planning writes nothing
    assert plan.matched == 400
    assert plan.matched == plan.queued + plan.held_out + sum(plan.excluded.values())
    assert plan.held_out > 0 and set(plan.per_variant) == {"a", "b", "holdout"}
    queue_plan(plan, ops)
    arms = dict(ops.execute("SELECT unit_id, variant FROM assignments WHERE experiment_id = 'exp_test_promo'").fetchall())
    sent_to = {r[0]: r[1] for r in ops.execute("SELECT user_id, variant FROM messages WHERE run_id = ?", [plan.run_id])}
    held = {u for u, v in arms.items() if v == "holdout"}
    assert len(held) == plan.held_out and not held & set(sent_to)
    assert all(arms[u] == v for u, v in sent_to.items())                       # each message carries its arm
    assert len(arms) == plan.queued + plan.held_out
    definition = json.loads(ops.execute("SELECT record FROM definitions").fetchone()[0])
    assert definition["experiment_id"] == "exp_test_promo" and "holdout" in json.dumps(definition)
    # a code per message × link, and every body carries its own code
    links = ops.execute("SELECT code, message_id FROM links").fetchall()
    assert len(links) == plan.queued and len({c for c, _ in links}) == plan.queued
    body = dict(ops.execute("SELECT message_id, body FROM messages").fetchall())
    assert all(f"https://r.example.test/l/{code}" in body[m] for code, m in links)
    # the same campaign again: everyone queued is already reached, the holdout stays held out
    again = plan_campaign(campaign, ctx)
    assert again.queued == 0 and again.excluded["already_sent"] == plan.queued
    assert again.held_out == plan.held_out           # assignments are stable: the holdout stays out


def test_a_frequency_cap_counts_what_an_earlier_campaign_queued(planning):
    _, ops, _, ctx = planning
    first = plan_campaign(campaign_from_dict(promo(limit=200, holdout=0.0)), ctx)
    queue_plan(first, ops)
    second_doc = promo(limit=200, holdout=0.0)
    capped_users = {m[5] for m in first.messages}
    second_doc["campaign"].update(id="test_promo_2", frequency_cap={"max": 1, "days": 7},
                                  audience={"user_ids": sorted(capped_users)})
    second_doc["campaign"]["experiment"]["id"] = "exp_test_promo_2"
    second = plan_campaign(campaign_from_dict(second_doc), ctx)
    # each of them has the first campaign's promotion queued: at the cap of one, whatever the channel
    assert second.queued == 0 and second.excluded == {"frequency_cap": len(capped_users)}
    loose = dict(second_doc["campaign"], id="test_promo_3", frequency_cap={"max": 50, "days": 7})
    loose["experiment"] = dict(loose["experiment"], id="exp_test_promo_3")
    third = plan_campaign(campaign_from_dict({"campaign": loose}), ctx)
    assert third.excluded.get("frequency_cap", 0) == 0 and third.queued == len(capped_users)


def test_a_journeys_second_step_goes_only_to_users_who_did_not_click(planning, tmp_path):
    settings, ops, snapshot, ctx = planning
    users = [r[0] for r in snapshot.execute(
        "SELECT user_id FROM marts.dim_users WHERE consent_sms AND consent_email AND NOT coalesce(is_opted_out, false) "
        "ORDER BY user_id LIMIT 10").fetchall()]
    campaign = campaign_from_dict({"campaign": {
        "id": "test_cart", "name": "Cart", "category": "transactional", "priority": 4, "channels": ["sms"],
        "quiet_hours": {"transactional_may_pass": True}, "audience": {"user_ids": users}, "schedule": "now",
        "links": {"cart": "https://shop.example.com/cart"},
        "templates": {"sms": "Your cart {{ link('cart') }}"},
        "steps": [{"name": "email_if_no_click", "after": "24h", "if": "no_click", "channels": ["email"],
                   "templates": {"email": {"subject": "Still there?", "body": "Cart {{ link('cart') }}"}}}]}})
    plan = plan_campaign(campaign, ctx)
    assert plan.queued == 10
    queue_plan(plan, ops)
    assert ops.execute("SELECT count(*) FROM journey_steps WHERE state = 'waiting'").fetchone()[0] == 10
    # the first step went out 25 hours ago (as the worker would have recorded it)
    sent_at = datetime.now(timezone.utc) - timedelta(hours=25)
    with transaction(ops):
        ops.execute("UPDATE messages SET state = 'sent', sent_at = ?, provider_message_id = 'file:' || message_id "
                    "WHERE run_id = ?", [iso(sent_at), plan.run_id])
    flush(ops, settings.spool_dir, TEST_KEY.encode())
    first = dict(ops.execute("SELECT user_id, message_id FROM messages WHERE run_id = ?", [plan.run_id]).fetchall())
    clickers = users[:4]
    clicks = tmp_path / "clicks.csv"
    clicks.write_text("event_id,occurred_at,message_id,user_id,campaign_id,channel,link_id,url,user_agent,ip\n" + "".join(
        f"clk-j{i},{(sent_at + timedelta(minutes=40)).strftime('%Y-%m-%dT%H:%M:%SZ')},{first[u]},{u},test_cart,sms,cart,"
        f"https://r.example.test/l/x{i},\"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/125.0.6422.165 Mobile Safari/537.36\",27.77.165.{i + 10}\n" for i, u in enumerate(clickers)))
    for args in (("ingest", "--spool"), ("ingest", str(clicks)), ("build",)):
        proc = run_cli(*args)
        assert proc.returncode == 0, f"{args}: {proc.stderr[-2000:]}"
    fresh = connect_published(settings)
    try:
        clicked = {r[0] for r in fresh.execute("SELECT user_id FROM marts.fct_messages WHERE campaign_id = 'test_cart' "
                                                "AND is_clicked").fetchall()}
        assert clicked == set(clickers)
        now = datetime.now(timezone.utc)
        outcome = plan_due(ops, fresh, lambda c: Context(ops, fresh, TEST_KEY.encode(), "https://r.example.test",
                                                           PROVIDERS, now), now)
    finally:
        fresh.close()
    assert outcome["planned"] == 6 and outcome["skipped_clicked"] == 4
    second = dict(ops.execute("SELECT user_id, channel FROM messages WHERE step = 'email_if_no_click'").fetchall())
    assert set(second) == set(users) - set(clickers) and set(second.values()) == {"email"}
    skipped = dict(ops.execute("SELECT user_id, reason FROM journey_steps WHERE state = 'skipped'").fetchall())
    assert skipped == {u: "clicked" for u in clickers}
