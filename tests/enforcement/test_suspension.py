"""The abuse loop end to end: a listing in a real DNS server process or enough complaints take an
exemption back (webhook to the loopback receiver, gone from the feed, people told); the customer
asks for reinstatement, staff reinstate; releasing an allocation revokes what is inside it."""

from __future__ import annotations

import time
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from django.test import override_settings
from django.utils import timezone

from portal.accounts.models import Scope
from portal.enforcement.models import Exemption, ExemptionState, FeedChange, PeriodicJob, WorkerHeartbeat
from portal.enforcement.webhooks import deliver_due_webhooks
from portal.notifications.models import OutboundEmail
from portal.reputation.models import Kind, ReputationEvent
from portal.workflows.periodic import monitor_dnsbl, run_due_periodic_jobs
from tests.enforcement.base import EnforcementTestCase, deliver_to_loopback, dnsbl, endpoint_for
from tests.enforcement.receiver import Receiver, running_receiver
from tests.vetting.zone import DNSBL, listed

ARF_SAMPLE = Path(__file__).resolve().parent.parent / "reputation" / "samples" / "rfc5965.eml"


def arf_report(source_ip: str) -> bytes:
    """The RFC 5965 example, arriving now from `source_ip`."""
    text = ARF_SAMPLE.read_text()
    text = text.replace(
        "Arrival-Date: Thu, 8 Mar 2005 14:00:00 EDT", f"Arrival-Date: {format_datetime(timezone.now())}"
    )
    return text.replace("203.0.113.9", source_ip).encode()


@deliver_to_loopback
class SuspensionLoopTestCase(EnforcementTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.receiver: Receiver = self.enterContext(running_receiver())
        endpoint_for(self.receiver)
        self.listed, self.clean = self.approve("203.0.113.5", "203.0.113.6")
        deliver_due_webhooks()  # the two activations
        OutboundEmail.objects.all().delete()

    def feed(self) -> str:
        content: bytes = self.api(Scope.ENFORCEMENT).get("/api/v1/feeds/exemptions.txt").content
        return content.decode()

    def complain(self, address: str, **fields: Any) -> int:
        response = self.api(Scope.PROVISIONING).post(
            "/api/v1/reputation/events",
            {"address": address, "source": "abuse_report", "kind": "complaint", "summary": "Spam", **fields},
            format="json",
        )
        self.assertEqual(response.status_code, 201, response.content)
        return int(response.json()["id"])

    def test_a_listing_in_the_dnsbl_suspends_the_exemption_and_everyone_hears_of_it(self) -> None:
        with dnsbl({}):
            self.assertEqual(monitor_dnsbl().checked, 96)  # every allocated address, one zone, all clean
        self.assertFalse(ReputationEvent.objects.exists())

        with dnsbl({listed("203.0.113.5"): {"A": ["127.0.0.3"]}}):
            started = time.monotonic()
            monitor_dnsbl()
            deliver_due_webhooks()
            took = time.monotonic() - started

        self.listed.refresh_from_db()
        self.assertEqual(self.listed.state, ExemptionState.SUSPENDED)
        self.assertIn("CSS", self.listed.state_reason)
        self.assertEqual(Exemption.objects.get(pk=self.clean.pk).state, ExemptionState.ACTIVE)
        event = ReputationEvent.objects.get()
        self.assertEqual(
            (event.kind, event.cidr, event.zone, event.code), (Kind.LISTED, "203.0.113.5", DNSBL, "127.0.0.3")
        )
        self.assertEqual(event.tenant, self.acme)

        suspended = self.receiver.posts()[-1]
        self.assertEqual(self.receiver.failures, [])
        self.assertEqual(suspended.json["type"], "exemption.suspended")
        self.assertEqual(suspended.json["data"]["block"], "203.0.113.5")
        self.assertEqual(suspended.json["data"]["state"], "suspended")
        self.assertEqual(
            suspended.json["data"]["sequence"], FeedChange.objects.get(event="exemption.suspended").seq
        )
        self.assertLess(took, 2, "from the listing to the webhook at the receiver")
        self.assertEqual(self.feed(), "203.0.113.6\n")

        to_tenant, to_staff = OutboundEmail.objects.order_by("id")
        self.assertEqual(sorted(to_tenant.to), ["abuse@acme.example", self.alice.email])
        self.assertIn("203.0.113.5", to_tenant.body)
        self.assertEqual(sorted(to_staff.to), sorted([self.ada.email, self.rita.email, self.root.email]))
        self.assertIn("203.0.113.5", to_staff.body)

        with dnsbl({listed("203.0.113.5"): {"A": ["127.0.0.3"]}}):
            monitor_dnsbl()  # still listed: no new transition, nothing sent again
        self.assertEqual(ReputationEvent.objects.count(), 1)
        self.assertEqual(FeedChange.objects.filter(event="exemption.suspended").count(), 1)

    def test_a_policy_listing_does_not_suspend(self) -> None:
        with dnsbl({listed("203.0.113.5"): {"A": ["127.0.0.10"]}}):  # PBL: policy, not abuse
            monitor_dnsbl()
        self.assertEqual(ReputationEvent.objects.get().kind, Kind.LISTED)
        self.assertEqual(Exemption.objects.get(pk=self.listed.pk).state, ExemptionState.ACTIVE)

    def test_enough_complaints_within_the_window_suspend_at_once(self) -> None:
        self.complain(
            "203.0.113.5", observed_at=(timezone.now() - timedelta(hours=30)).isoformat()
        )  # too old
        self.complain("203.0.113.5")
        self.complain("203.0.113.5")
        self.assertEqual(Exemption.objects.get(pk=self.listed.pk).state, ExemptionState.ACTIVE)
        self.assertEqual(FeedChange.objects.filter(op="remove").count(), 0)

        self.complain("203.0.113.5")  # the third within 24 hours

        # The API call itself suspended it and queued the webhook: no worker has run yet.
        self.listed.refresh_from_db()
        self.assertEqual(self.listed.state, ExemptionState.SUSPENDED)
        self.assertIn("3 abuse complaints in 24 hours", self.listed.state_reason)
        self.assertEqual(self.feed(), "203.0.113.6\n")
        deliver_due_webhooks()
        self.assertEqual(self.receiver.posts()[-1].json["type"], "exemption.suspended")
        self.assertEqual(self.receiver.failures, [])
        self.assertEqual(Exemption.objects.get(pk=self.clean.pk).state, ExemptionState.ACTIVE)

    @override_settings(SUSPEND_AFTER_COMPLAINTS=1)
    def test_an_arf_report_applies_the_same_policy(self) -> None:
        response = self.api(Scope.PROVISIONING).post(
            "/api/v1/reputation/arf", arf_report("203.0.113.6"), content_type="message/rfc822"
        )
        self.assertEqual(response.status_code, 201, response.content)
        self.assertEqual(Exemption.objects.get(pk=self.clean.pk).state, ExemptionState.SUSPENDED)
        self.assertEqual(Exemption.objects.get(pk=self.listed.pk).state, ExemptionState.ACTIVE)

    def test_staff_reinstate_after_the_customer_asks(self) -> None:
        for _ in range(3):
            self.complain("203.0.113.5")
        deliver_due_webhooks()  # the suspension
        OutboundEmail.objects.all().delete()

        self.client.force_login(self.alice)
        response = self.client.post(
            f"/exemptions/{self.listed.id}/reinstate/",
            {"note": "A compromised WordPress; removed and patched."},
        )
        self.assertRedirects(response, "/exemptions/", fetch_redirect_response=False)
        self.listed.refresh_from_db()
        self.assertIsNotNone(self.listed.reinstatement_asked_at)
        self.assertIn("WordPress", self.listed.reinstatement_note)
        asked = OutboundEmail.objects.get()
        self.assertIn(self.ada.email, asked.to)
        self.assertNotIn(self.alice.email, asked.to)

        self.client.force_login(self.ada)
        response = self.client.post(
            f"/review/exemptions/{self.listed.id}/reinstated/", {"reason": "Cause removed; checked the host."}
        )
        self.assertRedirects(response, "/review/exemptions/", fetch_redirect_response=False)
        self.assertEqual(Exemption.objects.get(pk=self.listed.pk).state, ExemptionState.ACTIVE)

        deliver_due_webhooks()
        reinstated = self.receiver.posts()[-1]
        self.assertEqual(self.receiver.failures, [])
        self.assertEqual(
            (reinstated.json["type"], reinstated.json["data"]["block"]),
            ("exemption.reinstated", "203.0.113.5"),
        )
        last = FeedChange.objects.last()
        assert last is not None
        self.assertEqual((last.op, last.event, last.cidr), ("add", "exemption.reinstated", "203.0.113.5"))
        self.assertEqual(self.feed(), "203.0.113.5\n203.0.113.6\n")
        self.assertTrue(
            any(self.alice.email in e.to for e in OutboundEmail.objects.filter(body__contains="reinstated"))
        )

    def test_a_customer_can_only_ask_to_reinstate_a_suspended_exemption(self) -> None:
        self.client.force_login(self.alice)
        response = self.client.post(
            f"/exemptions/{self.listed.id}/reinstate/", {"note": "Please"}, follow=True
        )
        self.assertContains(response, "Only a suspended exemption can be reinstated.")
        self.assertIsNone(Exemption.objects.get(pk=self.listed.pk).reinstatement_asked_at)

    def test_releasing_an_allocation_revokes_the_exemptions_inside_it(self) -> None:
        (v6,) = self.approve("2001:db8:a::25")
        deliver_due_webhooks()
        response = self.api(Scope.PROVISIONING).put(
            "/api/v1/tenants/acme-1",
            {
                "name": "Acme Ltd",
                "account_opened_on": "2025-01-01",
                "identity_verified": True,
                "paid_invoices": 12,
                "abuse_contact": "abuse@acme.example",
                "allocations": ["2001:db8:a::/48"],  # 203.0.113.0/26 released
                "members": [self.alice.email],
            },
            format="json",
        )
        self.assertEqual(response.status_code, 200, response.content)

        states = dict(Exemption.objects.values_list("cidr", "state"))
        self.assertEqual(
            states, {"203.0.113.5": "revoked", "203.0.113.6": "revoked", "2001:db8:a::25": "active"}
        )
        self.assertIn("released", Exemption.objects.get(cidr="203.0.113.5").state_reason)
        self.assertEqual(self.feed(), "2001:db8:a::25\n")
        deliver_due_webhooks()
        revoked = sorted(
            m.json["data"]["block"] for m in self.receiver.posts() if m.json["type"] == "exemption.revoked"
        )
        self.assertEqual(revoked, ["203.0.113.5", "203.0.113.6"])
        self.assertEqual(self.receiver.failures, [])
        self.assertEqual(Exemption.objects.get(pk=v6.pk).state, ExemptionState.ACTIVE)


@override_settings(METRICS_TOKEN="scrape-me")
class MonitorLookupErrorsTestCase(EnforcementTestCase):
    """The resolver is down: every look-up of the monitor fails, and everyone is told so."""

    def setUp(self) -> None:
        super().setUp()
        self.approve("203.0.113.5", "203.0.113.6")
        PeriodicJob.objects.create(name="monitor_dnsbl")
        WorkerHeartbeat.objects.create(name="w1:1", seen_at=timezone.now())
        # A port nothing listens on: every look-up times out, like a resolver that is down.
        with (
            override_settings(
                DNS_NAMESERVERS=["127.0.0.1"],
                DNS_PORT=9,
                DNS_TIMEOUT=0.2,
                DNSBL_EXTRA_ZONES=[],
                # One slice checks only the two exempted addresses (they go first).
                DNSBL_MONITOR_MINUTES=48,
                DNSBL_MONITOR_SLICE_SECONDS=60,
            ),
            self.assertLogs("portal.workflows.periodic", "WARNING") as logs,
        ):
            run_due_periodic_jobs()
        self.warnings = logs.output

    def test_it_counts_the_errors_in_the_jobs_result(self) -> None:
        self.assertEqual(
            PeriodicJob.objects.get(name="monitor_dnsbl").last_result,
            "ok: 2 look-ups, 2 without a usable answer",
        )
        self.assertIn("2 of 2 look-ups got no usable answer", self.warnings[0])

    def test_it_shows_them_in_metrics_and_healthz(self) -> None:
        text = self.client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me").content.decode()
        self.assertIn("\nportal_dnsbl_monitor_lookup_errors 2.0\n", text)
        health = self.client.get("/healthz")
        self.assertEqual(health.status_code, 200)
        self.assertEqual(health.json()["status"], "degraded")
        self.assertIn("2 of 2 look-ups", health.json()["dnsbl"])

    def test_it_warns_staff_on_the_exemptions_page(self) -> None:
        self.client.force_login(self.rita)
        response = self.client.get("/review/exemptions/")
        self.assertContains(response, "got no usable answer for 2 of 2 look-ups")
