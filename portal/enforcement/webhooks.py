"""Delivering webhooks by the Standard Webhooks specification (standardwebhooks.com)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
import os
import random
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Min, Q
from django.utils import timezone

from portal.accounts.models import Actor
from portal.audit.log import record
from portal.core import metrics
from portal.core.wakeup import notify_workers
from portal.enforcement.models import Attempt, Delivery, DeliveryState, WebhookEndpoint
from portal.lib import outbound
from portal.notifications.outbox import queue_email

log = logging.getLogger(__name__)
SLOW_DOWN = (429, 502, 503, 504)
# As the worker names its heartbeat: several workers may run on one machine.
WORKER_NAME = f"{socket.gethostname()}:{os.getpid()}"


def sign(secret: str, message_id: str, timestamp: int, body: str) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.{body}".encode()
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def headers_for(delivery: Delivery, timestamp: int) -> dict[str, str]:
    signatures = " ".join(
        sign(s, delivery.message_id, timestamp, delivery.body) for s in delivery.endpoint.signing_secrets()
    )
    return {
        "Content-Type": "application/json",
        "User-Agent": "egress-exemption-portal-webhooks/1",
        "webhook-id": delivery.message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signatures,
    }


def policy() -> outbound.Policy:
    return outbound.Policy(
        allowed_networks=tuple(ipaddress.ip_network(n) for n in settings.WEBHOOK_ALLOWED_NETWORKS),
        allow_http=settings.WEBHOOK_ALLOW_HTTP,
        connect_timeout=settings.WEBHOOK_CONNECT_TIMEOUT,
        total_timeout=settings.WEBHOOK_TIMEOUT,
    )


@dataclass
class Result:
    status: int | None
    excerpt: str
    retry_after: float | None
    duration_ms: int
    error: str = ""
    permanent: bool = False

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def send(delivery: Delivery) -> Result:
    """The HTTP part only, so that it can run in a thread without touching the database."""
    body = delivery.body.encode()
    try:
        response = outbound.post(
            delivery.endpoint.url, body, headers_for(delivery, int(timezone.now().timestamp())), policy()
        )
    except outbound.TransportError as exc:
        return Result(None, "", None, 0, str(exc)[:500], exc.permanent)
    return Result(
        response.status,
        response.body[:500].decode("utf-8", errors="replace"),
        _retry_after(response.headers.get("retry-after", "")) if response.status in SLOW_DOWN else None,
        response.duration_ms,
    )


def _retry_after(value: str) -> float | None:
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - timezone.now()).total_seconds(), 0)


def next_attempt_at(attempts: int, result: Result) -> datetime | None:
    """When to try again after `attempts` failed attempts, or None to give up."""
    schedule = settings.WEBHOOK_RETRY_SCHEDULE
    if attempts > len(schedule):
        return None
    delay = schedule[attempts - 1] * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not a secret
    if result.retry_after is not None:
        delay = max(delay, min(result.retry_after, 86_400))
    return timezone.now() + timedelta(seconds=delay)


def deliver_due_webhooks(limit: int = 100) -> int:
    """Send one round of due messages; returns how many were attempted."""
    # A send takes at most connect + total timeout (the transport enforces both); the margin
    # covers recording the result. A killed worker's messages are retried after this.
    lease = timedelta(seconds=settings.WEBHOOK_CONNECT_TIMEOUT + settings.WEBHOOK_TIMEOUT + 10)
    candidates = (
        Delivery.objects.due()
        .filter(endpoint__enabled=True)
        .select_related("endpoint")
        .order_by("next_attempt_at")
    )[:limit]
    # Claim no more than the pool sends at once: a claimed message waiting for a free thread
    # could outlive its lease and be sent by another worker at the same time.
    claimed: list[Delivery] = []
    for candidate in candidates:
        if len(claimed) == settings.WEBHOOK_CONCURRENCY:
            break
        if candidate.claim(lease):
            claimed.append(candidate)
    if not claimed:
        return 0
    for delivery in claimed:
        delivery.refresh_from_db(fields=["attempts"])
    with ThreadPoolExecutor(max_workers=settings.WEBHOOK_CONCURRENCY) as pool:
        results = list(pool.map(send, claimed))
    for delivery, result in zip(claimed, results, strict=True):
        record_result(delivery, result)
    return len(claimed)


def seconds_until_next_webhook() -> float | None:
    """When the next message not held by a worker is due (a retry), or None if none waits."""
    now = timezone.now()
    due = (
        Delivery.objects.filter(state=DeliveryState.PENDING, endpoint__enabled=True)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .aggregate(at=Min("next_attempt_at"))["at"]
    )
    return None if due is None else (due - now).total_seconds()


def record_result(delivery: Delivery, result: Result) -> None:
    now = timezone.now()
    endpoint = delivery.endpoint
    with transaction.atomic():
        Attempt.objects.create(
            delivery=delivery,
            at=now,
            status_code=result.status,
            duration_ms=result.duration_ms,
            response_excerpt=result.excerpt,
            error=result.error,
            worker=WORKER_NAME,
        )
        # A counter, not a count of Attempt rows: /metrics stays cheap and doesn't go backwards
        # when retention prunes old attempts.
        metrics.count("webhook_attempts", result="success" if result.ok else "failure")
        if result.ok:
            Delivery.objects.filter(pk=delivery.pk).update(
                state=DeliveryState.DELIVERED, delivered_at=now, claimed_until=None, last_status=result.status
            )
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)
            return
        if result.status == 410:
            Delivery.objects.filter(pk=delivery.pk).update(
                state=DeliveryState.FAILED, claimed_until=None, last_status=410
            )
            disable_endpoint(endpoint, "The endpoint answered 410 Gone.")
            return
        retry_at = None if result.permanent else next_attempt_at(delivery.attempts, result)
        Delivery.objects.filter(pk=delivery.pk).update(
            state=DeliveryState.PENDING if retry_at else DeliveryState.FAILED,
            next_attempt_at=retry_at or now,
            claimed_until=None,
            last_status=result.status,
        )
        WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=now)


def disable_endpoint(endpoint: WebhookEndpoint, reason: str) -> None:
    """Disable and tell the admins; call inside a transaction."""
    updated = WebhookEndpoint.objects.filter(pk=endpoint.pk, enabled=True).update(
        enabled=False, disabled_reason=reason
    )
    if not updated:
        return
    record(actor=Actor.of_system("webhook delivery"), action="webhook.disabled", obj=endpoint, reason=reason)
    admins = User.objects.filter(is_active=True, groups__name="admin").values_list("email", flat=True)
    queue_email(
        to=[*admins, *User.objects.filter(is_active=True, is_superuser=True).values_list("email", flat=True)],
        template="emails/webhook_disabled.txt",
        context={"endpoint": endpoint, "reason": reason},
    )


def disable_failing_endpoints() -> int:
    cutoff = timezone.now() - timedelta(hours=settings.WEBHOOK_DISABLE_AFTER_HOURS)
    count = 0
    for endpoint in WebhookEndpoint.objects.enabled().filter(failing_since__lt=cutoff):
        with transaction.atomic():
            disable_endpoint(
                endpoint, f"Every delivery failed for more than {settings.WEBHOOK_DISABLE_AFTER_HOURS} hours."
            )
        count += 1
    return count


def redeliver(deliveries: list[Delivery], *, actor: Actor) -> int:
    """Send messages again (same webhook-id): failed ones, or delivered ones on request."""
    with transaction.atomic(durable=True):
        ids = [d.pk for d in deliveries]
        now = timezone.now()
        # A message a worker is sending right now keeps its claim: releasing it would let another
        # worker send the same message at the same time.
        count = (
            Delivery.objects.filter(pk__in=ids)
            .exclude(claimed_until__gte=now)
            .update(
                state=DeliveryState.PENDING, next_attempt_at=timezone.now(), claimed_until=None, attempts=0
            )
        )
        if deliveries:
            record(
                actor=actor,
                action="webhook.redeliver",
                obj=deliveries[0].endpoint,
                after={"messages": [d.message_id for d in deliveries][:100], "count": count},
            )
        notify_workers()
        return count
