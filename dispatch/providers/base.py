"""What every provider is: ``send(message) -> Accepted`` or one of three errors that say whether
sending again is safe.

* ``TemporaryFailure`` — the provider did not take the message (connection refused, 429, 5xx
  answered before acceptance): retried with backoff;
* ``PermanentFailure`` — it refused the message for good (invalid number, authentication): dead;
* ``AmbiguousFailure`` — the request may have reached the provider and nobody knows whether it was
  taken (a timeout or a dropped connection after the request went out). Never retried blindly:
  the message becomes ``unknown`` until a receipt settles it or an operator decides, because
  sending it again could reach the person twice.

A provider that can look a message up afterwards (the file provider; a real API with an
idempotency key) implements ``lookup``, which settles a send a crash interrupted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Outgoing:
    """One message as handed to a provider (the raw address only lives here and in ops.sqlite)."""

    message_id: str
    channel: str
    to: str
    body: str
    subject: str | None = None
    campaign_id: str | None = None
    encoding: str | None = None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Accepted:
    provider_message_id: str | None = None
    detail: str = ""


class ProviderFailure(Exception):
    """Base of the three failures; the message is the provider's answer, one line, no address."""


class TemporaryFailure(ProviderFailure):
    pass


class PermanentFailure(ProviderFailure):
    pass


class AmbiguousFailure(ProviderFailure):
    pass


class Provider(Protocol):
    name: str
    rate_per_second: float | None

    def send(self, message: Outgoing) -> Accepted:
        """Hand one message over, or raise one of the failures above."""

    def lookup(self, message_id: str) -> Accepted | None:
        """The provider's record of a message it accepted, when it can tell; else None."""

    def close(self) -> None:
        """Release connections."""
