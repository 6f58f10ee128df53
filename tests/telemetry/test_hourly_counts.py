"""Counts become one row per address and hour, summed across reports and agents, attributed to
whoever held the address in that hour, with flow verdicts classified by the exemptions then."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from portal.accounts.models import Allocation
from portal.enforcement.models import ExemptionState
from portal.telemetry.models import SmtpHour
from tests.base import allocate
from tests.enforcement.base import approve
from tests.telemetry.base import TelemetryTestCase, last_hour, report


class HourlyCountsTestCase(TelemetryTestCase):
    def row(self, address: str) -> SmtpHour:
        return SmtpHour.objects.get(cidr=address)

    def test_it_adds_reports_of_the_same_hour_into_one_row(self) -> None:
        self.counts({"address": "203.0.113.10", "blocked": 12})
        self.counts({"address": "203.0.113.10", "blocked": 3, "accepted": 2})
        self.send(report({"address": "203.0.113.10", "blocked": 5}, sequence=1, agent="gw-ams-2"))
        row = self.row("203.0.113.10")
        self.assertEqual((row.blocked, row.accepted, row.hour), (20, 2, last_hour()))
        self.assertEqual((row.family, row.first), (4, "cb00710a"))

    def test_it_keeps_each_hour_apart(self) -> None:
        self.counts({"address": "203.0.113.10", "blocked": 1}, at=last_hour() - timedelta(minutes=5))
        self.counts({"address": "203.0.113.10", "blocked": 2}, at=last_hour() + timedelta(minutes=5))
        self.assertEqual(
            list(SmtpHour.objects.order_by("hour").values_list("hour", "blocked")),
            [(last_hour() - timedelta(hours=1), 1), (last_hour(), 2)],
        )

    def test_it_sums_one_address_written_twice_in_a_report(self) -> None:
        self.counts({"address": "2001:db8:a::5", "blocked": 1}, {"address": "2001:DB8:A:0::5", "blocked": 2})
        self.assertEqual(self.row("2001:db8:a::5").blocked, 3)

    def test_it_attributes_the_hour_to_the_tenant_holding_the_address_then(self) -> None:
        # 198.51.100.70 was Globex's until half an hour ago, and Acme's since.
        moved_at = timezone.now() - timedelta(minutes=30)
        Allocation.objects.filter(tenant=self.globex).update(released_at=moved_at)
        allocate(self.acme, "198.51.100.64/27")
        Allocation.objects.filter(tenant=self.acme, cidr="198.51.100.64/27").update(assigned_at=moved_at)

        self.counts({"address": "198.51.100.70", "blocked": 4}, at=moved_at - timedelta(hours=2))
        self.counts({"address": "198.51.100.70", "blocked": 6}, at=moved_at + timedelta(minutes=1))
        by_hour = dict(SmtpHour.objects.values_list("blocked", "tenant__name"))
        self.assertEqual(by_hour, {4: "Globex GmbH", 6: "Acme Ltd"})
        # Released years ago and held by nobody now: counted, attributed to no one.
        self.counts({"address": "192.0.2.3", "blocked": 1})
        self.assertIsNone(self.row("192.0.2.3").tenant)

    def test_it_counts_flow_observations_as_accepted_only_where_an_exemption_was_in_force(self) -> None:
        (exemption,) = approve(self.acme, "203.0.113.8/29", by=self.ada)
        created = timezone.now() - timedelta(hours=1)
        type(exemption).objects.filter(pk=exemption.pk).update(created_at=created, state_changed_at=created)
        exemption.refresh_from_db()
        self.counts(
            {"address": "203.0.113.9", "observed": 30},
            {"address": "203.0.113.20", "observed": 7},
            at=timezone.now() - timedelta(seconds=90),
            source="pmacct",
            estimated=True,
        )
        exempted, other = self.row("203.0.113.9"), self.row("203.0.113.20")
        self.assertEqual((exempted.blocked, exempted.accepted, exempted.estimated), (0, 30, True))
        self.assertEqual((other.blocked, other.accepted), (7, 0))

        # Before the exemption existed, the same address was blocked.
        self.counts({"address": "203.0.113.9", "observed": 4}, at=exemption.created_at - timedelta(hours=3))
        earlier = SmtpHour.objects.filter(cidr="203.0.113.9").order_by("hour").first()
        assert earlier is not None
        self.assertEqual((earlier.blocked, earlier.accepted), (4, 0))

        # Once suspended, observed connections count as blocked again.
        type(exemption).objects.filter(pk=exemption.pk).update(
            state=ExemptionState.SUSPENDED, state_changed_at=timezone.now() - timedelta(seconds=30)
        )
        self.counts({"address": "203.0.113.10", "observed": 5}, at=timezone.now() - timedelta(seconds=20))
        self.assertEqual(self.row("203.0.113.10").blocked, 5)
