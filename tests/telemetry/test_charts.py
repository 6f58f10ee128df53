"""The hourly port-25 chart on the reviewer's request page and the staff history pages."""

from __future__ import annotations

import re
from datetime import timedelta

from django.utils import timezone

from portal.telemetry.ingest import hour_of
from tests.telemetry.base import TelemetryTestCase


class Port25ChartTestCase(TelemetryTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.hour = hour_of(timezone.now()) - timedelta(hours=5)
        self.counts(
            {"address": "203.0.113.5", "blocked": 4000, "accepted": 12}, at=self.hour + timedelta(minutes=3)
        )
        self.counts({"address": "203.0.113.5", "blocked": 210}, at=self.hour + timedelta(minutes=9))
        self.counts({"address": "203.0.113.5", "accepted": 7}, at=self.hour - timedelta(hours=24))
        self.counts({"address": "203.0.113.5", "blocked": 999}, at=self.hour - timedelta(days=8))  # too old
        self.client.force_login(self.rita)

    def chart_of(self, url: str) -> str:
        response = self.client.get(url)
        self.assertEqual(response.status_code, 200)
        page = response.content.decode()
        match = re.search(r'<section aria-labelledby="port25-title".*?</section>', page, re.S)
        assert match, page
        return match.group()

    def assert_numbers(self, chart: str) -> None:
        self.assertIn("4210 blocked and 19 accepted connections in the last 7 days", chart)
        self.assertIn(
            f"the busiest hour was {self.hour:%Y-%m-%d %H:%M} UTC (4210 blocked, 12 accepted)", chart
        )
        rows = re.findall(r'<tr><th scope="row">([^<]+)</th><td>(\d+)</td><td>(\d+)</td></tr>', chart)
        self.assertEqual(
            rows,
            [
                (f"{self.hour:%Y-%m-%d %H:%M}", "4210", "12"),
                (f"{self.hour - timedelta(hours=24):%Y-%m-%d %H:%M}", "0", "7"),
            ],
        )
        svg = re.search(r"<svg.*?</svg>", chart, re.S)
        assert svg
        # Two stacked bars in one hour and one in another; no inline style anywhere (CSP).
        self.assertEqual(len(re.findall(r'<rect class="series-2"', svg.group())), 1)
        self.assertEqual(len(re.findall(r'<rect class="series-1"', svg.group())), 2)
        self.assertNotIn("style=", chart)
        self.assertNotIn("<script", chart)

    def test_it_shows_on_the_reviewers_request_page_with_the_declared_volume_as_a_line(self) -> None:
        req = self.make_request(self.acme, "203.0.113.4/30")  # declares 100 a day
        chart = self.chart_of(f"/review/requests/{req.pk}/")
        self.assert_numbers(chart)
        self.assertIn("Declared volume: 100 a day (about 4 an hour, the dashed line)", chart)
        self.assertIn('class="reference"', chart)

    def test_it_shows_on_the_address_and_tenant_history(self) -> None:
        self.assert_numbers(self.chart_of("/reputation/addresses/203.0.113.5/"))
        self.assert_numbers(self.chart_of(f"/reputation/tenants/{self.acme.pk}/"))

    def test_a_quiet_address_says_so_without_a_chart(self) -> None:
        chart = self.chart_of("/reputation/addresses/203.0.113.9/")
        self.assertIn("No port-25 connections reported in the last 7 days.", chart)
        self.assertNotIn("<svg", chart)
        other = self.chart_of(f"/reputation/tenants/{self.globex.pk}/")
        self.assertIn("No port-25 connections", other)
