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
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F, Min, Q
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


def send(delivery: Delivery, pool: outbound.Pool | None = None) -> Result:
    """The HTTP part only, so that it can run in a thread without touching the database."""
    body = delivery.body.encode()
    headers = headers_for(delivery, int(time.time()))
    try:
        if pool is None:
            response = outbound.post(delivery.endpoint.url, body, headers, policy())
        else:
            response = pool.post(delivery.endpoint.url, body, headers)
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


# How long a worker goes on starting sends from one batch; the rest of the batch goes back.
SEND_WINDOW_SECONDS = 10


def lease() -> timedelta:
    # The last send starts within the window and takes at most connect + total timeout (the
    # transport enforces both); the margin covers recording the results. A killed worker's
    # messages are retried after this.
    return timedelta(
        seconds=SEND_WINDOW_SECONDS + settings.WEBHOOK_CONNECT_TIMEOUT + settings.WEBHOOK_TIMEOUT + 10
    )


def deliver_due_webhooks(limit: int | None = None) -> int:
    """Send one batch of due messages; returns how many were attempted.

    Each endpoint's share of the batch goes out in claim order over one kept-alive connection,
    the endpoints in parallel (at most WEBHOOK_CONCURRENCY at once); the results are written in
    one transaction.
    """
    claimed = Delivery.objects.claim_due(limit or settings.WEBHOOK_BATCH_SIZE, lease())
    if not claimed:
        return 0
    # Sends start only within the window, so each ends within the lease; the rest go back
    # unattempted rather than wait their turn while their lease runs out.
    send_by = time.monotonic() + SEND_WINDOW_SECONDS
    by_endpoint: dict[uuid.UUID, list[Delivery]] = {}
    for delivery in claimed:
        by_endpoint.setdefault(delivery.endpoint_id, []).append(delivery)
    workers = min(settings.WEBHOOK_CONCURRENCY, len(by_endpoint))
    with ThreadPoolExecutor(max_workers=workers) as threads:
        sent = list(threads.map(lambda batch: _send_in_order(batch, send_by), by_endpoint.values()))
    results = [pair for pairs in sent for pair in pairs]
    record_results(results)
    attempted = {delivery.pk for delivery, _ in results}
    unsent = [d.pk for d in claimed if d.pk not in attempted]
    if unsent:
        Delivery.objects.filter(pk__in=unsent).update(claimed_until=None, attempts=F("attempts") - 1)
    _close_idle_pools()
    return len(results)


# Kept-alive connections per endpoint origin and policy, across batches: the lane that sends
# is one thread, and each endpoint's messages of a batch are sent by one thread at a time.
_pools: dict[tuple[uuid.UUID, str, outbound.Policy], outbound.Pool] = {}
POOL_IDLE_SECONDS = 60


def _pool_for(endpoint: WebhookEndpoint, current: outbound.Policy) -> outbound.Pool:
    key = (endpoint.pk, endpoint.url, current)
    pool = _pools.get(key)
    if pool is None:
        pool = _pools[key] = outbound.Pool(endpoint.url, current, max_idle=1)
    return pool


def _close_idle_pools() -> None:
    cutoff = time.monotonic() - POOL_IDLE_SECONDS
    for key, pool in list(_pools.items()):
        if pool.last_used < cutoff:
            _pools.pop(key).close()


def _send_in_order(batch: list[Delivery], send_by: float) -> list[tuple[Delivery, Result]]:
    current = policy()
    try:
        pool: outbound.Pool | None = _pool_for(batch[0].endpoint, current)
    except outbound.TransportError:
        pool = None  # a URL the transport refuses: send() records why, permanently
    results = []
    for delivery in batch:
        if time.monotonic() > send_by:
            break
        results.append((delivery, send(delivery, pool)))
    return results


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
    record_results([(delivery, result)])


def record_results(results: list[tuple[Delivery, Result]]) -> None:
    """One transaction for a batch: the attempts in one INSERT, the successes in one UPDATE."""
    if not results:
        return
    now = timezone.now()
    with transaction.atomic():
        Attempt.objects.bulk_create(
            Attempt(
                delivery=delivery,
                at=now,
                status_code=result.status,
                duration_ms=result.duration_ms,
                response_excerpt=result.excerpt,
                error=result.error,
                worker=WORKER_NAME,
            )
            for delivery, result in results
        )
        # A counter, not a count of Attempt rows: /metrics stays cheap and doesn't go backwards
        # when retention prunes old attempts.
        succeeded = [(d, r) for d, r in results if r.ok]
        if succeeded:
            metrics.count("webhook_attempts", result="success", by=len(succeeded))
        if len(succeeded) < len(results):
            metrics.count("webhook_attempts", result="failure", by=len(results) - len(succeeded))
        by_status: dict[int | None, list[int]] = {}
        for delivery, result in succeeded:
            by_status.setdefault(result.status, []).append(delivery.pk)
        for status, ids in by_status.items():
            Delivery.objects.filter(pk__in=ids).update(
                state=DeliveryState.DELIVERED, delivered_at=now, claimed_until=None, last_status=status
            )
        # An endpoint is failing or not by its latest answer, as if each were recorded in turn.
        latest = {delivery.endpoint_id: (delivery, result) for delivery, result in results}
        recovered = [endpoint_id for endpoint_id, (_, r) in latest.items() if r.ok]
        if recovered:
            WebhookEndpoint.objects.filter(pk__in=recovered, failing_since__isnull=False).update(
                failing_since=None
            )
        # Answered once and failed since: failing from now, not from before that success.
        relapsed = {d.endpoint_id for d, _ in succeeded} - set(recovered)
        if relapsed:
            WebhookEndpoint.objects.filter(pk__in=relapsed).update(failing_since=now)
        for delivery, result in results:
            if not result.ok:
                _record_failure(delivery, result, now, latest_for_endpoint=latest[delivery.endpoint_id][1])


def _record_failure(
    delivery: Delivery, result: Result, now: datetime, *, latest_for_endpoint: Result
) -> None:
    if result.status == 410:
        Delivery.objects.filter(pk=delivery.pk).update(
            state=DeliveryState.FAILED, claimed_until=None, last_status=410
        )
        disable_endpoint(delivery.endpoint, "The endpoint answered 410 Gone.")
        return
    retry_at = None if result.permanent else next_attempt_at(delivery.attempts, result)
    Delivery.objects.filter(pk=delivery.pk).update(
        state=DeliveryState.PENDING if retry_at else DeliveryState.FAILED,
        next_attempt_at=retry_at or now,
        claimed_until=None,
        last_status=result.status,
    )
    if not latest_for_endpoint.ok:
        WebhookEndpoint.objects.filter(pk=delivery.endpoint_id, failing_since__isnull=True).update(
            failing_since=now
        )


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
