"""Agents register with their first report; staff see them, and a silent one is stale on
/healthz, /metrics and the agents page."""

from __future__ import annotations

from datetime import timedelta

from django.test import override_settings
from django.utils import timezone

from portal.enforcement.models import WorkerHeartbeat
from portal.telemetry.models import Agent
from tests.telemetry.base import TelemetryTestCase, report


@override_settings(AGENT_STALE_SECONDS=300, METRICS_TOKEN="t" * 32)
class AgentsTestCase(TelemetryTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.send(report(sequence=7, agent="gw-fra-1", version="1.2.0"))
        self.send(report(sequence=3, agent="gw-ams-2", version="1.1.9"))
        Agent.objects.filter(name="gw-ams-2").update(last_report_at=timezone.now() - timedelta(minutes=10))
        WorkerHeartbeat.objects.create(name="w1", seen_at=timezone.now())

    def test_staff_see_each_agent_with_its_version_lag_and_staleness(self) -> None:
        self.client.force_login(self.rita)
        page = self.client.get("/review/agents/").content.decode()
        self.assertIn("<strong>1 agent stale</strong>", page)
        fra = page[page.index("gw-fra-1") : page.index("</tr>", page.index("gw-fra-1"))]
        ams = page[page.index("gw-ams-2") : page.index("</tr>", page.index("gw-ams-2"))]
        self.assertIn("1.2.0", fra)
        self.assertIn(">reporting<", fra)
        self.assertIn(">stale<", ams)
        self.assertIn("1.1.9", ams)
        self.assertEqual(list(Agent.objects.stale().values_list("name", flat=True)), ["gw-ams-2"])

    def test_customers_get_404(self) -> None:
        self.client.force_login(self.alice)
        self.assertEqual(self.client.get("/review/agents/").status_code, 404)

    def test_healthz_warns_about_stale_agents_without_failing(self) -> None:
        response = self.client.get("/healthz")
        self.assertEqual(response.status_code, 200)
        body = response.json()
        self.assertEqual(body["status"], "degraded")
        self.assertIn("1 stale (no report for 300s): gw-ams-2", body["telemetry_agents"])

        Agent.objects.update(last_report_at=timezone.now())
        self.assertNotIn("telemetry_agents", self.client.get("/healthz").json())

    def test_metrics_count_stale_agents(self) -> None:
        response = self.client.get("/metrics", headers={"Authorization": "Bearer " + "t" * 32})
        self.assertIn("portal_telemetry_agents_stale 1.0", response.content.decode())
