"""At filing time the vetting run shows what the firewall saw the requested addresses try."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

from django.utils import timezone

from portal.vetting.checks import blocked_attempts_finding
from portal.vetting.findings import CHECK_TITLES, PASS, WARN
from tests.telemetry.base import TelemetryTestCase


class BlockedAttemptsCheckTestCase(TelemetryTestCase):
    def test_it_reports_the_attempts_of_the_day_before_the_request_with_points(self) -> None:
        filed_at = timezone.now()
        self.counts({"address": "203.0.113.10", "blocked": 4000}, at=filed_at - timedelta(hours=3))
        self.counts({"address": "203.0.113.11", "blocked": 210}, at=filed_at - timedelta(hours=20))
        self.counts({"address": "203.0.113.10", "blocked": 500}, at=filed_at - timedelta(days=3))
        self.counts({"address": "203.0.113.10", "blocked": 999}, at=filed_at - timedelta(days=9))

        finding = blocked_attempts_finding(ipaddress.ip_network("203.0.113.8/29"), filed_at)
        self.assertEqual(finding.outcome, WARN)
        self.assertEqual(
            finding.summary,
            "4,210 blocked port-25 attempts in the 24 h before this request (4,710 in 7 days)",
        )
        self.assertEqual(finding.score, 30)
        self.assertTrue(finding.staff_only)
        self.assertEqual(CHECK_TITLES[finding.check], "Blocked port-25 attempts")

    def test_older_or_fewer_attempts_weigh_less_and_none_pass(self) -> None:
        filed_at = timezone.now()
        self.counts({"address": "203.0.113.20", "blocked": 30}, at=filed_at - timedelta(hours=2))
        self.counts({"address": "203.0.113.21", "blocked": 300}, at=filed_at - timedelta(days=2))
        one = ipaddress.ip_network
        self.assertEqual(blocked_attempts_finding(one("203.0.113.20"), filed_at).score, 15)
        self.assertEqual(blocked_attempts_finding(one("203.0.113.21"), filed_at).score, 10)
        clean = blocked_attempts_finding(one("203.0.113.22"), filed_at)
        self.assertEqual((clean.outcome, clean.score), (PASS, 0))
        self.assertEqual(clean.summary, "No blocked port-25 attempts in the 7 days before this request")
