"""The daily rollups behind the network page: who was listed on which day, held by whom, with
port 25 open or closed; recomputed idempotently by the periodic job."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.utils import timezone

from portal.accounts.models import Actor, Allocation, Tenant
from portal.enforcement.models import Exemption, FeedChange
from portal.reputation.models import Kind, ReputationEvent, Source
from portal.reputation.rollups import ABUSE, NetworkDay, NetworkRollup, Scope
from portal.unblock.models import State
from portal.workflows import exemptions
from portal.workflows.network import roll_up_listings, roll_up_network, roll_up_outcomes
from portal.workflows.periodic import schedule
from portal.workflows.reputation import record_listing
from tests.base import PortalTestCase

ZONE = "zen.spamhaus.org"
SBL = {"code": "127.0.0.2", "list": "SBL", "meaning": "Spamhaus SBL", "abuse": True}
CSS = {"code": "127.0.0.3", "list": "CSS", "meaning": "Spamhaus CSS", "abuse": True}
PBL = {"code": "127.0.0.10", "list": "PBL", "meaning": "Spamhaus PBL", "abuse": False}
DAY = (timezone.now() - timedelta(days=5)).date()


def at(hour: int, day_offset: int = 0) -> datetime:
    return datetime.combine(DAY + timedelta(days=day_offset), time(hour), tzinfo=UTC)


def listed(address: str, when: datetime, *codes: dict[str, Any]) -> None:
    record_listing(address=address, zone=ZONE, codes=list(codes), observed_at=when)


def rollup(scope: str, key: str = "", listname: str = ABUSE, day_offset: int = 0) -> NetworkRollup | None:
    day = DAY + timedelta(days=day_offset)
    return NetworkRollup.objects.filter(day=day, scope=scope, key=key, listname=listname).first()


def counts(scope: str, key: str = "", listname: str = ABUSE, day_offset: int = 0) -> tuple[int, int]:
    row = rollup(scope, key, listname, day_offset)
    return (row.listed, row.exempted) if row else (0, 0)


class NetworkRollupTestCase(PortalTestCase):
    def move_allocation(self, cidr: str, to: Tenant, when: datetime) -> None:
        Allocation.objects.filter(cidr=cidr, released_at__isnull=True).update(released_at=when)
        moved = Allocation(tenant=to, assigned_at=when)
        moved.set_network(ipaddress.ip_network(cidr))
        moved.save()

    def exempt(self, address: str, *, created: datetime) -> Exemption:
        req = self.make_request(self.acme, address, state=State.APPROVED)
        exemption = exemptions.grant(
            req=req, network=ipaddress.ip_network(address), expires_at=None, actor=Actor.of_system("test")
        )
        Exemption.objects.filter(pk=exemption.pk).update(created_at=created)
        FeedChange.objects.filter(exemption=exemption).update(at=created)
        return exemption

    def test_it_counts_an_address_for_each_tenant_that_held_it_while_listed_on_the_day_it_moved(self) -> None:
        self.move_allocation("203.0.113.0/26", self.globex, at(12))
        listed("203.0.113.9", at(8), SBL)  # listed under Acme, delisted under Globex
        listed("203.0.113.9", at(16))
        listed("203.0.113.20", at(14), SBL)  # listed only after the move

        roll_up_listings(DAY, DAY + timedelta(days=1))

        self.assertEqual(counts(Scope.TENANT, str(self.acme.pk)), (1, 0))
        self.assertEqual(counts(Scope.TENANT, str(self.globex.pk)), (2, 0))
        self.assertEqual(rollup(Scope.TENANT, str(self.globex.pk)).label, "Globex GmbH")  # type: ignore[union-attr]
        self.assertEqual(counts(Scope.NETWORK, "", "SBL"), (2, 0))
        self.assertEqual(counts(Scope.RANGE, "203.0.113.0/24"), (2, 0))
        self.assertEqual(counts(Scope.PREFIX, "203.0.113.0/26"), (2, 0))
        # The next day only Globex holds the range, and only .20 is still listed.
        self.assertEqual(counts(Scope.TENANT, str(self.acme.pk), day_offset=1), (0, 0))
        self.assertEqual(counts(Scope.TENANT, str(self.globex.pk), day_offset=1), (1, 0))

    def test_it_ignores_a_listing_that_ended_before_the_allocation_moved(self) -> None:
        self.move_allocation("203.0.113.0/26", self.globex, at(12))
        listed("203.0.113.9", at(8), CSS)
        listed("203.0.113.9", at(10))

        roll_up_listings(DAY, DAY)

        self.assertEqual(counts(Scope.TENANT, str(self.acme.pk)), (1, 0))
        self.assertIsNone(rollup(Scope.TENANT, str(self.globex.pk)))

    def test_it_splits_listed_addresses_into_exempted_and_blocked(self) -> None:
        self.exempt("203.0.113.10", created=at(0, -20))
        listed("203.0.113.10", at(9), SBL)  # suspends the exemption
        listed("203.0.113.11", at(9), SBL)

        roll_up_listings(DAY, DAY)

        self.assertEqual(counts(Scope.NETWORK, "", "SBL"), (2, 1))
        self.assertEqual(counts(Scope.NETWORK), (2, 1))
        self.assertEqual(rollup(Scope.NETWORK).blocked, 1)  # type: ignore[union-attr]
        self.assertEqual(NetworkDay.objects.get(day=DAY).exempted_addresses, 1)

    def test_it_shows_the_pbl_as_a_list_but_not_as_abuse(self) -> None:
        listed("203.0.113.12", at(9), PBL)

        roll_up_listings(DAY, DAY)

        self.assertEqual(counts(Scope.NETWORK, "", "PBL"), (1, 0))
        self.assertIsNone(rollup(Scope.NETWORK))
        self.assertIsNone(rollup(Scope.TENANT, str(self.acme.pk)))

    def test_it_counts_a_listing_that_began_before_the_days_it_recomputes(self) -> None:
        listed("203.0.113.13", at(9, -30), SBL, CSS)
        listed("203.0.113.14", at(9, -30), SBL)
        listed("203.0.113.14", at(9, 1))  # delisted the day after

        roll_up_listings(DAY, DAY + timedelta(days=2))

        self.assertEqual(counts(Scope.NETWORK, "", "SBL"), (2, 0))
        self.assertEqual(counts(Scope.NETWORK, "", "CSS"), (1, 0))
        self.assertEqual(counts(Scope.NETWORK, "", "SBL", day_offset=1), (2, 0))
        self.assertEqual(counts(Scope.NETWORK, "", "SBL", day_offset=2), (1, 0))

    def test_it_counts_complaints_by_tenant_and_range_and_on_exempted_addresses(self) -> None:
        self.exempt("203.0.113.15", created=at(0, -20))
        for address in ("203.0.113.15", "203.0.113.16", "198.51.100.70"):
            ReputationEvent.objects.create(
                cidr=address,
                family=4,
                first=f"{int(ipaddress.ip_address(address)):08x}",
                last=f"{int(ipaddress.ip_address(address)):08x}",
                source=Source.ABUSE_REPORT,
                kind=Kind.COMPLAINT,
                abuse=True,
                observed_at=at(10),
                tenant=self.globex if address.startswith("198") else self.acme,
            )

        roll_up_listings(DAY, DAY)

        self.assertEqual(rollup(Scope.TENANT, str(self.acme.pk)).complaints, 2)  # type: ignore[union-attr]
        self.assertEqual(rollup(Scope.RANGE, "198.51.100.0/24").complaints, 1)  # type: ignore[union-attr]
        totals = NetworkDay.objects.get(day=DAY)
        self.assertEqual((totals.complaints, totals.complaints_on_exempted), (3, 1))
        # Acme's /26 and Globex's /27; the released /28 was gone long before.
        self.assertEqual(totals.allocated_addresses, 64 + 32)

    def test_it_gives_the_same_rows_when_a_day_is_recomputed(self) -> None:
        listed("203.0.113.9", at(8), SBL)
        roll_up_listings(DAY, DAY)
        first = list(NetworkRollup.objects.values_list("scope", "key", "listname", "listed", "exempted"))

        roll_up_listings(DAY, DAY)

        again = list(NetworkRollup.objects.values_list("scope", "key", "listname", "listed", "exempted"))
        self.assertEqual(sorted(again), sorted(first))
        self.assertEqual(NetworkDay.objects.filter(day=DAY).count(), 1)

    def test_it_measures_the_cohort_and_the_listing_to_suspension_to_delisting_times(self) -> None:
        exemption = self.exempt("203.0.113.10", created=at(0))
        self.exempt("203.0.113.11", created=at(1))
        listed("203.0.113.10", at(6, 3), SBL)
        FeedChange.objects.filter(exemption=exemption, event="exemption.suspended").update(
            at=at(6, 3) + timedelta(minutes=2)
        )
        listed("203.0.113.10", at(6, 4))  # delisted a day later

        roll_up_outcomes(DAY, DAY + timedelta(days=3))

        approval_day = NetworkDay.objects.get(day=DAY)
        self.assertEqual((approval_day.approved_addresses, approval_day.listed_within_30_days), (2, 1))
        suspension_day = NetworkDay.objects.get(day=DAY + timedelta(days=3))
        self.assertEqual(suspension_day.listing_to_suspension, [120.0])
        self.assertEqual(suspension_day.suspension_to_delisting, [86400.0 - 120.0])

    def test_the_job_backfills_ninety_days_once_then_recomputes_the_last_two(self) -> None:
        listed("203.0.113.9", at(8), SBL)
        self.assertIn("roll_up_network", schedule())

        roll_up_network()

        today = timezone.now().date()
        self.assertEqual(NetworkDay.objects.count(), 90)
        self.assertEqual(NetworkDay.objects.order_by("day").first().day, today - timedelta(days=89))  # type: ignore[union-attr]
        self.assertEqual(counts(Scope.NETWORK, "", "SBL"), (1, 0))
        old = NetworkDay.objects.get(day=DAY)
        roll_up_network()
        self.assertEqual(NetworkDay.objects.get(day=DAY).computed_at, old.computed_at)
        self.assertGreater(NetworkDay.objects.get(day=today).computed_at, old.computed_at)
