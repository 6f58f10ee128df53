"""Turning observations into reputation events: DNSBL transitions, reports, notes."""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Any

from django.db import transaction

from portal.enforcement import suspension
from portal.lib.ipblocks import Network
from portal.reputation.models import Kind, ListingStatus, ReputationEvent, Source, holder_at


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


def record_listing(
    *, address: str, zone: str, codes: list[dict[str, Any]], observed_at: datetime
) -> ReputationEvent | None:
    """Store the DNSBL state of an address and write an event only when it changed."""
    listed = bool(codes)
    code_values = sorted(c["code"] for c in codes)
    with transaction.atomic():
        status, created = ListingStatus.objects.select_for_update().get_or_create(
            address=address,
            zone=zone,
            defaults={
                "listed": listed,
                "codes": code_values,
                "since": observed_at,
                "checked_at": observed_at,
            },
        )
        changed = (created and listed) or (
            not created and (status.listed != listed or (listed and status.codes != code_values))
        )
        if not created:
            if changed:
                status.listed, status.codes, status.since = listed, code_values, observed_at
            status.checked_at = observed_at
            status.save()
        if not changed:
            return None
        network = ipaddress.ip_network(address)
        if listed:
            names = ", ".join(sorted({c.get("list", c["code"]) for c in codes}))
            event = new_event(
                network=network,
                source=Source.DNSBL,
                kind=Kind.LISTED,
                observed_at=observed_at,
                zone=zone,
                code=",".join(code_values),
                meaning="; ".join(c.get("meaning", "") for c in codes)[:300],
                abuse=any(c.get("abuse", True) for c in codes),
                summary=f"Listed on {names} ({zone})",
                evidence={"codes": codes},
            )
        else:
            event = new_event(
                network=network,
                source=Source.DNSBL,
                kind=Kind.DELISTED,
                observed_at=observed_at,
                zone=zone,
                summary=f"No longer listed on {zone}",
            )
        event.save()
        suspension.apply_policy(event)
        return event
