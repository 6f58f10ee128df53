"""The network reputation page in Chromium, on a laptop and on a phone: it reads, it passes
axe-core, and it has no CSP errors.

`UPDATE_SCREENSHOTS=1` also writes docs/screenshots/network-reputation.png (the README's) and
the phone version beside it.
"""

from __future__ import annotations

import ipaddress
import os
import random
from datetime import timedelta
from pathlib import Path

from django.utils import timezone
from playwright.sync_api import expect

from portal.accounts.models import Actor, Tenant
from portal.enforcement.models import Exemption, FeedChange
from portal.reputation.models import Kind, Source
from portal.unblock.models import RequestedBlock, State, UnblockRequest, UseCase
from portal.workflows import exemptions
from portal.workflows.network import roll_up_network
from portal.workflows.reputation import EventSpec, ingest_event, record_listing
from tests.base import allocate
from tests.browser.axe import axe_violations
from tests.browser.base import BrowserTestCase

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
ZONE = "zen.spamhaus.org"
CODES = {
    "SBL": {"code": "127.0.0.2", "list": "SBL", "meaning": "SBL", "abuse": True},
    "CSS": {"code": "127.0.0.3", "list": "CSS", "meaning": "CSS", "abuse": True},
    "XBL": {"code": "127.0.0.4", "list": "XBL", "meaning": "XBL", "abuse": True},
    "PBL": {"code": "127.0.0.10", "list": "PBL", "meaning": "PBL", "abuse": False},
}


def exempt(tenant: Tenant, address: str, days_ago: float) -> None:
    req = UnblockRequest.objects.create(
        tenant=tenant, state=State.APPROVED, use_case=UseCase.OWN_MAIL_SERVER, sending_domains=["example.com"]
    )
    block = RequestedBlock(request=req)
    block.set_network(ipaddress.ip_network(address))
    block.save()
    exemption = exemptions.grant(
        req=req, network=ipaddress.ip_network(address), expires_at=None, actor=Actor.of_system("test")
    )
    when = timezone.now() - timedelta(days=days_ago)
    Exemption.objects.filter(pk=exemption.pk).update(created_at=when)
    FeedChange.objects.filter(exemption=exemption).update(at=when)


def a_quarter_of_listings(tenants: list[tuple[Tenant, str]]) -> None:
    """90 days of listings and delistings across the tenants' ranges, falling after a peak."""
    rng = random.Random(25)
    now = timezone.now()
    for tenant, cidr in tenants:
        hosts = list(ipaddress.ip_network(cidr).hosts())
        for address in rng.sample(hosts, min(len(hosts), 12)):
            if rng.random() < 0.3:
                exempt(tenant, str(address), days_ago=rng.uniform(60, 100))
            start = now - timedelta(days=rng.uniform(1, 89))
            name = rng.choice(["CSS", "CSS", "XBL", "SBL", "PBL"])
            record_listing(address=str(address), zone=ZONE, codes=[CODES[name]], observed_at=start)
            # The suspension followed the listing within minutes (the test records both now).
            FeedChange.objects.filter(cidr=str(address), event="exemption.suspended").update(
                at=start + timedelta(minutes=rng.uniform(1, 20))
            )
            for _ in range(rng.choice([0, 0, 1, 3])):
                complained = start + timedelta(hours=rng.uniform(1, 48))
                if complained < now:
                    ingest_event(
                        spec=EventSpec(
                            source=Source.FEEDBACK_LOOP,
                            kind=Kind.COMPLAINT,
                            network=ipaddress.ip_network(str(address)),
                            observed_at=complained,
                            summary="Abuse complaint",
                        ),
                        actor=Actor.of_system("test"),
                    )
            end = start + timedelta(days=rng.uniform(2, 40))
            if end < now:
                record_listing(address=str(address), zone=ZONE, codes=[], observed_at=end)


class NetworkPageInBrowserTestCase(BrowserTestCase):
    def setUp(self) -> None:
        super().setUp()
        initech = Tenant.objects.create(
            external_id="initech-3", name="Initech", account_opened_on=self.acme.account_opened_on
        )
        allocate(initech, "192.0.2.0/24")
        a_quarter_of_listings(
            [(self.acme, "203.0.113.0/26"), (self.globex, "198.51.100.64/27"), (initech, "192.0.2.0/24")]
        )
        roll_up_network()

    def test_a_reviewer_reads_the_network_page_on_a_laptop_and_a_phone(self) -> None:
        page = self.log_in("rita@provider.example")
        page.goto("/reputation/network/")
        expect(page.get_by_role("heading", name="Network reputation")).to_be_visible()
        expect(page.get_by_role("heading", name="Listings per list")).to_be_visible()
        expect(
            page.get_by_role("img", name="Listed addresses per day, by list, last 90 days")
        ).to_be_visible()
        self.assertEqual(axe_violations(page), [])
        if os.environ.get("UPDATE_SCREENSHOTS") == "1":
            page.screenshot(path=SCREENSHOTS / "network-reputation.png", full_page=True)

        # The most abused range opens its heatmap; sorting the ranges keeps the page whole.
        page.get_by_role("table").filter(has_text="Peak listed").first.get_by_role("link").first.click()
        expect(page.get_by_role("img", name="Listed addresses in")).to_be_visible()
        page.get_by_role("navigation", name="Sort ranges by").get_by_role("link", name="Range").click()
        expect(
            page.get_by_role("navigation", name="Sort ranges by").get_by_role("link", name="Range")
        ).to_have_attribute("aria-current", "true")

        page.set_viewport_size({"width": 390, "height": 844})
        page.goto("/reputation/network/")
        self.assertEqual(axe_violations(page), [])
        width = page.evaluate("document.documentElement.scrollWidth")
        self.assertLessEqual(width, 390, "the page scrolls sideways on a phone")
        if os.environ.get("UPDATE_SCREENSHOTS") == "1":
            page.screenshot(path=SCREENSHOTS / "network-reputation-phone.png", full_page=True)
        self.assertNoConsoleErrors()
