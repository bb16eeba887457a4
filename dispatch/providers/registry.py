"""The providers this environment configures, and which one each channel uses.

Built from environment variables (credentials never live in code, campaign files or logs):
Kannel when ``NUDGELAB_KANNEL_URL`` is set, SMTP when ``NUDGELAB_SMTP_HOST`` is, the push and
RCS webhooks when ``NUDGELAB_PUSH_WEBHOOK_URL`` / ``NUDGELAB_RCS_WEBHOOK_URL`` are; the file
provider always (``NUDGELAB_HOME/outbox/``). A channel goes to its real provider when one is
configured, else to the file — and ``NUDGELAB_DISPATCH_PROVIDERS=sms=file,email=smtp`` (or a
campaign's ``providers:``) pins a choice.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from dispatch.providers.base import Provider
from dispatch.providers.file import FileProvider
from dispatch.providers.kannel import KannelProvider
from dispatch.providers.smtp import SmtpProvider
from dispatch.providers.webhook import WebhookProvider

PREFERRED = {"sms": "kannel", "rcs": "rcs-webhook", "email": "smtp", "push": "push-webhook"}


class ProviderConfigError(ValueError):
    """A provider the environment names but cannot build (one line, no secrets)."""


def _rate(env: Mapping[str, str], name: str) -> float | None:
    raw = env.get(name)
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError as exc:
        raise ProviderConfigError(f"{name}={raw!r} is not a number of messages per second") from exc
    if value <= 0:
        raise ProviderConfigError(f"{name} must be positive")
    return value


def configured(home: Path, env: Mapping[str, str] | None = None) -> dict[str, Provider]:
    """Every provider the environment configures, by name."""
    env = os.environ if env is None else env
    out: dict[str, Provider] = {"file": FileProvider(home / "outbox", _rate(env, "NUDGELAB_FILE_RATE"))}
    try:
        if env.get("NUDGELAB_KANNEL_URL"):
            out["kannel"] = KannelProvider.from_env(env)
        if env.get("NUDGELAB_SMTP_HOST"):
            out["smtp"] = SmtpProvider.from_env(env)
    except (ValueError, KeyError) as exc:
        raise ProviderConfigError(str(exc)) from exc
    for channel in ("push", "rcs"):
        url = env.get(f"NUDGELAB_{channel.upper()}_WEBHOOK_URL")
        if url:
            if not url.startswith(("http://", "https://")):
                raise ProviderConfigError(f"NUDGELAB_{channel.upper()}_WEBHOOK_URL is not an http(s) URL")
            out[f"{channel}-webhook"] = WebhookProvider(url, env.get(f"NUDGELAB_{channel.upper()}_WEBHOOK_TOKEN") or None,
                                                        rate_per_second=_rate(env, f"NUDGELAB_{channel.upper()}_WEBHOOK_RATE"),
                                                        name=f"{channel}-webhook")
    return out


def channel_providers(available: Mapping[str, Provider], pinned: Mapping[str, str] | None = None,
                      env: Mapping[str, str] | None = None) -> dict[str, str]:
    """channel -> provider name: pinned (campaign), then NUDGELAB_DISPATCH_PROVIDERS, then the
    real provider when configured, else the file."""
    env = os.environ if env is None else env
    chosen = {ch: (PREFERRED[ch] if PREFERRED[ch] in available else "file") for ch in PREFERRED}
    for part in (env.get("NUDGELAB_DISPATCH_PROVIDERS") or "").split(","):
        if part.strip():
            channel, _, name = part.partition("=")
            chosen[channel.strip()] = name.strip()
    chosen.update(pinned or {})
    for channel, name in chosen.items():
        if name not in available:
            raise ProviderConfigError(f"{channel} is to go through provider {name!r}, which this environment does not "
                                      f"configure (configured: {', '.join(sorted(available))})")
    return chosen
