from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from portal.enforcement.models import WorkerHeartbeat
from portal.ops.metrics import registry
from portal.reputation.health import source_health
from portal.telemetry.models import Agent
from portal.workflows.periodic import last_dnsbl_pass


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database answers and a worker was seen recently; 503 otherwise. A DNSBL
    monitor whose last pass got no usable answers makes it "degraded": still 200, since
    everything else works, but listings are not being seen."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        last = WorkerHeartbeat.objects.order_by("-seen_at").values_list("seen_at", flat=True).first()
    except Exception as exc:  # the point is to report any database failure, not to crash
        return JsonResponse({"status": "fail", "database": str(exc)[:200]}, status=503)
    max_age = settings.WORKER_HEARTBEAT_MAX_AGE_SECONDS
    age = (timezone.now() - last).total_seconds() if last else None
    worker_ok = age is not None and age <= max_age
    body: dict[str, object] = {
        "status": "ok" if worker_ok else "fail",
        "database": "ok",
        "worker": "ok"
        if worker_ok
        else ("never seen" if age is None else f"last seen {age:.0f}s ago (max {max_age}s)"),
    }
    monitor = last_dnsbl_pass()
    if monitor is not None and monitor.errors:
        body["dnsbl"] = (
            f"{monitor.errors} of {monitor.checked} look-ups got no usable answer in the last pass"
        )
        if worker_ok:
            body["status"] = "degraded"
    # A listing source that is stale or failing is blind: say so without taking the web down.
    blind = [h for h in source_health() if not h.ok]
    if blind:
        body["listing_sources"] = {h.source.name: "; ".join(h.problems) for h in blind}
        if worker_ok:
            body["status"] = "degraded"
    # A silent telemetry agent means no signals from its gateway: a warning, not an outage.
    stale = list(Agent.objects.stale().values_list("name", flat=True)[:50])
    if stale:
        body["telemetry_agents"] = (
            f"{len(stale)} stale (no report for {settings.AGENT_STALE_SECONDS}s): {', '.join(stale)}"
        )
        if worker_ok:
            body["status"] = "degraded"
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
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_PLAIN_0_0_4)
