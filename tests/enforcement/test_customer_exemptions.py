"""The customer's exemptions page: each tenant sees and acts on its own only; a renewal is a
request linked to the exemption it renews, which approval extends instead of duplicating."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from portal.accounts.models import Actor, Scope
from portal.enforcement.models import Exemption, FeedChange
from portal.unblock.models import State, UnblockRequest
from portal.workflows.decisions import approve_request
from tests.enforcement.base import EnforcementTestCase


class CustomerExemptionsTestCase(EnforcementTestCase):
    def setUp(self) -> None:
        super().setUp()
        (self.exemption,) = self.approve("203.0.113.5")

    def renewal_form(self, req: UnblockRequest) -> dict[str, str]:
        return {
            "tenant": str(self.acme.pk),
            "addresses": "203.0.113.5",
            "use_case": req.use_case,
            "justification": "Still our MX.",
            "mail_software": "Postfix 3.8",
            "sending_domains": "acme.example",
            "expected_daily_volume": "500",
            "bounce_handling": "Hard bounces are suppressed after one failure.",
            "abuse_contact": "abuse@acme.example",
            "accept_aup": "on",
            "action": "submit",
        }

    def test_it_lists_a_tenants_exemptions_with_their_expiry(self) -> None:
        self.client.force_login(self.alice)
        response = self.client.get("/exemptions/")
        self.assertContains(response, "203.0.113.5")
        assert self.exemption.expires_at is not None
        self.assertContains(response, str(self.exemption.expires_at.year))

    def test_another_tenant_neither_sees_nor_acts_on_them(self) -> None:
        self.client.force_login(self.bob)
        self.assertNotContains(self.client.get("/exemptions/"), "203.0.113.5")
        self.assertEqual(self.client.post(f"/exemptions/{self.exemption.id}/renew/").status_code, 404)
        response = self.client.post(f"/exemptions/{self.exemption.id}/reinstate/", {"note": "Please"})
        self.assertEqual(response.status_code, 404)
        self.assertFalse(UnblockRequest.objects.filter(renewal_of=self.exemption).exists())
        self.assertIsNone(Exemption.objects.get(pk=self.exemption.pk).reinstatement_asked_at)

    def test_staff_without_a_membership_see_no_customer_exemptions(self) -> None:
        self.client.force_login(self.ada)
        self.assertEqual(self.client.post(f"/exemptions/{self.exemption.id}/renew/").status_code, 404)

    def test_a_renewal_is_a_draft_linked_to_the_exemption(self) -> None:
        self.client.force_login(self.alice)
        response = self.client.post(f"/exemptions/{self.exemption.id}/renew/")

        renewal = UnblockRequest.objects.get(renewal_of=self.exemption)
        self.assertRedirects(response, f"/requests/{renewal.id}/edit/", fetch_redirect_response=False)
        self.assertEqual(renewal.state, State.DRAFT)
        self.assertEqual([b.cidr for b in renewal.blocks.all()], ["203.0.113.5"])
        original = self.exemption.request
        assert original is not None
        self.assertEqual(renewal.justification, original.justification)

        again = self.client.post(f"/exemptions/{self.exemption.id}/renew/")
        self.assertRedirects(again, f"/requests/{renewal.id}/", fetch_redirect_response=False)
        self.assertEqual(UnblockRequest.objects.filter(renewal_of=self.exemption).count(), 1)

    def test_a_renewal_is_accepted_although_the_exemption_covers_its_address(self) -> None:
        self.client.force_login(self.alice)
        self.client.post(f"/exemptions/{self.exemption.id}/renew/")
        renewal = UnblockRequest.objects.get(renewal_of=self.exemption)

        response = self.client.post(f"/requests/{renewal.id}/edit/", self.renewal_form(renewal))

        self.assertRedirects(response, f"/requests/{renewal.id}/", fetch_redirect_response=False)
        renewal.refresh_from_db()
        self.assertEqual(renewal.state, State.SUBMITTED)

        # The same address in a request that is not a renewal conflicts with the exemption.
        new = self.client.post("/requests/new/", {**self.renewal_form(renewal), "action": "save"})
        self.assertContains(new, "203.0.113.5 is already covered by your active exemption")
        self.assertEqual(UnblockRequest.objects.count(), 2)

    def test_approving_a_renewal_extends_the_exemption_instead_of_adding_one(self) -> None:
        self.client.force_login(self.alice)
        self.client.post(f"/exemptions/{self.exemption.id}/renew/")
        renewal = UnblockRequest.objects.get(renewal_of=self.exemption)
        self.client.post(f"/requests/{renewal.id}/edit/", self.renewal_form(renewal))
        renewal.refresh_from_db()
        changes = FeedChange.objects.count()

        in_two_years = timezone.now() + timedelta(days=730)
        self.assertEqual(
            approve_request(req=renewal, actor=Actor(user=self.ada), expires_at=in_two_years), []
        )

        (exemption,) = Exemption.objects.all()
        self.assertEqual(exemption.pk, self.exemption.pk)
        self.assertEqual(exemption.expires_at, in_two_years)
        self.assertEqual(exemption.state, "active")
        # One change announces the new expiry; the block is re-added, which set consumers ignore.
        (renewed,) = FeedChange.objects.order_by("-seq")[:1]
        self.assertEqual(FeedChange.objects.count(), changes + 1)
        self.assertEqual(
            (renewed.event, renewed.op, renewed.cidr), ("exemption.renewed", "add", "203.0.113.5")
        )

    def test_the_json_feed_shows_the_renewed_expiry(self) -> None:
        feed = self.api(Scope.ENFORCEMENT)
        before = feed.get("/api/v1/feeds/exemptions.json")
        renewal = self.make_request(self.acme, "203.0.113.5")
        UnblockRequest.objects.filter(pk=renewal.pk).update(renewal_of=self.exemption)
        renewal.refresh_from_db()
        in_two_years = timezone.now() + timedelta(days=730)
        approve_request(req=renewal, actor=Actor(user=self.ada), expires_at=in_two_years)

        after = feed.get("/api/v1/feeds/exemptions.json", HTTP_IF_NONE_MATCH=before["ETag"])
        self.assertEqual(after.status_code, 200)
        # The feed writes RFC 3339 as PostgreSQL's to_json does (trailing zeros of the fraction
        # dropped): compare the instant, not the text.
        shown = datetime.fromisoformat(after.json()["exemptions"][0]["expires_at"])
        self.assertEqual(shown, in_two_years)
