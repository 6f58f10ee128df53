from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Count, Min, Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.views.decorators.cache import never_cache

from portal.core.metrics import read
from portal.enforcement.models import Attempt, Delivery, DeliveryState, Exemption, WorkerHeartbeat
from portal.unblock.models import UnblockRequest


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database answers and a worker was seen recently; 503 otherwise."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        last = WorkerHeartbeat.objects.order_by("-seen_at").values_list("seen_at", flat=True).first()
    except Exception as exc:  # the point is to report any database failure, not to crash
        return JsonResponse({"status": "fail", "database": str(exc)[:200]}, status=503)
    max_age = settings.WORKER_HEARTBEAT_MAX_AGE_SECONDS
    age = (timezone.now() - last).total_seconds() if last else None
    worker_ok = age is not None and age <= max_age
    body = {
        "status": "ok" if worker_ok else "fail",
        "database": "ok",
        "worker": "ok"
        if worker_ok
        else ("never seen" if age is None else f"last seen {age:.0f}s ago (max {max_age}s)"),
    }
    return JsonResponse(body, status=200 if worker_ok else 503)


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format. Protect it at the proxy or with METRICS_TOKEN."""
    token = settings.METRICS_TOKEN
    if not token and not settings.DEBUG:
        return HttpResponse(
            "Set METRICS_TOKEN and scrape with Authorization: Bearer <token>.\n",
            status=403,
            content_type="text/plain",
        )
    if token and not constant_time_compare(request.headers.get("Authorization", ""), f"Bearer {token}"):
        return HttpResponse(
            "Send Authorization: Bearer <METRICS_TOKEN>.\n", status=401, content_type="text/plain"
        )
    now = timezone.now()
    pending = Delivery.objects.filter(state=DeliveryState.PENDING).aggregate(
        n=Count("id"), oldest=Min("created_at")
    )
    oldest = (now - pending["oldest"]).total_seconds() if pending["oldest"] else 0
    attempts = Attempt.objects.filter(at__gte=now - timedelta(days=365 * 10)).aggregate(
        success=Count("id", filter=Q(status_code__gte=200, status_code__lt=300)),
        failure=Count(
            "id", filter=~Q(status_code__gte=200, status_code__lt=300) | Q(status_code__isnull=True)
        ),
    )
    lines = [
        "# HELP portal_webhook_deliveries_pending Webhook messages waiting to be delivered.",
        "# TYPE portal_webhook_deliveries_pending gauge",
        f"portal_webhook_deliveries_pending {pending['n']}",
        "# HELP portal_webhook_oldest_pending_seconds Age of the oldest undelivered webhook message.",
        "# TYPE portal_webhook_oldest_pending_seconds gauge",
        f"portal_webhook_oldest_pending_seconds {oldest:.1f}",
        "# HELP portal_webhook_attempts_total Delivery attempts by outcome.",
        "# TYPE portal_webhook_attempts_total counter",
        f'portal_webhook_attempts_total{{outcome="success"}} {attempts["success"]}',
        f'portal_webhook_attempts_total{{outcome="failure"}} {attempts["failure"]}',
        "# HELP portal_feed_requests_total Pull-feed requests by result.",
        "# TYPE portal_feed_requests_total counter",
        *[f'portal_feed_requests_total{{result="{k}"}} {v}' for k, v in read("feed_requests").items()],
        "# HELP portal_exemptions Exemptions by state.",
        "# TYPE portal_exemptions gauge",
    ]
    by_state = dict(Exemption.objects.order_by().values_list("state").annotate(n=Count("id")))
    lines += [
        f'portal_exemptions{{state="{s}"}} {by_state.get(s, 0)}'
        for s in ("active", "suspended", "revoked", "expired")
    ]
    lines += ["# HELP portal_requests Unblock requests by state.", "# TYPE portal_requests gauge"]
    by_req = dict(UnblockRequest.objects.order_by().values_list("state").annotate(n=Count("id")))
    lines += [f'portal_requests{{state="{s}"}} {n}' for s, n in sorted(by_req.items())]
    heartbeat = WorkerHeartbeat.objects.order_by("-seen_at").values_list("seen_at", flat=True).first()
    lines += [
        "# HELP portal_worker_heartbeat_age_seconds Seconds since a worker last finished a loop.",
        "# TYPE portal_worker_heartbeat_age_seconds gauge",
        f"portal_worker_heartbeat_age_seconds {(now - heartbeat).total_seconds() if heartbeat else -1:.1f}",
    ]
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain; version=0.0.4")
