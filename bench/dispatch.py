"""Dispatch: planning a campaign for a million recipients, and the worker's throughput into Kannel.

Planning: a generated warehouse of ``BENCH_DISPATCH_USERS`` users (default 1,000,000; one day of
events) is ingested, built and published; the users file is imported as contacts; then a
promotional SMS/e-mail campaign with a two-arm experiment, a 10 % holdout and a tracked link is
planned for every user (audience, the five policies, timing, assignment, rendering, encoding,
cost). Baseline in the same run: the same two templates rendered by a bare sandboxed Jinja loop
for as many users — the floor of per-message work. Target: planning under 60 s.

Kannel: bearerbox + smsbox + the fake SMSC on loopback, delivery reports to a local listener.
``BENCH_KANNEL_MESSAGES`` messages (default 3,000) are sent by a bare concurrent ``sendsms``
client (the same threads, the same requests) and by ``Worker`` from a queued campaign, three
times each, alternating; a run's time ends when the last delivery report (type 1) has come back.
Targets: the worker at least 300 messages/s and at least 0.8× the bare client (medians).
"""

from __future__ import annotations

import asyncio
import http.client
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
KEY = "bench-hash-key"
THREADS = 32   # sendsms answers in ~40 ms when a delivery report is asked for: throughput is concurrency-bound

SMS_A = "Winter offers are here: up to 30% off. {{ link('offer') }} Reply STOP to opt out"
SMS_B = "Hi from {{ region }}: winter offers picked for you, up to 30% off {{ link('offer') }} STOP to opt out"


def _campaign(campaign_id: str, limit: int | None, category: str = "promotional", experiment: bool = True,
              channels: tuple[str, ...] = ("sms", "email")) -> dict:
    templates = {"sms": SMS_A, "email": {"subject": "Winter offers", "body": "Up to 30% off: {{ link('offer') }}"}}
    spec: dict = {"id": campaign_id, "name": campaign_id, "category": category, "priority": 2,
                  "channels": list(channels), "schedule": "now", "links": {"offer": "https://shop.example.com/winter"},
                  "audience": {"limit": limit} if limit else {}}
    if category == "transactional":
        spec["quiet_hours"] = {"transactional_may_pass": True}
    if experiment:
        spec["templates"] = {"a": {k: v for k, v in templates.items() if k in channels},
                             "b": {k: (SMS_B if k == "sms" else v) for k, v in templates.items() if k in channels}}
        spec["experiment"] = {"id": f"exp_{campaign_id}", "name": campaign_id, "hypothesis": "b beats a",
                              "owner": "bench", "variants": [{"name": "a", "weight": 0.5, "control": True},
                                                             {"name": "b", "weight": 0.5}],
                              "holdout": 0.1, "goal_metrics": ["click_through"]}
    else:
        spec["templates"] = {k: v for k, v in templates.items() if k in channels}
    return {"campaign": spec}


def _cli(home: Path, *args: str) -> None:
    env = dict(os.environ, NUDGELAB_HOME=str(home), NUDGELAB_HASH_KEY=KEY)
    proc = subprocess.run([sys.executable, "-m", "nudgelab.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"nudgelab {' '.join(args)} failed: {proc.stderr[-2000:]}")


def _warehouse(scratch: Path, users: int, line: Callable) -> tuple[Path, Path]:
    from ingest.generator import generate

    data, home = scratch / "dispatch-data", scratch / "dispatch-home"
    start = time.perf_counter()
    generate(data, users=users, days=1, seed=13, fmt="parquet")
    _cli(home, "ingest", str(data))
    _cli(home, "build")
    line(f"set-up: generate, ingest, build {users:,} users (not timed below)", time.perf_counter() - start)
    return data, home


def _bare_render(users, count: int) -> float:
    """The same templates rendered by a bare sandboxed Jinja loop, ``count`` times."""
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    templates = [env.from_string(SMS_A), env.from_string(SMS_B)]
    regions = users["region"].to_list()
    start = time.perf_counter()
    for i in range(count):
        templates[i & 1].render(region=regions[i % len(regions)], link=lambda name: "https://r.example/l/abcdefghijk")
    return time.perf_counter() - start


def bench_planning(line: Callable, scratch: Path, users: int) -> dict:
    from dispatch.campaign import campaign_from_dict
    from dispatch.contacts import import_contacts
    from dispatch.ops import connect
    from dispatch.planner import Context, plan_campaign, queue_plan
    from warehouse.connections import connect_published
    from warehouse.settings import load_settings

    data, home = _warehouse(scratch, users, line)
    settings = load_settings(home)
    ops = connect(settings.ops_path)
    start = time.perf_counter()
    imported = import_contacts(ops, data / "users.parquet")
    contacts_seconds = time.perf_counter() - start
    line(f"contacts import ({imported.added:,} users, phone numbers parsed)", contacts_seconds)
    snapshot = connect_published(settings)
    providers = {"sms": "kannel", "email": "smtp", "push": "file", "rcs": "file"}
    try:
        campaign = campaign_from_dict(_campaign("bench_million", None))
        ctx = Context(ops, snapshot, KEY.encode(), "https://r.example", providers, datetime.now(timezone.utc))
        start = time.perf_counter()
        plan = plan_campaign(campaign, ctx)
        planning = time.perf_counter() - start
        from dispatch.audience import select_audience

        audience = select_audience(snapshot, "bench_million", campaign.audience, ctx.now).frame
    finally:
        snapshot.close()
    bare = _bare_render(audience, plan.queued)
    line(f"plan {plan.matched:,} recipients (audience, policies, timing, assignment, rendering)", planning, plan.matched,
         f"target < 60 s; {plan.queued:,} messages, {plan.held_out:,} held out")
    line(f"bare sandboxed Jinja render of {plan.queued:,} messages (baseline)", bare, plan.queued,
         f"ratio {planning / bare:.2f}×")
    start = time.perf_counter()
    queue_plan(plan, ops)
    queue_seconds = time.perf_counter() - start
    line(f"queue the plan in ops.sqlite ({plan.queued:,} messages, links, assignments)", queue_seconds)
    ops.close()
    return {"users": users, "audience": plan.matched, "queued": plan.queued, "held_out": plan.held_out,
            "excluded": dict(plan.excluded), "planning_seconds": round(planning, 2),
            "bare_render_seconds": round(bare, 2), "ratio": round(planning / bare, 2),
            "queue_seconds": round(queue_seconds, 2), "contacts_import_seconds": round(contacts_seconds, 2),
            "home": str(home)}


class _Reports:
    """The delivery-report listener: a small asyncio HTTP/1.1 server (keep-alive) on a thread,
    noting when each message's final report (type 1) arrived."""

    delivered: dict[str, float] = {}
    lock = threading.Lock()

    def __init__(self) -> None:
        from dispatch.providers.kannel_local import free_port

        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._serve, args=(ready,), daemon=True).start()
        ready.wait(10)

    def _serve(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port,
                                                                        backlog=1024))
        ready.set()
        self.loop.run_forever()

    async def _handle(self, reader, writer) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                target = head.split(b" ", 2)[1].decode("latin-1")
                query = parse_qs(urlsplit(target).query)
                if query.get("type") == ["1"] and query.get("message_id"):
                    with self.lock:
                        self.delivered[query["message_id"][0]] = time.perf_counter()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                if b"connection: close" in head.lower():
                    break
        except (asyncio.IncompleteReadError, ConnectionError, IndexError, asyncio.LimitOverrunError):
            pass
        writer.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


def _wait_reports(ids: list[str], timeout: float = 120.0) -> float | None:
    deadline = time.monotonic() + timeout
    wanted = set(ids)
    while time.monotonic() < deadline:
        with _Reports.lock:
            if wanted <= _Reports.delivered.keys():
                return max(_Reports.delivered[i] for i in wanted)
        time.sleep(0.02)
    return None


def _bare_client(gateway, receiver: str, messages: list[tuple[str, str, str]]) -> float:
    """The same requests as the provider makes, from a bare thread pool; seconds until the last report."""
    from dispatch.providers.kannel import DLR_MASK, dlr_url
    from dispatch.providers.kannel_local import PASSWORD, USERNAME

    def one(item):
        message_id, to, body = item
        query = urlencode({"username": USERNAME, "password": PASSWORD, "from": "12345", "to": to, "text": body,
                           "charset": "UTF-8", "dlr-mask": str(DLR_MASK), "dlr-url": dlr_url(receiver, message_id)})
        conn = http.client.HTTPConnection("127.0.0.1", gateway.sendsms, timeout=10)
        conn.request("GET", f"/cgi-bin/sendsms?{query}", headers={"Connection": "close"})
        status = conn.getresponse().status
        conn.close()
        return status

    start = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        statuses = list(pool.map(one, messages))
    if set(statuses) != {202}:
        raise RuntimeError(f"the bare client got {sorted(set(statuses))} from sendsms")
    last = _wait_reports([m[0] for m in messages])
    if last is None:
        raise RuntimeError("delivery reports of the bare client's messages did not all come back")
    return last - start


def bench_kannel(line: Callable, scratch: Path, home: Path, count: int, repeats: int = 3) -> dict:
    from dispatch.campaign import campaign_from_dict
    from dispatch.ops import connect
    from dispatch.planner import Context, plan_campaign, queue_plan
    from dispatch.providers.kannel import KannelProvider
    from dispatch.providers.kannel_local import PASSWORD, USERNAME, LocalKannel
    from dispatch.worker import Worker, WorkerOptions
    from warehouse.connections import connect_published
    from warehouse.settings import load_settings

    settings = load_settings(home)
    listener = _Reports()
    receiver = listener.url
    bare_rates, ours_rates = [], []
    with LocalKannel(scratch / "kannel") as gateway:
        provider = KannelProvider(gateway.sendsms_url, USERNAME, PASSWORD, "12345", receiver)
        for repeat in range(repeats):
            # a fresh outbox each time: only this run's messages are due
            run_home = scratch / f"kannel-run-{repeat}"
            run_home.mkdir()
            ops = connect(run_home / "ops.sqlite")
            with connect(settings.ops_path) as source:
                contacts = source.execute("SELECT * FROM contacts").fetchall()
            ops.executemany("INSERT INTO contacts VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [tuple(r) for r in contacts])
            snapshot = connect_published(settings)
            try:
                campaign = campaign_from_dict(_campaign(f"bench_kannel_{repeat}", count, "transactional", False, ("sms",)))
                ctx = Context(ops, snapshot, KEY.encode(), receiver, {"sms": "kannel"}, datetime.now(timezone.utc))
                plan = plan_campaign(campaign, ctx)
            finally:
                snapshot.close()
            queue_plan(plan, ops)
            phone_of = dict(ops.execute("SELECT m.user_id, c.phone FROM messages m JOIN contacts c USING (user_id)"))
            messages = [(f"bare-{repeat}-{m[0]}", phone_of[m[5]], m[16]) for m in plan.messages]
            bare = _bare_client(gateway, receiver, messages)
            bare_rates.append(len(messages) / bare)
            worker = Worker(run_home, run_home / "ops.sqlite", run_home / "spool", KEY.encode(), {"kannel": provider},
                            WorkerOptions(once=True, threads=THREADS, batch=int(os.environ.get("BENCH_BATCH", "500"))))
            start = time.perf_counter()
            summary = worker.run()
            if summary.counts["sent"] != plan.queued:
                raise RuntimeError(f"the worker sent {summary.counts['sent']} of {plan.queued}: {dict(summary.counts)}")
            last = _wait_reports([m[0] for m in plan.messages])
            if last is None:
                raise RuntimeError("delivery reports of the worker's messages did not all come back")
            ours_rates.append(plan.queued / (last - start))
            ops.close()
    listener.close()
    bare_rate, ours_rate = statistics.median(bare_rates), statistics.median(ours_rates)
    line(f"bare concurrent sendsms client, {count:,} messages × {repeats} (baseline)", count / bare_rate, count,
         f"{bare_rate:,.0f} msg/s median (runs {', '.join(f'{r:,.0f}' for r in bare_rates)})")
    line(f"dispatch worker into Kannel, reports back, {count:,} × {repeats}", count / ours_rate, count,
         f"{ours_rate:,.0f} msg/s median (runs {', '.join(f'{r:,.0f}' for r in ours_rates)}); "
         f"ratio {ours_rate / bare_rate:.2f}× bare; targets ≥ 300 msg/s, ≥ 0.8×")
    return {"messages": count, "threads": THREADS, "bare_rates": [round(r, 1) for r in bare_rates],
            "worker_rates": [round(r, 1) for r in ours_rates], "bare_rate": round(bare_rate, 1),
            "worker_rate": round(ours_rate, 1), "ratio": round(ours_rate / bare_rate, 2)}


def bench_dispatch(line: Callable, scratch: Path) -> dict:
    users = int(os.environ.get("BENCH_DISPATCH_USERS", "1000000"))
    count = int(os.environ.get("BENCH_KANNEL_MESSAGES", "3000"))
    planning = bench_planning(line, scratch, users)
    kannel = bench_kannel(line, scratch, Path(planning.pop("home")), count)
    return {"planning": planning, "kannel": kannel}


if __name__ == "__main__":
    import tempfile

    def _print(label: str, seconds: float, rows: int | None = None, extra: str = "") -> None:
        print(f"  {label:<70} {seconds:8.2f} s  {extra}", flush=True)

    with tempfile.TemporaryDirectory(prefix="nudgelab-bench-dispatch-") as folder:
        print(bench_dispatch(_print, Path(folder)))
