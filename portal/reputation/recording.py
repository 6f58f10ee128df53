"""Building reputation events, attributed to whoever held the address when it was observed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from portal.lib.ipblocks import Network
from portal.reputation.models import ReputationEvent, holder_at


def new_event(
    *,
    network: Network | None,
    source: str,
    kind: str,
    observed_at: datetime,
    tenant_id: Any = None,
    **fields: Any,
) -> ReputationEvent:
    """An unsaved event, attributed to whoever held the address when it was observed."""
    event = ReputationEvent(source=source, kind=kind, observed_at=observed_at, **fields)
    if network is not None:
        event.set_network(network)
        holder = holder_at(network, observed_at)
        event.tenant_id = holder.pk if holder else tenant_id
    else:
        event.family, event.first, event.last, event.cidr = 0, "", "", ""
        event.tenant_id = tenant_id
    return event
