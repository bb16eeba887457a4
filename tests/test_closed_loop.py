"""The loop the product exists for, end to end on 127.0.0.1 with real parts: a campaign composed and
queued on the app's Campaigns page (AppTest) → outbox → ``nudgelab dispatch run`` → Kannel
(bearerbox + smsbox + fake SMSC) → delivery reports to the receiver's ``/kannel/dlr`` → spool →
``nudgelab ingest --spool`` → ``nudgelab build`` → ``fct_funnel_daily`` shows exactly those
messages delivered. A person's click and a link preview's fetch come back through tracked links;
a STOP sent from the fake SMSC excludes its user from the very next run, before any ingest, and
shows as an opt-out in the marts."""

from __future__ import annotations

import time

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from dispatch.ops import connect
from dispatch.providers.kannel_local import LocalKannel, missing
from tests.conftest import ROOT, run_cli
from tests.dispatch.receiver.served import BROWSER, Served
from warehouse.publish import current_snapshot

USERS = 12
PREVIEW_BOT = "WhatsApp/2.24.6.77 A"


def snapshot(settings, sql: str, params: list | None = None):
    conn = duckdb.connect(str(current_snapshot(settings)), read_only=True)
    try:
        return conn.execute(sql, params or []).fetchall()
    finally:
        conn.close()


def wait_for(check, seconds: float = 30.0, what: str = ""):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def compose_and_queue(at: AppTest, campaign_id: str, text: str) -> AppTest:
    """Fill the Campaigns page's form, preview, and queue; returns the app after queuing."""
    at.text_input(key="cmp_id").input(campaign_id).run()
    at.text_input(key="cmp_name").input(f"Parcel notice {campaign_id}").run()
    at.text_input(key="cmp_link").input("https://track.example.com/parcel").run()
    at.text_area(key="cmp_sms").input(text).run()
    at.button(key="cmp_preview").click().run()
    assert not at.exception and not at.error, ([e.value for e in at.exception], [e.value for e in at.error])
    return at


def exclusions(at: AppTest) -> dict[str, int]:
    """The preview's table of exclusions by reason."""
    (table,) = [d.value for d in at.dataframe if "reason" in d.value.columns]
    return dict(zip(table["reason"], table["users"]))


def tiles(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_a_campaign_from_the_app_closes_the_loop_through_kannel_and_the_receiver(scenario_copy, tmp_path, monkeypatch):
    if missing():
        pytest.fail("Kannel is not installed: `make test` installs kannel and kannel-extras")
    settings, _ = scenario_copy
    # users who may get an SMS now (well inside allowed hours where they live: quiet hours are 21:00–08:00)
    # and got nothing in the last day (a message within the conflict window would defer the new one);
    # the scenario's zones run from Los Angeles to Kolkata, so some are in daytime at any hour
    chosen = [r[0] for r in snapshot(
        settings, "SELECT user_id FROM marts.dim_users WHERE consent_sms AND NOT is_opted_out "
                  "AND hour(timezone(timezone, now())) BETWEEN 9 AND 19 AND user_id NOT IN "
                  "(SELECT user_id FROM marts.fct_messages WHERE sent_at > now() - INTERVAL 1 DAY) "
                  "ORDER BY user_id LIMIT ?", [USERS])]
    assert len(chosen) == USERS
    phones = {user: f"+1202574{i:04d}" for i, user in enumerate(chosen)}
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("user_id,phone\n" + "".join(f"{u},{p}\n" for u, p in phones.items()))
    assert run_cli("dispatch", "contacts", "import", str(contacts)).returncode == 0

    server = Served(settings.home, NUDGELAB_RECEIVER_SOON_SECONDS="1").start()
    receiver = f"http://127.0.0.1:{server.port}"
    try:
        with LocalKannel(tmp_path / "kannel", receiver=receiver) as kannel:
            env = {**kannel.env(receiver), "NUDGELAB_DISPATCH_PROVIDERS": "sms=kannel"}
            for name, value in env.items():
                monkeypatch.setenv(name, value)   # the app plans with these (the receiver's links, Kannel)

            # compose on the Campaigns page: everyone matches; only the twelve with a phone can get an SMS
            at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
            at.run()
            at.switch_page("app_pages/campaigns.py").run()
            text = "Your parcel is on its way: {{ link('link') }} Reply STOP to opt out"
            compose_and_queue(at, "e2e_parcel", text)
            shown = tiles(at)
            audience = int(shown["Audience"].replace(",", ""))
            assert shown["Would queue"] == f"{USERS}" and audience > USERS
            first_excluded = exclusions(at)   # no phone imported, or opted out in the warehouse already
            assert sum(first_excluded.values()) == audience - USERS and first_excluded["no address"] > 0, first_excluded
            previews = [c.value for c in at.text]
            assert previews and all(f"{receiver}/l/" in p and "Reply STOP" in p for p in previews)
            at.button(key="cmp_confirm").click().run()
            assert not at.exception and at.success and "Queued run" in at.success[0].value
            assert "cmp_confirm" not in [b.key for b in at.button]      # a plan is queued once

            ops = connect(settings.ops_path)
            (run_id,) = ops.execute("SELECT run_id FROM runs WHERE campaign_id = 'e2e_parcel'").fetchone()
            assert tuple(ops.execute("SELECT count(*), count(DISTINCT user_id) FROM messages WHERE run_id = ?",
                                     [run_id]).fetchone()) == (USERS, USERS)

            # the worker sends through Kannel; every delivery report comes back through the receiver
            run = run_cli("dispatch", "run", "--once", "--threads", "8", env_extra=env)
            assert run.returncode == 0 and run.stdout.startswith(f"sent {USERS},"), run.stdout
            wait_for(lambda: ops.execute("SELECT count(DISTINCT message_id) FROM receipts WHERE status = 'delivered'")
                     .fetchone()[0] == USERS, what="every delivery report")
            parcels = wait_for(lambda: len(got := [r.to for r in kannel.received() if r.text.startswith("Your parcel")])
                               >= USERS and got, what="the fake SMSC's log of every message")
            assert sorted(parcels) == sorted(phones.values())

            # tracked links: a person (past the seconds right after delivery) and a link preview
            codes = [r[0] for r in ops.execute("SELECT l.code FROM links l JOIN messages m USING (message_id) "
                                               "WHERE m.run_id = ? ORDER BY m.user_id", [run_id])]
            time.sleep(1.1)
            assert server.get(f"/l/{codes[0]}", **{"User-Agent": BROWSER})[0] == 302
            assert server.get(f"/l/{codes[1]}", **{"User-Agent": PREVIEW_BOT})[0] == 302

            # STOP from a phone: suppressed at once and confirmed
            stopper = chosen[2]
            kannel.inbound(phones[stopper], "12345", "STOP")
            wait_for(lambda: any(r.to == phones[stopper] and r.text.startswith("You will get no more")
                                 for r in kannel.received()), what="the STOP confirmation")
            assert [tuple(r) for r in ops.execute("SELECT user_id, reason FROM suppressions")] == [(stopper, "stop_reply")]

            # the page follows the run live from ops.sqlite
            at.switch_page("app_pages/campaigns.py").run()
            live = tiles(at)
            assert (live["delivered"], live["clicked (people)"], live["machine fetches"], live["opted out"]) == (
                f"{USERS}", "1", "1", "1"), live

            # the very next run, composed on the page again, already leaves the opted-out user out
            at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
            at.run()
            at.switch_page("app_pages/campaigns.py").run()
            compose_and_queue(at, "e2e_parcel_more", "A second parcel is on its way: {{ link('link') }} STOP to opt out")
            excluded = exclusions(at)
            assert excluded["opted out"] == first_excluded.get("opted out", 0) + 1, (excluded, first_excluded)
            assert tiles(at)["Would queue"] == f"{USERS - 1}"
            at.button(key="cmp_confirm").click().run()
            run = run_cli("dispatch", "run", "--once", env_extra=env)
            assert run.returncode == 0 and run.stdout.startswith(f"sent {USERS - 1},"), run.stdout
            second = wait_for(lambda: len(got := [r.to for r in kannel.received() if r.text.startswith("A second parcel")])
                              >= USERS - 1 and got, what="the second run at the fake SMSC")
            assert len(second) == USERS - 1 and phones[stopper] not in second
            ops.close()
    finally:
        server.stop()

    assert run_cli("ingest", "--spool").returncode == 0
    build = run_cli("build")
    assert build.returncode == 0, build.stderr[-2000:]
    funnel = snapshot(settings, "SELECT sum(sent), sum(delivered), sum(human_clicks), sum(bot_clicks) "
                                "FROM marts.fct_funnel_daily WHERE campaign_id = 'e2e_parcel'")
    assert funnel == [(USERS, USERS, 1, 1)]
    delivered = {r[0] for r in snapshot(settings, "SELECT user_id FROM marts.fct_messages WHERE campaign_id = 'e2e_parcel' "
                                                  "AND is_delivered")}
    assert delivered == set(chosen)
    assert snapshot(settings, "SELECT user_id FROM marts.dim_users WHERE user_id IN (SELECT unnest(?)) AND is_opted_out",
                    [chosen]) == [(stopper,)]
