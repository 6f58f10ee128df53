"""Staff who are members of a request's tenant can't act on it, in the browser or through the API."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from portal.accounts.models import Membership
from portal.audit.models import AuditEvent
from portal.enforcement.models import Exemption, ExemptionState
from portal.notifications.models import OutboundEmail
from portal.review.models import Approval
from portal.unblock.models import Message, State
from portal.vetting.models import VettingRun
from tests.base import make_exemption, make_user
from tests.review.base import ReviewTestCase

REFUSAL = (
    "You are a member of Acme Ltd, so you can&#x27;t act on its requests; another reviewer must take it."
)


class SeparationOfDutiesTestCase(ReviewTestCase):
    def setUp(self) -> None:
        # Sam reviews for the provider and also runs Acme's mail server.
        self.sam = make_user("sam@provider.example", "reviewer", "approver")
        Membership.objects.create(user=self.sam, tenant=self.acme)
        self.req = self.queued(self.acme, "203.0.113.5")
        self.events_before = AuditEvent.objects.count()

    def assertUntouched(self) -> None:
        self.req.refresh_from_db()
        self.assertEqual((self.req.state, self.req.assignee), (State.SUBMITTED, None))
        self.assertFalse(Exemption.objects.exists())
        self.assertFalse(Approval.objects.exists())
        self.assertFalse(Message.objects.exists())
        self.assertFalse(OutboundEmail.objects.exists())
        self.assertEqual(AuditEvent.objects.count(), self.events_before)

    def test_it_refuses_every_decision_in_the_browser(self) -> None:
        self.client.force_login(self.sam)
        posts: dict[str, dict[str, Any]] = {
            "approve": {"cidrs": ["203.0.113.5"], "expiry": "365"},
            "deny": {"text": "No."},
            "ask": {"question": "Why?"},
            "note": {"text": "Friends of mine."},
            "assign": {"claim": "1"},
        }
        for action, data in posts.items():
            with self.subTest(action=action):
                r = self.client.post(f"/review/requests/{self.req.id}/{action}/", data)
                self.assertContains(r, REFUSAL, status_code=403)
        self.assertUntouched()

    def test_it_refuses_to_re_run_the_checks_for_them(self) -> None:
        self.client.force_login(self.sam)
        runs_before = VettingRun.objects.filter(request=self.req).count()

        r = self.client.post(f"/review/requests/{self.req.id}/recheck/", follow=True)

        self.assertContains(r, REFUSAL)
        self.assertEqual(VettingRun.objects.filter(request=self.req).count(), runs_before)
        self.assertUntouched()

    def test_it_still_shows_the_request_to_them(self) -> None:
        self.client.force_login(self.sam)
        self.assertContains(self.client.get(f"/review/requests/{self.req.id}/"), self.req.reference)

    def test_it_skips_their_own_tenants_requests_in_bulk(self) -> None:
        self.client.force_login(self.sam)
        other = self.queued(self.globex, "198.51.100.70")
        r = self.client.post(
            "/review/bulk/", {"ids": [self.req.id, other.id], "action": "deny", "text": "No."}, follow=True
        )
        self.assertContains(r, "1 request(s) updated.")
        self.assertContains(r, f"Skipped {self.req.reference}: You are a member of Acme Ltd")
        other.refresh_from_db()
        self.assertEqual(other.state, State.DENIED)
        self.req.refresh_from_db()
        self.assertEqual(self.req.state, State.SUBMITTED)

    def test_it_refuses_every_decision_through_the_api(self) -> None:
        client = self.reviewer_api(self.sam)
        detail = REFUSAL.replace("&#x27;", "'")
        in_a_year = (timezone.now() + timedelta(days=365)).isoformat()
        posts: dict[str, dict[str, Any]] = {
            "approve": {"expires_at": in_a_year},
            "deny": {"reason": "No."},
            "request-info": {"question": "Why?"},
            "assign": {"assignee": "sam@provider.example"},
        }
        events_before = AuditEvent.objects.count()
        for action, body in posts.items():
            with self.subTest(action=action):
                r = client.post(f"/api/v1/review/requests/{self.req.id}/{action}", body, format="json")
                self.assertEqual(r.status_code, 403)
                self.assertEqual(r.json(), {"detail": detail})
        self.assertEqual(AuditEvent.objects.count(), events_before)
        self.assertUntouched()

    def test_no_one_can_assign_the_request_to_them(self) -> None:
        self.client.force_login(self.rita)
        r = self.client.post(f"/review/requests/{self.req.id}/assign/", {"assignee": self.sam.pk})
        self.assertContains(
            r,
            "sam@provider.example is a member of Acme Ltd, so they can&#x27;t act on its requests; "
            "assign another reviewer.",
            status_code=403,
        )
        api_response = self.reviewer_api(self.rita).post(
            f"/api/v1/review/requests/{self.req.id}/assign",
            {"assignee": "sam@provider.example"},
            format="json",
        )
        self.assertEqual(api_response.status_code, 403)
        self.assertUntouched()

    def test_they_act_on_other_tenants_requests(self) -> None:
        other = self.queued(self.globex, "198.51.100.70")
        self.client.force_login(self.sam)
        r = self.client.post(f"/review/requests/{other.id}/deny/", {"text": "No."})
        self.assertRedirects(r, f"/review/requests/{other.id}/", fetch_redirect_response=False)
        other.refresh_from_db()
        self.assertEqual(other.state, State.DENIED)

    def test_staff_of_the_tenant_cannot_reinstate_its_exemption(self) -> None:
        exemption = make_exemption(self.acme, "203.0.113.10", state=ExemptionState.SUSPENDED)
        Membership.objects.create(user=self.rita, tenant=self.acme)
        self.client.force_login(self.rita)
        r = self.client.post(
            f"/review/exemptions/{exemption.id}/reinstated/", {"reason": "mine"}, follow=True
        )
        self.assertContains(r, "You are a member of Acme Ltd")
        exemption.refresh_from_db()
        self.assertEqual(exemption.state, ExemptionState.SUSPENDED)
