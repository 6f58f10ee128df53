"""An exempted address sending far more than its request declared: a reputation event, and by
TELEMETRY_VOLUME_ACTION a suspension pushed to webhooks, a notice to the tenant, or both."""

from __future__ import annotations

from datetime import timedelta

from django.test import override_settings
from django.utils import timezone

from portal.enforcement.models import ChangeOp, Delivery, Exemption, ExemptionState, FeedChange
from portal.enforcement.webhooks import deliver_due_webhooks
from portal.notifications.models import OutboundEmail
from portal.reputation.models import Kind, ReputationEvent
from portal.unblock.models import UnblockRequest
from tests.enforcement.base import approve, deliver_to_loopback, endpoint_for
from tests.enforcement.receiver import running_receiver
from tests.telemetry.base import TelemetryTestCase


@override_settings(TELEMETRY_VOLUME_FACTOR=10, TELEMETRY_VOLUME_FLOOR=50)
class OverVolumeTestCase(TelemetryTestCase):
    def setUp(self) -> None:
        super().setUp()
        (self.exemption,) = approve(self.acme, "203.0.113.5", by=self.ada)
        # Declared 240 a day: 10 an hour, x 10 = 100 an hour (above the floor of 50).
        UnblockRequest.objects.filter(exemptions=self.exemption).update(expected_daily_volume=240)
        Exemption.objects.filter(pk=self.exemption.pk).update(created_at=timezone.now() - timedelta(days=2))
        OutboundEmail.objects.all().delete()

    def sent(self, accepted: int, address: str = "203.0.113.5") -> None:
        self.counts({"address": address, "accepted": accepted}, at=timezone.now() - timedelta(seconds=70))

    def state(self) -> str:
        return Exemption.objects.get(pk=self.exemption.pk).state

    def test_it_stays_quiet_up_to_the_declared_volume_times_the_factor(self) -> None:
        self.sent(60)
        self.sent(40)  # 100: at the limit, not over it
        self.assertFalse(ReputationEvent.objects.exists())
        self.assertEqual(self.state(), ExemptionState.ACTIVE)

    @deliver_to_loopback
    def test_it_suspends_the_exemption_and_the_webhook_goes_out_at_once(self) -> None:
        with running_receiver() as receiver:
            endpoint_for(receiver)
            deliver_due_webhooks()  # the activation
            self.sent(101)
            event = ReputationEvent.objects.get()
            self.assertEqual(
                (event.kind, event.cidr, event.tenant), (Kind.OVER_VOLUME, "203.0.113.5", self.acme)
            )
            self.assertIn("101 port-25 connections from 203.0.113.5", event.summary)
            self.assertEqual(event.evidence["limit_per_hour"], 100)
            self.assertEqual(self.state(), ExemptionState.SUSPENDED)
            self.assertIn("Volume over approval", Exemption.objects.get(pk=self.exemption.pk).state_reason)
            self.assertEqual(
                FeedChange.objects.order_by("-seq").values_list("op", flat=True).first(), ChangeOp.REMOVE
            )
            self.assertTrue(Delivery.objects.filter(event="exemption.suspended").exists())
            deliver_due_webhooks()
            self.assertTrue(receiver.wait_for(1))
            self.assertEqual(receiver.posts()[-1].json["type"], "exemption.suspended")
        subjects = sorted(OutboundEmail.objects.values_list("subject", flat=True))
        self.assertTrue(any("sent far more mail than approved" in s for s in subjects), subjects)
        self.assertTrue(any("suspended" in s for s in subjects), subjects)
        notice = OutboundEmail.objects.get(subject__contains="far more mail")
        self.assertIn("The exemption is suspended", notice.body)

    @override_settings(TELEMETRY_VOLUME_ACTION="notify")
    def test_notify_tells_the_tenant_and_leaves_the_exemption(self) -> None:
        self.sent(150)
        self.assertEqual(self.state(), ExemptionState.ACTIVE)
        notice = OutboundEmail.objects.get()
        self.assertIn("opened 150 port-25 connections", notice.body)
        self.assertNotIn("The exemption is suspended", notice.body)
        self.sent(150)  # same hour, already over
        self.assertEqual(ReputationEvent.objects.count(), 1)

    @override_settings(TELEMETRY_VOLUME_ACTION="suspend")
    def test_suspend_only_suspends_and_the_suspension_notice_is_the_only_email(self) -> None:
        self.sent(150)
        self.assertEqual(self.state(), ExemptionState.SUSPENDED)
        self.assertFalse(OutboundEmail.objects.filter(subject__contains="far more mail").exists())
        self.assertTrue(OutboundEmail.objects.filter(subject__contains="suspended").exists())

    def test_the_floor_applies_to_small_declared_volumes(self) -> None:
        UnblockRequest.objects.filter(exemptions=self.exemption).update(expected_daily_volume=24)
        self.sent(50)  # 10 x 24 / 24 = 10, but the floor is 50
        self.assertFalse(ReputationEvent.objects.exists())
        self.sent(1)
        self.assertEqual(ReputationEvent.objects.get().evidence["limit_per_hour"], 50)
