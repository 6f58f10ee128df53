"""Publishing exemption changes: the change feed row and the webhook deliveries, written in the
caller's transaction so that neither can exist without the other."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Exists, Max, OuterRef, QuerySet, Subquery
from django.utils import timezone

from portal.core.models import Tally
from portal.core.wakeup import notify_workers
from portal.enforcement.models import Delivery, Exemption, FeedChange, WebhookEndpoint

# Any constant works; every process that appends to the feed takes the same lock.
FEED_LOCK = 7_250_026
# The highest sequence number retention may have removed. A consumer whose cursor is below it
# would miss changes, so the feed tells it to start over from a snapshot.
PRUNED_THROUGH = "feed:pruned_through"


def _lock_feed() -> None:
    # Held until commit: the next writer reads max(seq) only after this change is visible, so
    # sequence order equals commit order. SQLite write transactions are serial already.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FEED_LOCK])


def exemption_data(exemption: Exemption, sequence: int) -> dict[str, Any]:
    return {
        "id": str(exemption.id),
        "tenant": exemption.tenant.external_id,
        "block": exemption.cidr,
        "family": exemption.family,
        "ports": [25],
        "state": exemption.state,
        "expires_at": exemption.expires_at.isoformat() if exemption.expires_at else None,
        "request": str(exemption.request_id) if exemption.request_id else None,
        "sequence": sequence,
    }


def publish(exemption: Exemption, *, event: str, op: str) -> FeedChange:
    """Append to the change feed and queue `event` for every endpoint that wants it."""
    _lock_feed()
    seq = (FeedChange.objects.aggregate(m=Max("seq"))["m"] or 0) + 1
    now = timezone.now()
    change = FeedChange.objects.create(
        seq=seq,
        exemption=exemption,
        op=op,
        event=event,
        cidr=exemption.cidr,
        family=exemption.family,
        tenant_external_id=exemption.tenant.external_id,
        at=now,
    )
    body = json.dumps(
        {"type": event, "timestamp": now.isoformat(), "data": exemption_data(exemption, seq)},
        separators=(",", ":"),
    )
    endpoints = [e for e in WebhookEndpoint.objects.enabled() if e.wants(event)]
    Delivery.objects.bulk_create(
        Delivery(endpoint=e, event=event, body=body, created_at=now) for e in endpoints
    )
    # Always: the workers build the new version's feed snapshots as well as deliver webhooks.
    notify_workers()
    return change


def pruned_through() -> int:
    value = Tally.objects.filter(name=PRUNED_THROUGH).values_list("value", flat=True).first()
    return int(value or 0)


def prunable_changes(cutoff: datetime) -> QuerySet[FeedChange]:
    """Changes older than `cutoff` that the portal can do without.

    The newest change stays because the next sequence number is max(seq) + 1: without it the
    feed would count again from 1. Each exemption's latest change stays because the network page
    reads when an exemption opened from its change (workflows/network.py, exemption_periods).
    """
    newer_of_same = FeedChange.objects.filter(exemption=OuterRef("exemption"), seq__gt=OuterRef("seq"))
    newest = FeedChange.objects.order_by("-seq").values("seq")[:1]
    return FeedChange.objects.filter(at__lt=cutoff, seq__lt=Subquery(newest)).filter(Exists(newer_of_same))


def raise_pruned_through(batch: QuerySet[FeedChange]) -> None:
    """Call in the transaction that deletes `batch`, so that no reader sees the gap without it."""
    highest = batch.aggregate(m=Max("seq"))["m"]
    if highest is None:
        return
    tally, _ = Tally.objects.select_for_update().get_or_create(name=PRUNED_THROUGH)
    if highest > tally.value:
        tally.value = highest
        tally.save(update_fields=["value", "updated_at"])
