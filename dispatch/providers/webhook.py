"""An HTTP webhook: one JSON POST per message, for push notifications (a push service or your
own gateway), RCS (an aggregator's API) and operator alerts.

Every request carries ``Idempotency-Key: <message id>``, so the receiving service can drop a
repeat. That is what makes a timeout safe to retry here, unlike Kannel: the endpoint must honour
the key (all mainstream push and messaging APIs do). 2xx is accepted (an ``id`` in a JSON answer
becomes the provider's message id), 408/429/5xx and network errors are retried, any other 4xx is
a refusal.

Body: ``{"message_id", "channel", "to", "title", "body", "data"}`` plus ``card`` and
``fallback_text`` for RCS, and whatever ``extra["payload"]`` holds (alerts send the incident).

Environment: ``NUDGELAB_PUSH_WEBHOOK_URL`` and ``NUDGELAB_RCS_WEBHOOK_URL``, each with an optional
``..._TOKEN`` (sent as ``Authorization: Bearer``) and ``..._RATE`` (messages per second).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

from dispatch.providers.base import Accepted, Outgoing, PermanentFailure, TemporaryFailure


def payload(message: Outgoing) -> dict:
    body: dict = {"message_id": message.message_id, "channel": message.channel, "to": message.to,
                  "title": message.extra.get("title") or message.subject, "body": message.body,
                  "campaign_id": message.campaign_id}
    if message.channel == "rcs" and message.extra.get("card"):
        body["card"] = message.extra["card"]
        body["fallback_text"] = message.extra["card"].get("fallback_text")
    if message.extra.get("quick_replies"):
        body["quick_replies"] = message.extra["quick_replies"]
    if message.extra.get("payload") is not None:
        body["data"] = message.extra["payload"]
    return body


@dataclass
class WebhookProvider:
    url: str
    token: str | None = None
    timeout: float = 10.0
    rate_per_second: float | None = None
    name: str = "webhook"

    def send(self, message: Outgoing) -> Accepted:
        data = json.dumps(payload(message), ensure_ascii=False, default=str).encode("utf-8")
        headers = {"Content-Type": "application/json", "User-Agent": "nudgelab-dispatch",
                   "Idempotency-Key": message.message_id}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.url, data=data, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                text = response.read(65536).decode("utf-8", "replace")
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
            if status in (408, 429) or status >= 500:
                raise TemporaryFailure(f"{self.name} answered HTTP {status}") from exc
            raise PermanentFailure(f"{self.name} refused the message: HTTP {status}") from exc
        except (urllib.error.URLError, OSError) as exc:
            # the Idempotency-Key makes a repeat harmless, so even a timeout after sending is retried
            raise TemporaryFailure(f"{self.name} unreachable ({type(exc).__name__}: {getattr(exc, 'reason', exc)})") from exc
        provider_id = None
        try:
            answer = json.loads(text) if text.strip() else {}
            if isinstance(answer, dict) and answer.get("id") is not None:
                provider_id = str(answer["id"])
        except ValueError:
            pass
        return Accepted(provider_id, f"HTTP {status}")

    def lookup(self, message_id: str) -> Accepted | None:
        return None

    def close(self) -> None:
        pass
