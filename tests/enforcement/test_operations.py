"""/healthz for load balancers and /metrics for Prometheus."""

from __future__ import annotations

import re
from datetime import timedelta

from django.core.cache import cache
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portal.accounts.models import Actor, Scope
from portal.enforcement.models import Delivery, WorkerHeartbeat
from portal.enforcement.webhooks import deliver_due_webhooks
from portal.workflows import exemptions as actions
from tests.enforcement.base import EnforcementTestCase, deliver_to_loopback, endpoint_for
from tests.enforcement.receiver import running_receiver


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match is not None, f"{name} not in\n{text}"
    return float(match.group(1))


class HealthTestCase(EnforcementTestCase):
    def test_it_fails_without_a_worker_heartbeat(self) -> None:
        response = self.client.get("/healthz")
        self.assertEqual(response.status_code, 503)
        self.assertEqual(response.json(), {"status": "fail", "database": "ok", "worker": "never seen"})

    @override_settings(WORKER_HEARTBEAT_MAX_AGE_SECONDS=120)
    def test_it_fails_when_the_last_heartbeat_is_too_old(self) -> None:
        WorkerHeartbeat.objects.create(name="w1:1", seen_at=timezone.now() - timedelta(seconds=300))
        response = self.client.get("/healthz")
        self.assertEqual(response.status_code, 503)
        self.assertIn("last seen 300s ago", response.json()["worker"])

    def test_it_passes_with_a_fresh_heartbeat(self) -> None:
        WorkerHeartbeat.objects.create(name="w1:1", seen_at=timezone.now() - timedelta(hours=1))
        WorkerHeartbeat.objects.create(name="w2:1", seen_at=timezone.now())
        response = self.client.get("/healthz")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json()["status"], "ok")
        self.assertIn("no-cache", response["Cache-Control"])


@deliver_to_loopback
class MetricsTestCase(EnforcementTestCase):
    @override_settings(METRICS_TOKEN="")
    def test_it_refuses_without_a_token_when_debug_is_off(self) -> None:
        response = self.client.get("/metrics")
        self.assertEqual(response.status_code, 403)
        self.assertContains(response, "METRICS_TOKEN", status_code=403)

    @override_settings(METRICS_TOKEN="scrape-me")
    def test_it_needs_the_token(self) -> None:
        self.assertEqual(self.client.get("/metrics").status_code, 401)
        self.assertEqual(self.client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code, 401)
        self.assertEqual(self.client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me").status_code, 200)

    @override_settings(METRICS_TOKEN="scrape-me")
    def test_it_reports_deliveries_attempts_feeds_exemptions_and_requests(self) -> None:
        def scrape() -> str:
            response = self.client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me")
            self.assertTrue(response["Content-Type"].startswith("text/plain; version=0.0.4"))
            return response.content.decode()

        before = scrape()
        receiver = self.enterContext(running_receiver())
        receiver.script = [500]
        endpoint_for(receiver)
        _, second, third = self.approve("203.0.113.5", "203.0.113.6", "203.0.113.7")
        actions.change(second, "exemption.suspended", actor=Actor(user=self.ada), reason="Spam")
        actions.change(third, "exemption.revoked", actor=Actor(user=self.ada), reason="Closed")
        deliver_due_webhooks()  # five messages: one answered 500, four delivered
        Delivery.objects.filter(state="pending").update(created_at=timezone.now() - timedelta(minutes=10))
        self.make_request(self.acme, "203.0.113.20")
        feed = self.api(Scope.ENFORCEMENT)
        etag = feed.get("/api/v1/feeds/exemptions.txt")["ETag"]
        feed.get("/api/v1/feeds/exemptions.txt", HTTP_IF_NONE_MATCH=etag)
        feed.get("/api/v1/feeds/exemptions.txt", HTTP_IF_NONE_MATCH=etag)

        text = scrape()
        self.assertEqual(metric(text, "portal_webhook_deliveries_pending"), 1)
        self.assertGreaterEqual(metric(text, "portal_webhook_oldest_pending_seconds"), 600)
        self.assertEqual(metric(text, 'portal_webhook_attempts_total{outcome="success"}'), 4)
        self.assertEqual(metric(text, 'portal_webhook_attempts_total{outcome="failure"}'), 1)
        for result, added in (("full", 1), ("not_modified", 2)):
            name = f'portal_feed_requests_total{{result="{result}"}}'
            self.assertEqual(metric(text, name) - metric(before, name), added)
        self.assertEqual(metric(text, 'portal_exemptions{state="active"}'), 1)
        self.assertEqual(metric(text, 'portal_exemptions{state="suspended"}'), 1)
        self.assertEqual(metric(text, 'portal_exemptions{state="revoked"}'), 1)
        self.assertEqual(metric(text, 'portal_exemptions{state="expired"}'), 0)
        self.assertEqual(metric(text, 'portal_requests{state="approved"}'), 1)
        self.assertEqual(metric(text, 'portal_requests{state="submitted"}'), 1)
        self.assertEqual(metric(text, "portal_worker_heartbeat_age_seconds"), -1)
        self.assertIn("# TYPE portal_webhook_attempts_total counter", text)

    @override_settings(METRICS_TOKEN="scrape-me")
    def test_it_counts_feed_answers_served_by_every_process(self) -> None:
        feed = self.api(Scope.ENFORCEMENT)
        etag = feed.get("/api/v1/feeds/exemptions.txt")["ETag"]
        for _ in range(8):
            feed.get("/api/v1/feeds/exemptions.txt", HTTP_IF_NONE_MATCH=etag)
        cache.clear()  # what another gunicorn process has in memory: nothing of this one's

        text = self.client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me").content.decode()

        self.assertEqual(metric(text, 'portal_feed_requests_total{result="not_modified"}'), 8)
        self.assertEqual(metric(text, 'portal_feed_requests_total{result="full"}'), 1)

    @override_settings(METRICS_TOKEN="scrape-me")
    def test_it_does_not_read_the_attempt_log_per_scrape(self) -> None:
        with CaptureQueriesContext(connection) as queries:
            self.client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me")

        self.assertNotIn("enforcement_attempt", " ".join(q["sql"] for q in queries.captured_queries))
