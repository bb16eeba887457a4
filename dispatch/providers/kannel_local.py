"""A Kannel gateway on loopback for trying the SMS path without a carrier: ``bearerbox`` +
``smsbox`` + the fake SMSC of ``kannel-extras``, each on a free 127.0.0.1 port.

The tests and the benchmark start one; a developer can too::

    with LocalKannel(Path("/tmp/kannel")) as gateway:
        print(gateway.sendsms_url)          # NUDGELAB_KANNEL_URL
        ...
        gateway.received()                  # what reached the "phones"

The fake SMSC (``/usr/lib/kannel/test/fakesmsc``, interactive) sends only what ``inbound`` writes
to its input (an inbound message from a phone), acknowledges every message (so Kannel reports ``8`` accepted by the SMSC, then ``1`` delivered) and logs each
one as ``Got message N: <from to text body>``. It exits on end-of-file of its standard input, so
that is kept open on a pipe for as long as it runs. The configuration is the README's Kannel
section with free ports: admin, smsbox and sendsms interfaces bound to 127.0.0.1, the SMSC port
accepting only 127.0.0.1, long messages allowed (``max-messages = 10``, ``concatenation``), and a
failed delivery-report callback retried (``http-request-retry``; Kannel drops it otherwise).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

BEARERBOX = Path("/usr/sbin/bearerbox")
SMSBOX = Path("/usr/sbin/smsbox")
FAKESMSC = Path("/usr/lib/kannel/test/fakesmsc")
USERNAME, PASSWORD, ADMIN_PASSWORD = "nudgelab", "local-sendsms", "local-admin"
MO_ESCAPES = "from=%p&to=%P&text=%a&time=%T&smsc=%i&id=%I"   # %T: Unix time (%t has no zone)
GOT = re.compile(r"Got message \d+: <(\S+) (\S+) (\S+) ?(.*)>$")


class KannelMissing(RuntimeError):
    """Kannel is not installed here (``apt-get install kannel kannel-extras``; ``make test`` does)."""


def missing() -> list[str]:
    return [str(p) for p in (BEARERBOX, SMSBOX, FAKESMSC) if not os.access(p, os.X_OK)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Received:
    """One message as the fake SMSC got it."""

    sender: str
    to: str
    kind: str
    text: str


def config(folder: Path, admin: int, smsbox: int, smsc: int, sendsms: int, mo_url: str | None = None) -> str:
    if mo_url:  # inbound messages to the receiver; its answer (if any) goes back as the reply
        service = f'''group = sms-service
keyword = default
get-url = "{mo_url}"
max-messages = 1
omit-empty = true
'''
    else:
        service = '''group = sms-service
keyword = default
text = "no service"
max-messages = 0
'''
    return f"""group = core
admin-port = {admin}
admin-password = {ADMIN_PASSWORD}
admin-interface = 127.0.0.1
admin-allow-ip = "127.0.0.1"
admin-deny-ip = "*.*.*.*"
smsbox-port = {smsbox}
smsbox-interface = 127.0.0.1
box-allow-ip = "127.0.0.1"
box-deny-ip = "*.*.*.*"
dlr-storage = internal
log-level = 1
log-file = "{folder / 'bearerbox.log'}"
access-log = "{folder / 'access.log'}"
access-log-time = gmt

group = smsc
smsc = fake
smsc-id = fake
port = {smsc}
connect-allow-ip = "127.0.0.1"

group = smsbox
bearerbox-host = 127.0.0.1
sendsms-port = {sendsms}
sendsms-interface = 127.0.0.1
http-request-retry = 3
http-queue-delay = 1
log-level = 1
log-file = "{folder / 'smsbox.log'}"

group = sendsms-user
username = {USERNAME}
password = {PASSWORD}
max-messages = 10
concatenation = true

{service}"""


class LocalKannel:
    def __init__(self, folder: Path, start_timeout: float = 30.0, receiver: str | None = None) -> None:
        self.folder = folder
        self.receiver = receiver      # when given, inbound messages go to its /kannel/mo
        self.start_timeout = start_timeout
        self.admin, self.smsbox_port, self.smsc, self.sendsms = (free_port() for _ in range(4))
        self.processes: dict[str, subprocess.Popen] = {}
        self._fake_log = folder / "fakesmsc.log"

    @property
    def sendsms_url(self) -> str:
        return f"http://127.0.0.1:{self.sendsms}/cgi-bin/sendsms"

    def env(self, receiver: str | None = None) -> dict[str, str]:
        """The environment that points the Kannel provider at this gateway."""
        out = {"NUDGELAB_KANNEL_URL": self.sendsms_url, "NUDGELAB_KANNEL_USERNAME": USERNAME,
               "NUDGELAB_KANNEL_PASSWORD": PASSWORD, "NUDGELAB_KANNEL_FROM": "12345"}
        if receiver:
            out["NUDGELAB_RECEIVER_URL"] = receiver
        return out

    def _spawn(self, name: str, argv: list[str], **kwargs) -> None:
        log = open(self.folder / f"{name}.out", "ab")
        self.processes[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.folder,
                                                start_new_session=True, **kwargs)
        log.close()

    def _wait_port(self, port: int, name: str, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.processes[name].poll() is not None:
                raise RuntimeError(f"{name} exited with {self.processes[name].returncode}; see {self.folder / (name + '.out')}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{name} did not open 127.0.0.1:{port} within {self.start_timeout:.0f}s")

    def _status(self) -> str:
        url = f"http://127.0.0.1:{self.admin}/status.txt?password={ADMIN_PASSWORD}"
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.read().decode("utf-8", "replace")

    def start(self) -> "LocalKannel":
        gone = missing()
        if gone:
            raise KannelMissing("Kannel is not installed (missing " + ", ".join(gone) + "): "
                                "`apt-get install -y kannel kannel-extras`, or `make test`, which does it")
        self.folder.mkdir(parents=True, exist_ok=True)
        conf = self.folder / "kannel.conf"
        mo_url = f"{self.receiver.rstrip('/')}/kannel/mo?{MO_ESCAPES}" if self.receiver else None
        conf.write_text(config(self.folder, self.admin, self.smsbox_port, self.smsc, self.sendsms, mo_url))
        deadline = time.monotonic() + self.start_timeout
        try:
            self._spawn("bearerbox", [str(BEARERBOX), str(conf)])
            self._wait_port(self.smsc, "bearerbox", deadline)
            self._wait_port(self.smsbox_port, "bearerbox", deadline)
            fake_log = open(self._fake_log, "ab")
            self.processes["fakesmsc"] = subprocess.Popen(
                [str(FAKESMSC), "-H", "127.0.0.1", "-r", str(self.smsc), "-m", "1000000"], stdin=subprocess.PIPE,
                stdout=fake_log, stderr=subprocess.STDOUT, cwd=self.folder, start_new_session=True)
            fake_log.close()
            self._spawn("smsbox", [str(SMSBOX), str(conf)])
            self._wait_port(self.sendsms, "smsbox", deadline)
            while time.monotonic() < deadline:  # the SMSC link is up when bearerbox calls it online
                if self.processes["fakesmsc"].poll() is not None:
                    raise RuntimeError(f"fakesmsc exited; see {self._fake_log}")
                try:
                    if re.search(r"fake\[fake\].*\(online", self._status()):
                        return self
                except OSError:
                    pass
                time.sleep(0.1)
            raise RuntimeError(f"the fake SMSC did not come online within {self.start_timeout:.0f}s")
        except BaseException:
            self.stop()
            raise

    def inbound(self, sender: str, to: str, text: str) -> None:
        """A message from a phone (``sender``) to our number, injected at the fake SMSC."""
        process = self.processes["fakesmsc"]
        assert process.stdin is not None
        process.stdin.write(f"{sender} {to} text {text}\n".encode("utf-8"))
        process.stdin.flush()

    def received(self) -> list[Received]:
        """Every message the fake SMSC got so far, in order."""
        if not self._fake_log.exists():
            return []
        out = []
        for line in self._fake_log.read_text(encoding="utf-8", errors="replace").splitlines():
            found = GOT.search(line)
            if found:
                out.append(Received(*found.groups()))
        return out

    def stop(self) -> None:
        for name in ("smsbox", "fakesmsc", "bearerbox"):
            process = self.processes.pop(name, None)
            if process is None or process.poll() is not None:
                continue
            if process.stdin:
                process.stdin.close()
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(timeout=5)

    def __enter__(self) -> "LocalKannel":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
