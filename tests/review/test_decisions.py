"""Deciding in the browser: what each decision changes, who hears of it, and what refuses."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils import timezone

from portal.accounts.models import Actor, Allocation
from portal.audit.models import AuditEvent
from portal.enforcement.models import Exemption
from portal.notifications.models import OutboundEmail
from portal.review.models import DenialReason
from portal.unblock.models import MessageKind, State
from portal.vetting.models import RunReason, VettingRun
from portal.workflows.decisions import approve_request
from tests.review.base import ReviewTestCase


class DecisionTestCase(ReviewTestCase):
    def setUp(self) -> None:
        self.req = self.queued(self.acme, "203.0.113.5", "203.0.113.6")
        self.url = f"/review/requests/{self.req.id}"
        self.client.force_login(self.ada)

    def test_it_denies_with_a_canned_reason_and_free_text(self) -> None:
        canned = DenialReason.objects.create(title="Relay", text="Send through port 587.")
        r = self.client.post(f"{self.url}/deny/", {"canned": canned.pk, "text": "Your relay is ready."})
        self.assertRedirects(r, f"{self.url}/", fetch_redirect_response=False)
        self.req.refresh_from_db()
        self.assertEqual(self.req.state, State.DENIED)
        self.assertIsNotNone(self.req.decided_at)
        event = AuditEvent.objects.for_object(self.req).get(action="request.deny")
        self.assertEqual(event.reason, "Send through port 587.\n\nYour relay is ready.")
        self.assertEqual(event.actor, self.ada)
        email = OutboundEmail.objects.get()
        self.assertEqual(email.to, ["alice@acme.example"])
        self.assertIn("is now denied", email.subject)
        self.assertIn("Your relay is ready.", email.body)

        self.client.force_login(self.alice)
        page = self.client.get(f"/requests/{self.req.id}/")
        self.assertContains(page, "Denied")
        self.assertContains(page, "Send through port 587.")

    def test_it_refuses_a_denial_without_a_reason(self) -> None:
        r = self.client.post(f"{self.url}/deny/", {"text": "  "})
        self.assertContains(r, "Pick a reason or write one: the customer needs to know why.", status_code=400)
        self.req.refresh_from_db()
        self.assertEqual(self.req.state, State.SUBMITTED)

    def test_it_offers_only_active_canned_reasons(self) -> None:
        DenialReason.objects.create(title="Retired reason", text="Old.", active=False)
        DenialReason.objects.create(title="Current reason", text="New.")
        page = self.client.get(f"{self.url}/")
        self.assertContains(page, "Current reason")
        self.assertNotContains(page, "Retired reason")

    def test_it_approves_a_subset_and_tells_the_customer(self) -> None:
        r = self.client.post(
            f"{self.url}/approve/", {"cidrs": ["203.0.113.6"], "expiry": "30", "note": "Go."}
        )
        self.assertRedirects(r, f"{self.url}/", fetch_redirect_response=False)
        self.req.refresh_from_db()
        self.assertEqual(self.req.state, State.APPROVED)
        self.assertEqual([e.cidr for e in Exemption.objects.all()], ["203.0.113.6"])
        email = OutboundEmail.objects.filter(to=["alice@acme.example"]).get()
        self.assertIn("is now approved", email.subject)
        self.client.force_login(self.alice)
        self.assertContains(self.client.get(f"/requests/{self.req.id}/"), "Approved")

    def test_it_refuses_an_address_that_is_not_the_requests(self) -> None:
        r = self.client.post(f"{self.url}/approve/", {"cidrs": ["203.0.113.7"], "expiry": "30"})
        self.assertEqual(r.status_code, 400)
        self.assertFalse(Exemption.objects.exists())

    def test_it_tells_the_second_reviewer_what_happened(self) -> None:
        self.client.post(f"{self.url}/deny/", {"text": "No."})
        r = self.client.post(f"{self.url}/approve/", {"cidrs": ["203.0.113.5"], "expiry": "30"})
        self.assertContains(r, "A request that is denied can&#x27;t be approved.", status_code=409)
        self.assertFalse(Exemption.objects.exists())

    def test_it_keeps_internal_notes_from_the_customer(self) -> None:
        r = self.client.post(f"{self.url}/note/", {"text": "Same operator as a 2024 spam case."})
        self.assertRedirects(r, f"{self.url}/", fetch_redirect_response=False)
        note = self.req.messages.get()
        self.assertEqual((note.kind, note.internal), (MessageKind.NOTE, True))
        self.assertContains(self.client.get(f"{self.url}/"), "Same operator as a 2024 spam case.")
        self.assertFalse(OutboundEmail.objects.exists())
        self.client.force_login(self.alice)
        self.assertNotContains(self.client.get(f"/requests/{self.req.id}/"), "Same operator")
        self.assertNotIn("Same operator", self.api().get(f"/api/v1/requests/{self.req.id}").content.decode())

    def test_it_claims_assigns_and_releases(self) -> None:
        self.client.post(f"{self.url}/assign/", {"claim": "1"})
        self.req.refresh_from_db()
        self.assertEqual((self.req.assignee, self.req.state), (self.ada, State.IN_REVIEW))
        self.client.post(f"{self.url}/assign/", {"assignee": self.rita.pk})
        self.req.refresh_from_db()
        self.assertEqual(self.req.assignee, self.rita)
        self.client.post(f"{self.url}/assign/", {"assignee": ""})
        self.req.refresh_from_db()
        self.assertIsNone(self.req.assignee)
        self.assertEqual(
            list(
                AuditEvent.objects.for_object(self.req)
                .filter(action__startswith="review.")
                .order_by("id")
                .values_list("action", "before", "after")
            ),
            [
                ("review.assigned", {"assignee": None}, {"assignee": "ada@provider.example"}),
                (
                    "review.assigned",
                    {"assignee": "ada@provider.example"},
                    {"assignee": "rita@provider.example"},
                ),
                ("review.released", {"assignee": "rita@provider.example"}, {"assignee": None}),
            ],
        )

    def test_it_refuses_to_assign_a_customer(self) -> None:
        r = self.client.post(f"{self.url}/assign/", {"assignee": self.alice.pk})
        self.assertEqual(r.status_code, 400)
        self.req.refresh_from_db()
        self.assertIsNone(self.req.assignee)

    def test_it_runs_the_checks_again(self) -> None:
        r = self.client.post(f"{self.url}/recheck/")
        self.assertRedirects(r, f"{self.url}/", fetch_redirect_response=False)
        run = VettingRun.objects.get()
        self.assertEqual((run.reason, run.requested_by), (RunReason.STAFF_RECHECK, "ada@provider.example"))

    def test_it_accepts_decisions_only_by_post(self) -> None:
        for action in ("approve", "deny", "ask", "note", "assign", "recheck"):
            with self.subTest(action=action):
                self.assertEqual(self.client.get(f"{self.url}/{action}/").status_code, 405)
        self.assertEqual(self.client.get("/review/bulk/").status_code, 405)


class ApprovalStepTestCase(ReviewTestCase):
    def test_approval_refuses_an_address_the_tenant_no_longer_holds(self) -> None:
        req = self.make_request(self.acme, "203.0.113.5")
        Allocation.objects.filter(tenant=self.acme, cidr="203.0.113.0/26").update(released_at=timezone.now())
        with self.assertRaisesMessage(ValidationError, "released"):
            approve_request(req=req, actor=Actor.of_system("test"))
        req.refresh_from_db()
        self.assertEqual(req.state, "submitted")
        self.assertFalse(Exemption.objects.exists())
