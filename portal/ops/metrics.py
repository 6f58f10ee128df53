"""The /metrics collector: every value is read from the database at scrape time, so it is the
same whichever process answers, and each query is bounded by an index or a small table (no
count of the growing `Attempt` table: attempts are a counter kept in `Tally`)."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from portal.core.metrics import read
from portal.enforcement.models import Delivery, DeliveryState, Exemption, WorkerHeartbeat
from portal.reputation.health import source_health
from portal.telemetry.models import Agent
from portal.unblock.models import UnblockRequest

EXEMPTION_STATES = ("active", "suspended", "revoked", "expired")


class PortalCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        pending = Delivery.objects.filter(state=DeliveryState.PENDING).aggregate(
            n=Count("id"), oldest=Min("created_at")
        )
        yield GaugeMetricFamily(
            "portal_webhook_deliveries_pending",
            "Webhook messages waiting to be delivered.",
            value=pending["n"],
        )
        oldest = (now - pending["oldest"]).total_seconds() if pending["oldest"] else 0
        yield GaugeMetricFamily(
            "portal_webhook_oldest_pending_seconds",
            "Age of the oldest undelivered webhook message.",
            value=round(oldest, 1),
        )
        yield counter(
            "portal_webhook_attempts",
            "Delivery attempts by outcome.",
            "outcome",
            read("webhook_attempts", "success", "failure"),
        )
        yield counter(
            "portal_feed_requests",
            "Pull-feed requests by result.",
            "result",
            read("feed_requests", "full", "not_modified"),
        )
        by_state = dict(Exemption.objects.order_by().values_list("state").annotate(n=Count("id")))
        yield gauge(
            "portal_exemptions",
            "Exemptions by state.",
            "state",
            {s: by_state.get(s, 0) for s in EXEMPTION_STATES},
        )
        by_request = dict(UnblockRequest.objects.order_by().values_list("state").annotate(n=Count("id")))
        yield gauge(
            "portal_requests", "Unblock requests by state.", "state", dict(sorted(by_request.items()))
        )
        monitor = read("dnsbl_monitor", "checked", "errors")
        yield GaugeMetricFamily(
            "portal_dnsbl_monitor_lookups",
            "DNSBL look-ups of the last monitor pass.",
            value=monitor["checked"],
        )
        yield GaugeMetricFamily(
            "portal_dnsbl_monitor_lookup_errors",
            "DNSBL look-ups of the last monitor pass that got no usable answer (resolver down, "
            "refused, Spamhaus error code): those addresses were not checked.",
            value=monitor["errors"],
        )
        yield from listing_source_metrics()
        yield GaugeMetricFamily(
            "portal_telemetry_agents_stale",
            "Telemetry agents with no report for AGENT_STALE_SECONDS.",
            value=Agent.objects.stale(now).count(),
        )
        heartbeat = WorkerHeartbeat.objects.order_by("-seen_at").values_list("seen_at", flat=True).first()
        yield GaugeMetricFamily(
            "portal_worker_heartbeat_age_seconds",
            "Seconds since a worker last finished a loop (-1: never).",
            value=round((now - heartbeat).total_seconds(), 1) if heartbeat else -1,
        )


def listing_source_metrics() -> Iterator[Metric]:
    health = source_health()
    blind = GaugeMetricFamily(
        "portal_listing_source_blind",
        "1 when a DNSBL listing source is stale (no complete pass in twice its interval, or an old "
        "zone file) or failing (errors): its zone's listings are not being seen.",
        labels=["source", "kind"],
    )
    coverage = GaugeMetricFamily(
        "portal_listing_source_coverage_ratio",
        "Addresses checked recently / addresses monitored, per listing source.",
        labels=["source", "kind"],
    )
    age = GaugeMetricFamily(
        "portal_listing_source_pass_age_seconds",
        "Seconds since the source last finished a complete pass (-1: never).",
        labels=["source", "kind"],
    )
    for item in health:
        labels = [item.source.name, item.source.kind]
        blind.add_metric(labels, 0 if item.ok else 1)
        coverage.add_metric(labels, round(item.source.coverage or 0, 4))
        age.add_metric(labels, round(item.age_seconds, 1) if item.age_seconds is not None else -1)
    yield from (blind, coverage, age)


def counter(name: str, documentation: str, label: str, values: dict[str, int]) -> Metric:
    family = CounterMetricFamily(name, documentation, labels=[label])
    for key, value in values.items():
        family.add_metric([key], value)
    return family


def gauge(name: str, documentation: str, label: str, values: dict[str, int]) -> Metric:
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for key, value in values.items():
        family.add_metric([key], value)
    return family


def registry() -> CollectorRegistry:
    """A registry of our own, not the global one: no process metrics of whichever gunicorn
    process answers, only the database's view."""
    own = CollectorRegistry(auto_describe=False)
    own.register(PortalCollector())
    return own
