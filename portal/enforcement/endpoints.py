"""Managing webhook endpoints: the workflow steps the UI and the API share."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal.accounts.models import Actor
from portal.audit.log import record
from portal.core.wakeup import notify_workers
from portal.enforcement.models import Delivery, DeliveryState, WebhookEndpoint
from portal.enforcement.webhooks import redeliver


def save_endpoint(endpoint: WebhookEndpoint, *, actor: Actor, created: bool) -> WebhookEndpoint:
    with transaction.atomic(durable=True):
        if endpoint.enabled:
            endpoint.disabled_reason = ""
            endpoint.failing_since = None
        endpoint.save()
        record(
            actor=actor,
            action="webhook.created" if created else "webhook.updated",
            obj=endpoint,
            after={"url": endpoint.url, "events": endpoint.event_types, "enabled": endpoint.enabled},
        )
        return endpoint


def rotate_secret(endpoint: WebhookEndpoint, *, actor: Actor) -> WebhookEndpoint:
    with transaction.atomic(durable=True):
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        endpoint.rotate_secret(timedelta(hours=settings.WEBHOOK_SECRET_OVERLAP_HOURS))
        endpoint.save()
        record(
            actor=actor,
            action="webhook.secret_rotated",
            obj=endpoint,
            after={
                "previous_valid_until": endpoint.previous_secret_expires_at.isoformat()
                if endpoint.previous_secret_expires_at
                else None
            },
        )
        return endpoint


def send_test_event(endpoint: WebhookEndpoint, *, actor: Actor) -> Delivery:
    with transaction.atomic(durable=True):
        now = timezone.now()
        body = json.dumps(
            {"type": "webhook.test", "timestamp": now.isoformat(), "data": {"endpoint": str(endpoint.id)}},
            separators=(",", ":"),
        )
        delivery = Delivery.objects.create(endpoint=endpoint, event="webhook.test", body=body, created_at=now)
        record(actor=actor, action="webhook.test_sent", obj=endpoint, after={"message": delivery.message_id})
        notify_workers()
        return delivery


def redeliver_range(endpoint: WebhookEndpoint, *, since: datetime, until: datetime, actor: Actor) -> int:
    failed = list(
        endpoint.deliveries.filter(state=DeliveryState.FAILED, created_at__gte=since, created_at__lte=until)[
            :10_000
        ]
    )
    return redeliver(failed, actor=actor) if failed else 0


def delete_endpoint(endpoint: WebhookEndpoint, *, actor: Actor) -> None:
    with transaction.atomic(durable=True):
        record(actor=actor, action="webhook.deleted", obj=endpoint, before={"url": endpoint.url})
        endpoint.delete()
