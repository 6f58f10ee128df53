"""The DNS monitor watches every allocated address, paced, spread across its interval, never asking
again before the zone's minimum, and says when it cannot see (a real DNS server on loopback)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.test import override_settings

from portal.demo.dnsserver import running
from portal.reputation.health import source_health
from portal.reputation.models import Kind, ListingSource, ListingStatus, ReputationEvent
from portal.workflows.monitoring import Pacer, dns_zones
from portal.workflows.periodic import monitor_dnsbl
from tests.base import PortalTestCase, make_exemption
from tests.vetting.zone import DNSBL, listed

FAST = {
    "DNSBL_ZONE": DNSBL,
    "DNSBL_EXTRA_ZONES": [],
    "SPAMHAUS_DQS_KEY": "",
    "DNSBL_ZONE_DIR": "",
    "DNSBL_ZONE_FILES": [],
    "DNS_NAMESERVERS": ["127.0.0.1"],
    "DNS_TIMEOUT": 0.3,
    "DNSBL_QUERIES_PER_SECOND": 10_000,
    "DNSBL_MONITOR_MINUTES": 60,
    "DNSBL_MIN_RECHECK_MINUTES": [],
}


@contextmanager
def dns(zone: dict[str, Any], **settings: Any) -> Iterator[None]:
    with running(zone) as port, override_settings(**{**FAST, "DNS_PORT": port, **settings}):
        yield


class DnsMonitoringTestCase(PortalTestCase):
    def test_it_checks_every_allocated_address_not_only_exempted_ones(self) -> None:
        with dns({listed("198.51.100.80"): {"A": ["127.0.0.2"]}}, DNSBL_MONITOR_SLICE_SECONDS=3600):
            self.assertEqual(monitor_dnsbl().checked, 96)
        self.assertEqual(ListingStatus.objects.filter(zone=DNSBL).count(), 96)
        event = ReputationEvent.objects.get()
        self.assertEqual((event.cidr, event.kind, event.tenant), ("198.51.100.80", Kind.LISTED, self.globex))
        self.assertFalse(ListingStatus.objects.filter(address__startswith="192.0.2.").exists())  # released

    def test_it_checks_exempted_ipv6_addresses_alongside_ipv4_ones(self) -> None:
        make_exemption(self.acme, "2001:db8:a::25")
        with dns({}, DNSBL_MONITOR_SLICE_SECONDS=3600):
            self.assertEqual(monitor_dnsbl().checked, 97)
        self.assertTrue(ListingStatus.objects.filter(address="2001:db8:a::25").exists())

    def test_it_spreads_a_pass_across_the_interval_oldest_first(self) -> None:
        with dns({}, DNSBL_MONITOR_SLICE_SECONDS=600):  # six slices an hour: 96 / 6 = 16 each
            self.assertEqual(monitor_dnsbl().checked, 16)
            first = set(ListingStatus.objects.values_list("address", flat=True))
            self.assertEqual(monitor_dnsbl().checked, 16)
            self.assertEqual(ListingStatus.objects.count(), 32)  # never-checked addresses came next
            source = ListingSource.objects.get()
            self.assertEqual((source.addresses_checked, source.addresses_allocated), (32, 96))
            self.assertIsNone(source.last_pass_finished_at)
            for _ in range(4):
                monitor_dnsbl()
        source.refresh_from_db()
        self.assertEqual(source.addresses_checked, 96)
        self.assertIsNotNone(source.last_pass_finished_at)
        self.assertEqual(len(first), 16)

    def test_it_never_asks_again_before_the_zone_minimum(self) -> None:
        with dns({}, DNSBL_MONITOR_SLICE_SECONDS=3600):
            self.assertEqual(monitor_dnsbl().checked, 96)
            self.assertEqual(monitor_dnsbl().checked, 0)  # all checked within the hour
        with dns({}, DNSBL_MONITOR_SLICE_SECONDS=3600, DNSBL_MIN_RECHECK_MINUTES=[f"{DNSBL}=0"]):
            self.assertEqual(monitor_dnsbl().checked, 96)
        with dns({}, DNSBL_MONITOR_SLICE_SECONDS=3600, DNSBL_MIN_RECHECK_MINUTES=["0", "other.test=90"]):
            self.assertEqual(monitor_dnsbl().checked, 96)

    def test_it_paces_its_queries(self) -> None:
        pacer = Pacer(50)
        started = time.monotonic()
        for _ in range(11):
            pacer.wait()
        self.assertGreaterEqual(time.monotonic() - started, 0.19)
        with dns({}, DNSBL_MONITOR_SLICE_SECONDS=3600, DNSBL_QUERIES_PER_SECOND=200):
            started = time.monotonic()
            monitor_dnsbl()
        self.assertGreaterEqual(time.monotonic() - started, 95 / 200)

    def test_a_monitor_that_gets_no_answers_says_it_is_blind(self) -> None:
        with dns({f"*.{DNSBL}": "SERVFAIL"}, DNSBL_MONITOR_SLICE_SECONDS=3600):
            result = monitor_dnsbl()
        self.assertEqual((result.checked, result.errors), (96, 96))
        self.assertFalse(ListingStatus.objects.exists())  # an error is never "not listed"
        (health,) = source_health()
        self.assertTrue(health.failing)
        self.assertIn("96 errors in a pass", health.problems[0])
        body = self.client.get("/healthz").json()
        self.assertIn("96 errors", body["listing_sources"]["dns:zen.test"])

    def test_zones_read_from_files_are_not_asked_over_dns(self) -> None:
        with dns(
            {}, DNSBL_ZONE_FILES=[f"{DNSBL}:ip4set:/nonexistent/zen.ip4set"], DNSBL_EXTRA_ZONES=["b.test"]
        ):
            self.assertEqual(dns_zones(), ["b.test"])
