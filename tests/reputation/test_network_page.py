"""The network reputation page: each figure from known data, its CSV tables, staff only."""

from __future__ import annotations

import csv
import io
import ipaddress
from datetime import timedelta

from django.utils import timezone

from portal.accounts.models import Actor
from portal.enforcement.models import Exemption, FeedChange
from portal.reputation.models import ListingSource, SourceKind
from portal.reputation.rollups import NetworkDay
from portal.unblock.models import State
from portal.workflows import exemptions
from portal.workflows.network import roll_up_network
from portal.workflows.reputation import record_listing
from tests.base import PortalTestCase

ZONE = "zen.spamhaus.org"
SBL = {"code": "127.0.0.2", "list": "SBL", "meaning": "SBL", "abuse": True}
XBL = {"code": "127.0.0.4", "list": "XBL", "meaning": "XBL", "abuse": True}
PBL = {"code": "127.0.0.10", "list": "PBL", "meaning": "PBL", "abuse": False}


class NetworkPageTestCase(PortalTestCase):
    def setUp(self) -> None:
        now = timezone.now()
        self.now = now
        # 40 days ago: .1 on the SBL (still listed); today: .2 on XBL, .3 on PBL, .4 on the SBL.
        record_listing(address="203.0.113.1", zone=ZONE, codes=[SBL], observed_at=now - timedelta(days=40))
        record_listing(address="203.0.113.2", zone=ZONE, codes=[XBL], observed_at=now - timedelta(minutes=30))
        record_listing(address="203.0.113.3", zone=ZONE, codes=[PBL], observed_at=now - timedelta(minutes=20))
        # Approved 50 days ago, listed 10 days later: the cohort's one failure out of two.
        listed_one = self.exempt("203.0.113.4", days_ago=50)
        self.exempt("203.0.113.5", days_ago=50)
        record_listing(
            address="203.0.113.4", zone=ZONE, codes=[SBL], observed_at=now - timedelta(days=40, hours=1)
        )
        FeedChange.objects.filter(exemption=listed_one, event="exemption.suspended").update(
            at=now - timedelta(days=40, hours=1) + timedelta(seconds=90)
        )
        record_listing(
            address="198.51.100.70", zone=ZONE, codes=[SBL], observed_at=now - timedelta(minutes=10)
        )
        roll_up_network()

    def exempt(self, address: str, *, days_ago: int) -> Exemption:
        req = self.make_request(self.acme, address, state=State.APPROVED)
        exemption = exemptions.grant(
            req=req, network=ipaddress.ip_network(address), expires_at=None, actor=Actor.of_system("test")
        )
        when = self.now - timedelta(days=days_ago)
        Exemption.objects.filter(pk=exemption.pk).update(created_at=when)
        FeedChange.objects.filter(exemption=exemption).update(at=when)
        return exemption

    def csv(self, table: str) -> list[list[str]]:
        self.client.force_login(self.rita)
        response = self.client.get(f"/reputation/network/{table}.csv")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response["Content-Type"], "text/csv; charset=utf-8")
        return list(csv.reader(io.StringIO(response.content.decode())))

    def test_it_shows_listings_per_list_with_the_30_day_change(self) -> None:
        rows = {row[0]: row for row in self.csv("lists")[1:]}
        # listed, exempted, blocked, 30 days before, change
        self.assertEqual(rows["SBL"][1:], ["3", "0", "3", "2", "1"])
        self.assertEqual(rows["XBL"][1:], ["1", "0", "1", "0", "1"])
        self.assertEqual(rows["PBL"][1:], ["1", "0", "1", "0", "1"])
        self.assertEqual(rows["CSS"][1:], ["0", "0", "0", "0", "0"])

    def test_it_shows_the_page_with_its_figures(self) -> None:
        self.client.force_login(self.rita)
        response = self.client.get("/reputation/network/")
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "Network reputation")
        # .1, .2, .4 and Globex's .70 are on an abuse list; the PBL is not abuse.
        self.assertContains(response, "<strong>4</strong> addresses on an abuse list")
        # Of the two addresses approved 50 days ago, one was listed within 30 days.
        self.assertContains(response, "50.0%")
        self.assertContains(response, "1 of 2 addresses approved")
        self.assertContains(response, "90 s")  # listing to suspension
        self.assertContains(response, '<svg class="chart"', count=3)
        self.assertContains(response, '<svg class="heatmap"')
        recent = [s.address for s, _ in response.context["recent"]]
        self.assertEqual(recent, ["198.51.100.70", "203.0.113.2", "203.0.113.1", "203.0.113.4"])
        oldest = [s.address for s, _ in response.context["oldest"]]
        self.assertEqual(oldest[0], "203.0.113.4")
        most_abused = [r.cidr for r in response.context["most_abused"]]
        self.assertEqual(most_abused, ["203.0.113.0/24", "198.51.100.0/24"])

    def test_it_draws_the_heatmap_of_the_chosen_range(self) -> None:
        self.client.force_login(self.rita)
        response = self.client.get("/reputation/network/", {"range": "203.0.113.0/24"})
        heat = response.context["heat"]
        self.assertEqual(str(heat["network"]), "203.0.113.0/24")
        self.assertEqual([r["address"] for r in heat["rows"]], [f"203.0.113.{n}" for n in (1, 2, 3, 4)])
        svg = str(heat["svg"])
        self.assertEqual(svg.count("<rect"), 256)
        self.assertIn("203.0.113.2: listed on XBL", svg)
        self.assertIn("203.0.113.3: listed on PBL", svg)
        self.assertIn("203.0.113.64: not allocated", svg)  # Acme holds only the /26

    def test_it_ranks_tenants_by_listed_addresses(self) -> None:
        rows = self.csv("tenants")
        self.assertEqual(rows[0], ["tenant", "listed", "exempted", "blocked", "complaints"])
        self.assertEqual(rows[1:], [["Acme Ltd", "3", "0", "3", "0"], ["Globex GmbH", "1", "0", "1", "0"]])

    def test_it_exports_ranges_and_the_daily_series(self) -> None:
        self.assertEqual(
            self.csv("ranges")[1:], [["198.51.100.0/24", "1", "1", "0"], ["203.0.113.0/24", "3", "3", "0"]]
        )
        daily = self.csv("daily")
        self.assertEqual(len(daily), 91)
        header, today = daily[0], dict(zip(daily[0], daily[-1], strict=True))
        self.assertEqual(header[:4], ["day", "SBL_listed", "SBL_exempted", "SBL_blocked"])
        self.assertEqual(
            (today["day"], today["abuse_listed"], today["PBL_listed"]), (str(self.now.date()), "4", "1")
        )
        forty_days_ago = dict(zip(header, daily[-41], strict=True))
        # .4 was exempted while listed until its suspension that day.
        self.assertEqual((forty_days_ago["SBL_listed"], forty_days_ago["SBL_exempted"]), ("2", "1"))

    def test_it_shows_complaints_per_thousand_exempted_addresses(self) -> None:
        NetworkDay.objects.filter(day=self.now.date()).update(
            exempted_addresses=400, complaints_on_exempted=2
        )
        rows = self.csv("complaints")
        self.assertEqual(rows[-1], [str(self.now.date()), "2", "400", "5.00"])

    def test_it_warns_when_monitoring_is_blind(self) -> None:
        ListingSource.objects.create(
            name="ZEN by DNS", kind=SourceKind.DNS, zone=ZONE, interval_seconds=3600, last_error="SERVFAIL"
        )
        self.client.force_login(self.rita)
        response = self.client.get("/reputation/network/")
        self.assertContains(response, "Monitoring is blind for ZEN by DNS")

    def test_it_is_for_staff_only(self) -> None:
        self.client.force_login(self.alice)
        self.assertEqual(self.client.get("/reputation/network/").status_code, 404)
        self.assertEqual(self.client.get("/reputation/network/ranges.csv").status_code, 404)
        self.client.logout()
        response = self.client.get("/reputation/network/")
        self.assertEqual(response.status_code, 302)
        self.assertIn("/login/", response["Location"])

    def test_it_refuses_an_unknown_table(self) -> None:
        self.client.force_login(self.rita)
        self.assertEqual(self.client.get("/reputation/network/secrets.csv").status_code, 404)
