"""An address without an exemption that keeps trying port 25: a reputation event with the
numbers, the tenant told once per episode, staff see it on the address and tenant history."""

from __future__ import annotations

from datetime import timedelta

from django.test import override_settings
from django.utils import timezone

from portal.notifications.models import OutboundEmail
from portal.reputation.models import Kind, ReputationEvent, Source
from portal.telemetry.ingest import hour_of
from tests.enforcement.base import approve
from tests.telemetry.base import TelemetryTestCase


@override_settings(TELEMETRY_BLOCKED_PER_HOUR=100, TELEMETRY_EPISODE_QUIET_HOURS=24)
class BlockedAttemptsTestCase(TelemetryTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.hour = hour_of(timezone.now()) - timedelta(hours=40)

    def attempts(self, blocked: int, *, hours_later: int = 0, address: str = "203.0.113.10") -> None:
        at = self.hour + timedelta(hours=hours_later, minutes=10 + self.sequence)
        self.counts({"address": address, "blocked": blocked}, at=at)

    def test_it_records_an_event_when_an_hour_goes_over_the_threshold_and_tells_the_tenant(self) -> None:
        self.attempts(60)
        self.assertFalse(ReputationEvent.objects.exists())
        self.attempts(50)  # 110 in the hour: over 100
        event = ReputationEvent.objects.get()
        self.assertEqual(
            (event.source, event.kind, event.cidr, event.tenant),
            (Source.TELEMETRY, Kind.BLOCKED_ATTEMPTS, "203.0.113.10", self.acme),
        )
        self.assertIn("110 blocked port-25 connection attempts from 203.0.113.10", event.summary)
        self.assertEqual(event.evidence["blocked"], 110)
        self.assertEqual(event.evidence["agent"], "gw-fra-1")
        email = OutboundEmail.objects.get()
        self.assertEqual(email.to, ["abuse@acme.example", "alice@acme.example"])
        self.assertIn("Your server at 203.0.113.10 tried to send mail directly 110 times", email.subject)
        self.assertIn("it may be compromised", email.body)
        self.assertIn("ss -tnp state syn-sent", email.body)

    def test_it_tells_the_tenant_once_per_episode(self) -> None:
        self.attempts(150)
        self.attempts(500)  # same hour, already over: nothing new
        self.attempts(150, hours_later=1)  # the next hour: recorded, but the same episode
        self.attempts(150, hours_later=5)
        self.assertEqual(ReputationEvent.objects.count(), 3)
        self.assertEqual(OutboundEmail.objects.count(), 1)
        self.attempts(150, hours_later=5 + 25)  # after 24 quiet hours: a new episode
        self.assertEqual(ReputationEvent.objects.count(), 4)
        self.assertEqual(OutboundEmail.objects.count(), 2)
        latest = ReputationEvent.objects.first()
        assert latest is not None
        self.assertTrue(latest.evidence["tenant_told"])

    def test_it_leaves_exempted_addresses_and_quiet_ones_alone(self) -> None:
        (exemption,) = approve(self.acme, "203.0.113.5", by=self.ada)
        type(exemption).objects.filter(pk=exemption.pk).update(created_at=self.hour - timedelta(days=1))
        self.attempts(300, address="203.0.113.5")
        self.attempts(100, address="203.0.113.6")  # exactly the threshold is not over it
        self.assertFalse(ReputationEvent.objects.exists())

    def test_it_records_an_address_nobody_holds_without_telling_anyone(self) -> None:
        self.attempts(101, address="192.0.2.200")
        self.assertIsNone(ReputationEvent.objects.get().tenant)
        self.assertFalse(OutboundEmail.objects.exists())

    def test_staff_see_it_on_the_address_and_tenant_history(self) -> None:
        self.attempts(4210)
        self.client.force_login(self.rita)
        for url in ("/reputation/addresses/203.0.113.10/", f"/reputation/tenants/{self.acme.pk}/"):
            with self.subTest(url=url):
                page = self.client.get(url).content.decode()
                self.assertIn("Blocked sending attempts", page)
                self.assertIn("4,210 blocked port-25 connection attempts", page)
        self.client.logout()
        self.client.force_login(self.bob)
        self.assertEqual(self.client.get("/reputation/addresses/203.0.113.10/").status_code, 404)
