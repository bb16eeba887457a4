"""The receiver: delivery-report callbacks per second with the spool fsync'd, and a burst of
10,000 concurrent callbacks, beside a minimal ASGI app that only answers 200 (same uvicorn
settings, same client, same run).

The client is asyncio on raw sockets, so that it is not the limit: ``CONNECTIONS`` keep-alive
connections send ``BENCH_RECEIVER_CALLBACKS`` callbacks (default 20,000) as fast as answers come;
the burst opens 10,000 connections at once, one callback each. Afterwards the spool must hold
every callback that was answered 200. Target: ≥ 1,000 callbacks/s, none of the burst lost.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONNECTIONS = 64
BURST = 10_000

MINIMAL_APP = """
import sys, uvicorn
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False, backlog=4096)
"""


def _start(argv: list[str], env: dict, port: int) -> subprocess.Popen:
    import socket

    process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not start: {process.stderr.read().decode()[-1000:]}")


def _request(i: int, keep_alive: bool) -> bytes:
    path = f"/kannel/dlr?message_id=m-bench-{i}&type=1&answer=&ts=1796137594&smsc=fake&id=k-{i}"
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + ("" if keep_alive else "Connection: close\r\n") + "\r\n").encode()


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    if length:
        await reader.readexactly(length)
    return status


async def _sustained(port: int, count: int) -> tuple[float, int]:
    counter = iter(range(count))
    ok = 0

    async def connection():
        nonlocal ok
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for i in counter:
            writer.write(_request(i, True))
            if await _read_response(reader) == 200:
                ok += 1
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(CONNECTIONS)))
    return time.perf_counter() - start, ok


async def _burst(port: int, count: int, offset: int) -> tuple[float, int, int]:
    ok = failed = 0

    async def one(i: int):
        nonlocal ok, failed
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(_request(offset + i, False))
            status = await _read_response(reader)
            writer.close()
        except (OSError, asyncio.IncompleteReadError):
            failed += 1
            return
        if status == 200:
            ok += 1
        else:
            failed += 1

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    return time.perf_counter() - start, ok, failed


def bench_receiver(line: Callable, scratch: Path | None = None) -> dict:
    from dispatch.providers.kannel_local import free_port

    count = int(os.environ.get("BENCH_RECEIVER_CALLBACKS", "20000"))
    folder = Path(tempfile.mkdtemp(prefix="nudgelab-bench-receiver-", dir=scratch))
    env = dict(os.environ, NUDGELAB_HOME=str(folder / "home"), NUDGELAB_HASH_KEY="bench-hash-key",
               NUDGELAB_RECEIVER_ROTATE_SECONDS="1")
    results: dict = {}
    for name, argv_for in (("minimal ASGI app (baseline)", lambda p: [sys.executable, "-c", MINIMAL_APP, str(p)]),
                           ("nudgelab serve (spool fsync'd)", lambda p: [sys.executable, "-m", "nudgelab.cli", "serve",
                                                                        "--port", str(p)])):
        port = free_port()
        process = _start(argv_for(port), env, port)
        try:
            seconds, ok = asyncio.run(_sustained(port, count))
            burst_seconds, burst_ok, burst_failed = asyncio.run(_burst(port, BURST, count))
        finally:
            process.terminate()
            process.wait(timeout=30)
        key = "baseline" if "baseline" in name else "receiver"
        results[key] = {"callbacks": count, "seconds": round(seconds, 2), "per_second": round(ok / seconds, 1),
                        "ok": ok, "burst": BURST, "burst_ok": burst_ok, "burst_failed": burst_failed,
                        "burst_seconds": round(burst_seconds, 2)}
        line(f"{name}: {count:,} callbacks on {CONNECTIONS} connections", seconds, None,
             f"{ok / seconds:,.0f}/s; burst of {BURST:,} at once: {burst_ok:,} answered 200, {burst_failed:,} failed")
    from ingest.spool import closed_files

    spooled = set()
    for path in closed_files(folder / "home" / "spool"):
        for text in path.read_text().splitlines():
            spooled.add(text.split("message_id=", 1)[1].split("&", 1)[0])
    answered = results["receiver"]["ok"] + results["receiver"]["burst_ok"]
    results["receiver"]["spooled"] = len(spooled)
    results["ratio"] = round(results["receiver"]["per_second"] / results["baseline"]["per_second"], 2)
    line("callbacks in the spool afterwards (every 200 must be there)", 0.0, None,
         f"{len(spooled):,} of {answered:,} answered; receiver {results['ratio']:.2f}× the minimal app; "
         "targets ≥ 1,000/s and none lost")
    if len(spooled) < answered:
        raise RuntimeError(f"the spool holds {len(spooled)} callbacks but {answered} were answered 200")
    return results


if __name__ == "__main__":
    def _print(label: str, seconds: float, rows: int | None = None, extra: str = "") -> None:
        print(f"  {label:<62} {seconds:8.2f} s  {extra}", flush=True)

    print(bench_receiver(_print))
