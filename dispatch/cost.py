"""What a campaign will cost before it is sent: a price per SMS segment, per RCS message, per
e-mail and per push notification.

Defaults are typical list prices (USD); set ``NUDGELAB_PRICE_SMS`` (per segment),
``NUDGELAB_PRICE_RCS``, ``NUDGELAB_PRICE_EMAIL``, ``NUDGELAB_PRICE_PUSH`` and
``NUDGELAB_PRICE_CURRENCY`` to your contract's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

DEFAULT_PRICES = {"sms": 0.0079, "rcs": 0.0100, "email": 0.0001, "push": 0.0}


def prices(env: Mapping[str, str] | None = None) -> tuple[dict[str, float], str]:
    """(price per unit by channel, currency)."""
    env = os.environ if env is None else env
    out = {}
    for channel, default in DEFAULT_PRICES.items():
        raw = env.get(f"NUDGELAB_PRICE_{channel.upper()}")
        try:
            out[channel] = float(raw) if raw not in (None, "") else default
        except ValueError as exc:
            raise ValueError(f"NUDGELAB_PRICE_{channel.upper()}={raw!r} is not a number") from exc
    return out, env.get("NUDGELAB_PRICE_CURRENCY", "USD")


def estimate(units: Mapping[str, int], env: Mapping[str, str] | None = None) -> tuple[dict[str, float], str]:
    """Cost by channel of ``units`` (SMS segments; messages for the other channels)."""
    table, currency = prices(env)
    return {channel: round(count * table.get(channel, 0.0), 4) for channel, count in units.items()}, currency
