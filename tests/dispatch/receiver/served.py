"""A real receiver process (``nudgelab serve`` on 127.0.0.1) for tests, and a raw HTTP client."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from dispatch.providers.kannel_local import free_port
from ingest.spool import closed_files
from tests.conftest import ROOT, TEST_KEY

BROWSER = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0 Mobile Safari/537.36"


class Served:
    def __init__(self, home: Path, **env: str) -> None:
        self.home, self.port, self.env = home, free_port(), env
        self.process: subprocess.Popen | None = None

    def start(self) -> "Served":
        env = dict(os.environ, NUDGELAB_HOME=str(self.home), NUDGELAB_HASH_KEY=TEST_KEY,
                   NUDGELAB_RECEIVER_ROTATE_SECONDS="0.3", **self.env)
        self.process = subprocess.Popen([sys.executable, "-m", "nudgelab.cli", "serve", "--port", str(self.port)],
                                        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if self.get("/healthz")[0] == 200:
                    return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"the receiver did not start: {self.process.stderr.read().decode()[-2000:]}")

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            for k, v in (headers or {}).items():
                conn.putheader(k, v)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            response = conn.getresponse()
            return response.status, response.read(), dict(response.getheaders())
        finally:
            conn.close()

    def get(self, path: str, **headers):
        return self.request("GET", path, headers=headers)

    def stop(self, sig=signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=15)



def wait_closed(home: Path, seconds: float = 5.0) -> list[Path]:
    time.sleep(0.7)  # past the receiver's rotation (0.3 s in the tests)
    return closed_files(home / "spool")
