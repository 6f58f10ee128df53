"""Building reputation events, attributed to whoever held the address when it was observed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from portal.accounts.models import Allocation
from portal.lib.blockindex import BlockIndex
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


def holder_index(when: datetime) -> BlockIndex[Any]:
    """Who held each block at `when`, for `holder_at` answers without a query per address."""
    rows = Allocation.objects.held_at(when).order_by("family", "first", "assigned_at")
    return BlockIndex.of(
        (family, int(first, 16), int(last, 16), tenant_id)
        for family, first, last, tenant_id in rows.values_list("family", "first", "last", "tenant_id")
    )
