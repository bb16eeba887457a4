"""The planted incidents: a carrier blocking our link domain in one region, and a 3-hour gateway outage.

Both are placed deterministically from the window (not from the seed) so tests and readers of the
ground truth can find them: the outage on the first Tuesday or Thursday (a promotion day) from the
middle of the window, 09:00-12:00 UTC (European promotion time); the link block from 15:00 UTC on
the day three fifths into the window, until the end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import catalog as C
from .clock import DAY, HOUR, Window, iso


@dataclass(frozen=True)
class LinkBlock:
    """Human clicks of users in (region, carrier) at or after ``start`` survive with probability ``level``."""

    region: int
    carrier: int
    start: int
    level: float


@dataclass(frozen=True)
class GatewayOutage:
    """SMS sent through ``provider`` in [start, end) are delivered with probability ``delivery``."""

    provider: int
    start: int
    end: int
    delivery: float


@dataclass(frozen=True)
class Incidents:
    """All incidents of a scenario."""

    link_block: LinkBlock
    outage: GatewayOutage

    def truth(self) -> list[dict]:
        """The incidents as ground-truth records."""
        lb, go = self.link_block, self.outage
        return [
            {
                "id": "inc_link_domain_blocked",
                "kind": "link_domain_blocked",
                "description": f"{C.CARRIERS[lb.carrier].name} blocks the link domain {C.LINK_DOMAIN} for its "
                f"subscribers in {C.REGIONS[lb.region].code}: their human clicks fall to {lb.level:.0%} of normal "
                "from start to the end of the window (all channels; bot/preview fetches are unaffected)",
                "region": C.REGIONS[lb.region].code,
                "carrier": C.CARRIERS[lb.carrier].name,
                "metric": "click_rate",
                "start": iso(lb.start),
                "end": None,
                "relative_level": lb.level,
            },
            {
                "id": "inc_gateway_outage",
                "kind": "gateway_degradation",
                "description": f"SMS gateway {C.PROVIDERS[go.provider]} delivers only {go.delivery:.0%} of messages "
                "sent in [start, end) (3 hours); failures are 'failed' (SMPP throttling 0x00000058) or 'expired'",
                "provider": C.PROVIDERS[go.provider],
                "metric": "delivery_rate",
                "start": iso(go.start),
                "end": iso(go.end),
                "hours": (go.end - go.start) // HOUR,
                "delivery_probability": go.delivery,
            },
        ]


def plan_incidents(window: Window) -> Incidents:
    """Place the incidents in ``window``."""
    days = window.days
    day0 = window.start - window.start % DAY
    outage_day = days // 2
    for d in range(days // 2, days):
        if (window.start_weekday + d) % 7 in (1, 3):
            outage_day = d
            break
    outage_start = max(day0 + outage_day * DAY + 9 * HOUR, window.start)
    block_start = max(day0 + (days * 3 // 5) * DAY + 15 * HOUR, window.start)
    region = next(i for i, r in enumerate(C.REGIONS) if r.code == "US-CA")
    carrier = next(i for i, k in enumerate(C.CARRIERS) if k.name == "T-Mobile US")
    return Incidents(
        LinkBlock(region, carrier, block_start, 0.05),
        GatewayOutage(C.KANNEL_A, outage_start, outage_start + 3 * HOUR, 0.20),
    )


def in_outage(outage: GatewayOutage, provider: np.ndarray, t_send: np.ndarray) -> np.ndarray:
    """Which sends went through the degraded gateway during the outage."""
    return (provider == outage.provider) & (t_send >= outage.start) & (t_send < outage.end)


def blocked_clicks(block: LinkBlock, region: np.ndarray, carrier: np.ndarray, t_click: np.ndarray,
                   rng: np.random.Generator) -> np.ndarray:
    """Which human clicks (given the clicker's region and carrier) are lost to the link block."""
    hit = (region == block.region) & (carrier == block.carrier) & (t_click >= block.start)
    return hit & (rng.random(t_click.size) >= block.level)
