"""The dispatch worker: claims due messages, sends them through their providers, records what
happened, and hands it all to the spool. ``nudgelab dispatch run [--once]``.

Each cycle: settle what dead workers left (``outbox.recover``), give due journey steps their
messages, claim a batch (highest priority first), check each message again just before sending —
the recipient may have opted out since it was queued, or an outage may have pushed it into their
quiet hours (then it is deferred, not sent at midnight) — and send the rest on a small thread
pool, each provider at most at its rate. Temporary failures are retried with exponential backoff
and jitter; after ``max_attempts`` the message is dead with the provider's error. Ambiguous ones
become ``unknown`` (see ``providers.base``). A worker holds an exclusive lock on
``NUDGELAB_HOME/workers/<id>.lock`` while it runs: that is how others know it is alive, and a
dead worker's lock is free.

``--once`` sends everything due now and returns; without it the worker keeps polling until
stopped (SIGTERM/SIGINT finish the messages in flight first).
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import signal
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, time as clock, timedelta, timezone
from pathlib import Path

from dispatch import outbox, spooling
from dispatch.campaign import QuietHours
from dispatch.ops import connect, parse_iso
from dispatch.policies.quiet_hours import next_allowed
from dispatch.providers.base import (Accepted, AmbiguousFailure, Outgoing, PermanentFailure, Provider,
                                     ProviderFailure, TemporaryFailure)

FAULT_ENV = "NUDGELAB_FAULT"  # test hook: "dispatch:<point>[:<n>]" kills the worker at the n-th pass of a point


def fault(point: str) -> None:
    """Kill this process (SIGKILL, no clean-up) at a named point, when a test asks for it."""
    wanted = os.environ.get(FAULT_ENV, "")
    if not wanted.startswith("dispatch:"):
        return
    parts = wanted.split(":")
    if parts[1] != point:
        return
    counter = _FAULT_COUNTS[point] = _FAULT_COUNTS.get(point, 0) + 1
    if counter >= (int(parts[2]) if len(parts) > 2 else 1):
        os.kill(os.getpid(), signal.SIGKILL)


_FAULT_COUNTS: dict[str, int] = {}
SPOOL_EVERY_SECONDS = 5.0


class TokenBucket:
    """At most ``rate`` acquisitions per second on average (bursts of up to ``burst``), shared by
    the threads sending through one provider."""

    def __init__(self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate, self.capacity = rate, burst or max(1.0, rate / 10)
        self.clock, self.sleep = clock, sleep
        self.tokens, self.stamp = self.capacity, clock()
        self.lock = threading.Lock()

    def acquire(self) -> None:
        while True:
            with self.lock:
                now = self.clock()
                self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
                self.stamp = now
                if self.tokens >= 1 - 1e-9:  # rounding must not leave a token a hair short forever
                    self.tokens = max(self.tokens - 1, 0.0)
                    return
                wait = (1 - self.tokens) / self.rate
            self.sleep(wait)


@dataclass
class WorkerOptions:
    once: bool = False
    batch: int = 200
    threads: int = 8
    poll_seconds: float = 1.0
    max_attempts: int = 5
    backoff_seconds: float = 2.0
    max_backoff_seconds: float = 600.0
    max_seconds: float | None = None     # stop after this long (a bounded run)


@dataclass
class WorkerSummary:
    counts: Counter = field(default_factory=Counter)
    recovered: Counter = field(default_factory=Counter)
    journeys: Counter = field(default_factory=Counter)
    spooled: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {"sent": self.counts["sent"], "retry": self.counts["retry"], "dead": self.counts["dead"],
                "unknown": self.counts["unknown"], "deferred_quiet_hours": self.counts["deferred_quiet_hours"],
                "cancelled": self.counts["cancelled"], "recovered": dict(self.recovered),
                "journeys": dict(self.journeys), "spooled": dict(self.spooled), "seconds": round(self.seconds, 3)}


def _quiet_of(row) -> QuietHours | None:
    if not row["quiet_start"] or not row["quiet_end"]:
        return None
    start = clock.fromisoformat(row["quiet_start"])
    end = clock.fromisoformat(row["quiet_end"])
    return QuietHours(start, end)


def _outgoing(row) -> Outgoing | None:
    address = row["address"] or {"sms": row["phone"], "rcs": row["phone"], "email": row["email"],
                                 "push": row["push_token"]}.get(row["channel"])
    if not address:
        return None
    extra = json.loads(row["extra"]) if row["extra"] else {}
    return Outgoing(row["message_id"], row["channel"], address, row["body"], row["subject"], row["campaign_id"],
                    row["encoding"], extra)


class Worker:
    def __init__(self, home: Path, ops_path: Path, spool_dir: Path, key: bytes, providers: dict[str, Provider],
                 options: WorkerOptions | None = None, plan_journeys: Callable[[datetime], Counter] | None = None,
                 progress: Callable[[str], None] | None = None) -> None:
        self.home, self.ops_path, self.spool_dir, self.key = home, ops_path, spool_dir, key
        self.providers = providers
        self.options = options or WorkerOptions()
        self.plan_journeys = plan_journeys
        self.progress = progress
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}"
        self.buckets = {n: TokenBucket(p.rate_per_second) for n, p in providers.items() if p.rate_per_second}
        self._local = threading.local()
        self._stop = threading.Event()
        self.summary = WorkerSummary()
        self._lock_handle = None
        self._count_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._conns: list = []

    # -- liveness ---------------------------------------------------------------------------------
    def _workers_dir(self) -> Path:
        path = self.home / "workers"
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return path

    def _hold_lock(self) -> None:
        handle = open(self._workers_dir() / f"{self.worker_id}.lock", "w")
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._lock_handle = handle

    def live_workers(self) -> set[str]:
        """Ids of workers whose lock is held (this one included); dead ones' files are removed."""
        alive = set()
        for path in self._workers_dir().glob("*.lock"):
            worker = path.name[: -len(".lock")]
            if worker == self.worker_id:
                alive.add(worker)
                continue
            try:
                with open(path, "r+") as handle:
                    try:
                        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        alive.add(worker)
                        continue
                path.unlink(missing_ok=True)
            except FileNotFoundError:
                continue
        return alive

    def stop(self) -> None:
        self._stop.set()

    # -- one message ------------------------------------------------------------------------------
    def _conn(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.ops_path)
            self._local.conn = conn
            with self._count_lock:
                self._conns.append(conn)
        return conn

    def _count(self, what: str, n: int = 1) -> None:
        with self._count_lock:
            self.summary.counts[what] += n

    def _backoff(self, attempts: int) -> timedelta:
        base = min(self.options.backoff_seconds * (2 ** max(attempts - 1, 0)), self.options.max_backoff_seconds)
        return timedelta(seconds=base * random.uniform(0.8, 1.2))

    def _locked(self, move, *args):
        """One outbox move, the process's threads taking turns: they wait on a Python lock (woken at
        once) instead of SQLite's busy handler, which sleeps milliseconds between tries."""
        with self._write_lock:
            return move(*args)

    def _send_one(self, row) -> None:
        conn = self._conn()
        message_id, provider_name = row["message_id"], row["provider"]
        outgoing = _outgoing(row)
        provider = self.providers[provider_name]
        if provider_name in self.buckets:
            self.buckets[provider_name].acquire()
        if not self._locked(outbox.mark_sending, conn, message_id, self.worker_id):
            return
        fault("before_call")
        try:
            accepted: Accepted = provider.send(outgoing)
        except TemporaryFailure as exc:
            attempts = row["attempts"] + 1
            if attempts >= self.options.max_attempts:
                self._locked(outbox.mark_dead, conn, message_id, f"{provider_name}: {exc} (after {attempts} attempts)")
                self._count("dead")
            else:
                self._locked(outbox.mark_retry, conn, message_id, f"{provider_name}: {exc}",
                                  datetime.now(timezone.utc) + self._backoff(attempts))
                self._count("retry")
            return
        except PermanentFailure as exc:
            self._locked(outbox.mark_dead, conn, message_id, f"{provider_name}: {exc}")
            self._count("dead")
            return
        except AmbiguousFailure as exc:
            self._locked(outbox.mark_unknown, conn, message_id, f"{provider_name}: {exc}")
            self._count("unknown")
            return
        except (ProviderFailure, Exception) as exc:  # noqa: BLE001 - a provider bug: the outcome is unknown
            self._locked(outbox.mark_unknown, conn, message_id, f"{provider_name}: unexpected {type(exc).__name__}: {exc}")
            self._count("unknown")
            return
        fault("after_call")
        self._locked(outbox.mark_sent, conn, message_id, accepted.provider_message_id, datetime.now(timezone.utc), accepted.detail)
        self._count("sent")
        fault("after_sent")

    # -- a batch ----------------------------------------------------------------------------------
    def _prepare(self, conn, rows: list, now: datetime) -> list:
        """Last checks before sending; returns the rows to send."""
        ready = []
        users = list({r["user_id"] for r in rows})
        marks = ", ".join("?" for _ in users)
        suppressed = {(u, ch) for u, ch in conn.execute(
            f"SELECT user_id, channel FROM suppressions WHERE user_id IN ({marks})", users)}
        for row in rows:
            if (row["user_id"], row["channel"]) in suppressed or (row["user_id"], "*") in suppressed:
                outbox.cancel(conn, row["message_id"], "the recipient opted out after it was queued")
                self._count("cancelled")
                continue
            quiet = _quiet_of(row)
            zones = tuple(json.loads(row["zones"] or "[]"))
            if quiet is not None and zones:
                allowed = next_allowed(now.replace(microsecond=0), zones, quiet)
                if allowed is not None and allowed > now:
                    outbox.release(conn, row["message_id"], allowed)
                    self._count("deferred_quiet_hours")
                    continue
            if _outgoing(row) is None:
                outbox.mark_dead(conn, row["message_id"], f"no {row['channel']} address for {row['user_id']} in contacts",
                                 expected=("claimed",))
                self._count("dead")
                continue
            ready.append(row)
        return ready

    def _lookup(self, provider: str, message_id: str) -> str | None:
        found = self.providers[provider].lookup(message_id) if provider in self.providers else None
        return None if found is None else (found.provider_message_id or "settled")

    def _next_due(self, conn) -> float | None:
        names = list(self.providers)
        marks = ", ".join("?" for _ in names)
        row = conn.execute(f"SELECT min(due_at) FROM messages WHERE state IN ('queued', 'retry') AND provider IN ({marks})",
                           names).fetchone()
        if not row or row[0] is None:
            return None
        return (parse_iso(row[0]) - datetime.now(timezone.utc)).total_seconds()

    def _say(self, line: str) -> None:
        if self.progress is not None:
            self.progress(line)

    def run(self) -> WorkerSummary:
        started = time.monotonic()
        self._hold_lock()
        conn = connect(self.ops_path)
        pool = ThreadPoolExecutor(max_workers=max(1, self.options.threads), thread_name_prefix="dispatch")
        try:
            self.summary.recovered = outbox.recover(conn, self.live_workers(), self._lookup, self.providers)
            if any(self.summary.recovered.values()):
                self._say("settled after a previous crash: " + ", ".join(f"{v} {k}" for k, v in self.summary.recovered.items()))
            self.summary.spooled.update(spooling.flush(conn, self.spool_dir, self.key, fault))
            last_report = last_flush = time.monotonic()
            in_flight: set[Future] = set()
            claimed: deque = deque()   # claimed and checked, not handed to a thread yet
            while not self._stop.is_set():
                now = datetime.now(timezone.utc)
                batch: list = []
                # keep the pool fed: claim the next batch while the last threads are still sending,
                # so that no batch waits for its slowest message before the next one starts
                if len(in_flight) + len(claimed) < self.options.threads:
                    if self.plan_journeys is not None:
                        self.summary.journeys.update(self.plan_journeys(now))
                    batch = outbox.claim(conn, self.worker_id, now, self.options.batch, self.providers)
                    fault("after_claim")
                    if batch:
                        claimed.extend(self._prepare(conn, batch, now))
                # a few sends queued per thread, not the whole batch: waiting on a handful of
                # futures is cheap, waiting on hundreds costs the sending threads their turns
                while claimed and len(in_flight) < 2 * self.options.threads:
                    in_flight.add(pool.submit(self._send_one, claimed.popleft()))
                if in_flight:
                    done, in_flight = wait(in_flight, timeout=self.options.poll_seconds, return_when=FIRST_COMPLETED)
                    for future in done:
                        future.result()  # a bug in sending is not swallowed
                    if time.monotonic() - last_flush > SPOOL_EVERY_SECONDS:
                        # fewer, larger spool files; what is not flushed yet is flagged, never lost
                        self.summary.spooled.update(spooling.flush(conn, self.spool_dir, self.key, fault))
                        last_flush = time.monotonic()
                    if time.monotonic() - last_report > 2:
                        last_report = time.monotonic()
                        c = self.summary.counts
                        self._say(f"sent {c['sent']:,} · retry {c['retry']:,} · dead {c['dead']:,} · unknown {c['unknown']:,}")
                if self.options.max_seconds is not None and time.monotonic() - started > self.options.max_seconds:
                    break
                if batch or in_flight or claimed:
                    continue
                due_in = self._next_due(conn)
                if self.options.once:
                    if due_in is None or due_in > 0:
                        break
                    continue
                self._stop.wait(min(self.options.poll_seconds, max(due_in, 0.05)) if due_in is not None
                                else self.options.poll_seconds)
        finally:
            # what was started finishes; what was claimed and not started goes back to the queue
            pool.shutdown(wait=True, cancel_futures=True)
            try:
                outbox.release_claims(conn, self.worker_id)
                self.summary.spooled.update(spooling.flush(conn, self.spool_dir, self.key, fault))
            finally:
                conn.close()
                for thread_conn in self._conns:
                    thread_conn.close()
                for provider in self.providers.values():
                    provider.close()
                if self._lock_handle is not None:
                    self._lock_handle.close()
                    (self._workers_dir() / f"{self.worker_id}.lock").unlink(missing_ok=True)
        self.summary.seconds = time.monotonic() - started
        return self.summary
