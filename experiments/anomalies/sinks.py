"""Where alerts go: a log file, an HTTP webhook (JSON POST) and e-mail over SMTP.

Configured by environment variables (read by ``sinks_from_env``):

* ``NUDGELAB_ALERT_LOG`` — file that receives one JSON line per alert (default
  ``$NUDGELAB_HOME/alerts.log``; set it to ``off`` to disable);
* ``NUDGELAB_ALERT_WEBHOOK`` — URL that receives each alert as a JSON POST (any 2xx is success);
* ``NUDGELAB_ALERT_SMTP`` — ``host:port`` of an SMTP server, with ``NUDGELAB_ALERT_EMAIL_TO``
  (comma-separated recipients, required) and ``NUDGELAB_ALERT_EMAIL_FROM`` (default
  ``nudgelab@localhost``);
* ``NUDGELAB_ALERT_RETRIES`` — attempts per alert and sink within one run (default 3);
* ``NUDGELAB_ALERT_BACKOFF`` — seconds before the first retry, doubling after each (default 0.5).

Delivery is at least once: an alert whose sink is down stays pending in the outbox and is tried
again on the next run; receivers can deduplicate on ``incident_id``.
"""

from __future__ import annotations

import json
import os
import smtplib
import time
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from warehouse.settings import Settings


class Sink(Protocol):
    name: str

    def send(self, alert: dict) -> None:
        """Deliver one alert or raise."""


def _text(alert: dict) -> str:
    return (f"[{alert['severity']}] {alert['metric']} {alert['direction']} on {alert['slice']}: "
            f"observed {alert['observed_value']:.4g} vs expected {alert['expected_value']:.4g} "
            f"from {alert['start_at']} to {alert['end_at']} (~{alert['messages_affected']:.0f} messages)")


@dataclass
class LogSink:
    path: Path
    name: str = "log"

    def send(self, alert: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(alert, default=str, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())


@dataclass
class WebhookSink:
    url: str
    timeout: float = 5.0
    name: str = "webhook"

    def send(self, alert: dict) -> None:
        body = json.dumps(alert, default=str).encode("utf-8")
        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/json", "User-Agent": "nudgelab-alerts"})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            if not 200 <= response.status < 300:
                raise RuntimeError(f"webhook {self.url} answered HTTP {response.status}")


@dataclass
class SmtpSink:
    host: str
    port: int
    to: list[str]
    sender: str = "nudgelab@localhost"
    timeout: float = 10.0
    name: str = "email"

    def send(self, alert: dict) -> None:
        message = EmailMessage()
        message["Subject"] = f"nudgelab alert: {alert['metric']} {alert['direction']} on {alert['slice']}"
        message["From"] = self.sender
        message["To"] = ", ".join(self.to)
        message["X-Nudgelab-Incident"] = alert["incident_id"]
        message.set_content(_text(alert) + "\n\n" + json.dumps(alert, default=str, indent=2, sort_keys=True))
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            smtp.send_message(message)


def sinks_from_env(settings: Settings, env: dict[str, str] | None = None) -> list[Sink]:
    """The sinks configured by the environment (see the module docstring)."""
    env = dict(os.environ if env is None else env)
    sinks: list[Sink] = []
    log = env.get("NUDGELAB_ALERT_LOG", str(settings.home / "alerts.log"))
    if log and log.lower() != "off":
        sinks.append(LogSink(Path(log)))
    if env.get("NUDGELAB_ALERT_WEBHOOK"):
        sinks.append(WebhookSink(env["NUDGELAB_ALERT_WEBHOOK"]))
    if env.get("NUDGELAB_ALERT_SMTP"):
        host, _, port = env["NUDGELAB_ALERT_SMTP"].rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"NUDGELAB_ALERT_SMTP={env['NUDGELAB_ALERT_SMTP']!r} is not host:port")
        to = [a.strip() for a in env.get("NUDGELAB_ALERT_EMAIL_TO", "").split(",") if a.strip()]
        if not to:
            raise ValueError("NUDGELAB_ALERT_SMTP is set but NUDGELAB_ALERT_EMAIL_TO is empty: give the recipients")
        sinks.append(SmtpSink(host, int(port), to, env.get("NUDGELAB_ALERT_EMAIL_FROM", "nudgelab@localhost")))
    return sinks


def retry_policy(env: dict[str, str] | None = None) -> tuple[int, float]:
    env = dict(os.environ if env is None else env)
    return max(1, int(env.get("NUDGELAB_ALERT_RETRIES", "3"))), max(0.0, float(env.get("NUDGELAB_ALERT_BACKOFF", "0.5")))


def deliver(sink: Sink, alert: dict, attempts: int, backoff: float) -> tuple[bool, int, str]:
    """Try up to ``attempts`` times with exponential backoff; (delivered, attempts made, last error)."""
    error = ""
    for k in range(attempts):
        try:
            sink.send(alert)
            return True, k + 1, ""
        except Exception as exc:  # noqa: BLE001 - any failure of a sink is retried, then recorded
            error = f"{type(exc).__name__}: {exc}"[:500]
            if k + 1 < attempts:
                time.sleep(backoff * (2 ** k))
    return False, attempts, error
