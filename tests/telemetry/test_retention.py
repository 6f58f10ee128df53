"""Hourly counts and the report log older than TELEMETRY_RETENTION_DAYS are deleted hourly."""

from __future__ import annotations

from datetime import timedelta

from django.test import override_settings
from django.utils import timezone

from portal.telemetry.models import Agent, SmtpHour, TelemetryReport
from portal.workflows.periodic import schedule
from tests.telemetry.base import TelemetryTestCase


@override_settings(TELEMETRY_RETENTION_DAYS=90)
class RetentionTestCase(TelemetryTestCase):
    def test_the_periodic_job_deletes_what_is_past_retention_and_keeps_the_rest(self) -> None:
        self.counts({"address": "203.0.113.10", "blocked": 1}, at=timezone.now() - timedelta(days=91))
        self.counts({"address": "203.0.113.10", "blocked": 2}, at=timezone.now() - timedelta(days=89))
        TelemetryReport.objects.filter(sequence=1).update(received_at=timezone.now() - timedelta(days=91))

        interval, job = schedule()["purge_telemetry"]
        self.assertEqual(interval, timedelta(hours=1))
        self.assertEqual(job(), 1)
        self.assertEqual(list(SmtpHour.objects.values_list("blocked", flat=True)), [2])
        self.assertEqual(list(TelemetryReport.objects.values_list("sequence", flat=True)), [2])
        self.assertTrue(Agent.objects.exists())
