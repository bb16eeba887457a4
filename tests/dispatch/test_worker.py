"""The worker and the outbox: retries with backoff, dead letters with the provider's error,
ambiguous outcomes that are never re-sent, the last checks before sending, recovery after a
crash, rate limits and the spool."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone

import pytest

from dispatch import outbox
from dispatch.ops import connect, iso, transaction
from dispatch.providers.base import Accepted, AmbiguousFailure, PermanentFailure, TemporaryFailure
from dispatch.providers.file import FileProvider
from dispatch.worker import TokenBucket, Worker, WorkerOptions
from tests.conftest import TEST_KEY
from tests.dispatch.outbox_rows import queue, states


class Scripted:
    """A provider whose answers are scripted per recipient: a list of outcomes, used in turn."""

    rate_per_second = None

    def __init__(self, name: str = "scripted", script: dict[str, list] | None = None) -> None:
        self.name, self.script = name, script or {}
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def send(self, message):
        with self.lock:
            self.calls.append(message.to)
            plan = self.script.get(message.to)
            outcome = plan.pop(0) if plan else "ok"
        if outcome == "ok":
            return Accepted(f"p-{message.message_id}", "taken")
        raise {"temp": TemporaryFailure, "perm": PermanentFailure, "ambiguous": AmbiguousFailure}[outcome](
            f"scripted {outcome}")

    def lookup(self, message_id):
        return None

    def close(self):
        pass


@pytest.fixture
def ops(tmp_path):
    conn = connect(tmp_path / "ops.sqlite")
    yield conn
    conn.close()


def worker(tmp_path, provider, **options) -> Worker:
    defaults = dict(once=True, threads=4, backoff_seconds=0.01, max_backoff_seconds=0.05)
    defaults.update(options)
    return Worker(tmp_path, tmp_path / "ops.sqlite", tmp_path / "spool", TEST_KEY.encode(), {provider.name: provider},
                  WorkerOptions(**defaults))


def run_until_settled(tmp_path, provider, ops, rounds: int = 40, **options) -> None:
    import time

    for _ in range(rounds):
        worker(tmp_path, provider, **options).run()
        if not ops.execute("SELECT 1 FROM messages WHERE state IN ('queued', 'retry')").fetchone():
            return
        time.sleep(0.03)
    raise AssertionError("messages still waiting after every round")


def test_temporary_failures_are_retried_until_taken_and_then_dead_with_the_providers_error(tmp_path, ops):
    ids = queue(ops, ["u1", "u2", "u3"], "scripted")
    provider = Scripted(script={"+12025550000": ["temp", "temp"], "+12025550001": ["temp"] * 10,
                                "+12025550002": ["perm"]})
    run_until_settled(tmp_path, provider, ops, max_attempts=4)
    got = states(ops)
    assert got[ids[0]][0] == "sent" and got[ids[0]][2] == 3
    assert got[ids[1]] == ("dead", "scripted: scripted temp (after 4 attempts)", 4)
    assert got[ids[2]] == ("dead", "scripted: scripted perm", 1)
    assert provider.calls.count("+12025550001") == 4 and provider.calls.count("+12025550002") == 1


def test_an_ambiguous_send_is_never_repeated_and_a_receipt_settles_it(tmp_path, ops):
    (message_id,) = queue(ops, ["u1"], "scripted")
    provider = Scripted(script={"+12025550000": ["ambiguous"]})
    worker(tmp_path, provider).run()
    worker(tmp_path, provider).run()
    state, reason, _ = states(ops)[message_id]
    assert state == "unknown" and "scripted ambiguous" in reason and provider.calls == ["+12025550000"]
    assert outbox.record_receipt(ops, message_id, "delivered", "kannel-77", "kannel")
    state, reason, _ = states(ops)[message_id]
    assert state == "sent" and reason == "settled by a delivery report: delivered"
    assert not outbox.record_receipt(ops, "m-not-ours", "delivered")


def test_an_opt_out_after_queuing_cancels_and_quiet_hours_at_send_time_defer(tmp_path, ops):
    now = datetime.now(timezone.utc)
    quiet = ((now - timedelta(hours=1)).strftime("%H:%M"), (now + timedelta(hours=1)).strftime("%H:%M"))
    opted, late = queue(ops, ["u1", "u2"], "scripted", zones=["UTC"], quiet=None)[0], \
        queue(ops, ["u3"], "scripted", run_id="run-2", zones=["UTC"], quiet=quiet, start=10)[0]
    with transaction(ops):
        ops.execute("INSERT INTO suppressions VALUES ('sms', 'u1', 'stop_reply', 'test', ?)", [iso(now)])
    provider = Scripted()
    worker(tmp_path, provider).run()
    got = states(ops)
    assert got[opted][0] == "cancelled" and "opted out" in got[opted][1]
    assert got[late][0] == "queued"
    due = ops.execute("SELECT due_at FROM messages WHERE message_id = ?", [late]).fetchone()[0]
    end = datetime.strptime(quiet[1], "%H:%M").time()
    assert due[11:16] == end.strftime("%H:%M") and due > iso(now)
    assert provider.calls == ["+12025550001"]        # only u2


def test_what_a_dead_worker_left_is_settled_never_sent_blindly(tmp_path, ops):
    ids = queue(ops, ["u1", "u2", "u3", "u4"], "file")
    files = FileProvider(tmp_path / "outbox")
    from dispatch.providers.base import Outgoing

    files.send(Outgoing(ids[2], "sms", "+12025550002", "went out before the crash"))
    with transaction(ops):
        ops.execute("UPDATE messages SET state = 'claimed', claimed_by = 'ghost' WHERE message_id = ?", [ids[0]])
        ops.execute("UPDATE messages SET state = 'sending', claimed_by = 'ghost', attempts = 1 "
                    "WHERE message_id IN (?, ?, ?)", ids[1:])
        ops.execute("INSERT INTO receipts VALUES (?, 'delivered', 'k-9', ?, 'kannel')", [ids[3], iso(datetime.now(timezone.utc))])
    w = worker(tmp_path, FileProvider(tmp_path / "outbox"))
    summary = w.run()
    assert summary.recovered == {"requeued": 1, "unknown": 1, "settled_by_provider": 1, "settled_by_receipt": 1}
    got = states(ops)
    assert got[ids[0]][0] == "sent"                                  # never handed over: sent now
    assert got[ids[1]][0] == "unknown" and "worker ghost stopped during the file call" in got[ids[1]][1]
    assert got[ids[2]][0] == "sent" and "provider's record" in got[ids[2]][1]
    assert got[ids[3]][0] == "sent" and "delivery report (delivered)" in got[ids[3]][1]
    lines = [json.loads(line) for line in (tmp_path / "outbox" / "sms.jsonl").read_text().splitlines()]
    assert sorted(line["message_id"] for line in lines) == sorted([ids[2], ids[0]])   # nobody twice


def test_a_live_workers_claims_are_left_alone(tmp_path, ops):
    import fcntl

    (message_id,) = queue(ops, ["u1"], "scripted")
    (tmp_path / "workers").mkdir()
    holder = open(tmp_path / "workers" / "other.lock", "w")
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        with transaction(ops):
            ops.execute("UPDATE messages SET state = 'sending', claimed_by = 'other' WHERE message_id = ?", [message_id])
        summary = worker(tmp_path, Scripted()).run()
        assert not summary.recovered and states(ops)[message_id][0] == "sending"
    finally:
        holder.close()
    summary = worker(tmp_path, Scripted()).run()           # now its lock is free: it is dead
    assert summary.recovered == {"unknown": 1}


def test_sent_messages_reach_the_spool_as_sends_with_a_keyed_hash_and_no_address(tmp_path, ops):
    ids = queue(ops, ["u1", "u2"], "scripted")
    summary = worker(tmp_path, Scripted()).run()
    assert summary.spooled == {"sends": 2}
    events = [json.loads(line) for path in (tmp_path / "spool").rglob("*.jsonl") for line in path.read_text().splitlines()]
    sends = [e for e in events if e.get("event_id", "").startswith("snd-")]
    assert sorted(e["message_id"] for e in sends) == sorted(ids)
    text = json.dumps(events)
    assert "+1202555" not in text
    from ingest.hashing import keyed_hash, normalise_recipient

    phone_of = dict(ops.execute("SELECT m.message_id, c.phone FROM messages m JOIN contacts c USING (user_id)").fetchall())
    # the hash ingestion itself computes for the raw number
    assert all(e["recipient_hash"] == keyed_hash(normalise_recipient(phone_of[e["message_id"]], "sms"), TEST_KEY.encode())
               for e in sends)
    assert {e["category"] for e in sends} == {"transactional"} and {e["provider_message_id"] for e in sends} == {
        f"p-{i}" for i in ids}
    assert worker(tmp_path, Scripted()).run().spooled == {}  # flagged: not written again


def test_the_token_bucket_holds_the_average_rate():
    clock = {"t": 0.0}
    bucket = TokenBucket(10.0, burst=1, clock=lambda: clock["t"],
                         sleep=lambda s: clock.__setitem__("t", clock["t"] + s))
    for _ in range(21):
        bucket.acquire()
    assert clock["t"] == pytest.approx(2.0, abs=1e-6)     # the first is free, then one per 0.1 s
    burst = TokenBucket(10.0, burst=5, clock=lambda: clock["t"], sleep=lambda s: clock.__setitem__("t", clock["t"] + s))
    start = clock["t"]
    for _ in range(5):
        burst.acquire()
    assert clock["t"] == start                             # a full bucket lets a burst through


def test_claims_go_highest_priority_first_and_only_when_due(tmp_path, ops):
    later = datetime.now(timezone.utc) + timedelta(hours=2)
    low = queue(ops, ["u1"], "scripted", priority=1)[0]
    high = queue(ops, ["u2"], "scripted", priority=9, run_id="run-2", start=1)[0]
    future = queue(ops, ["u3"], "scripted", run_id="run-3", due=later, start=2)[0]
    rows = outbox.claim(ops, "w1", datetime.now(timezone.utc), 10, ["scripted"])
    assert [r["message_id"] for r in rows] == [high, low] and rows[0]["phone"] == "+12025550001"
    assert outbox.claim(ops, "w2", datetime.now(timezone.utc), 10, ["scripted"]) == []   # not claimed twice
    assert states(ops)[future][0] == "queued"
