"""Four-eyes: where the policy asks for it, two different people approve, the second an approver."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.utils import timezone

from portal.audit.models import AuditEvent
from portal.enforcement.models import Exemption
from portal.review.models import Approval
from portal.review.policy import DecisionRefused, four_eyes_reasons
from portal.unblock.models import State, UnblockRequest
from portal.workflows import decisions
from tests.base import make_user
from tests.review.base import ReviewTestCase

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as TestResponse

BLOCK, SINGLE = "203.0.113.8/29", "203.0.113.20"


def in_a_year() -> datetime:
    return timezone.now() + timedelta(days=365)


class FourEyesWebTestCase(ReviewTestCase):
    def setUp(self) -> None:
        # A block larger than one address: four-eyes applies whatever the risk.
        self.req = self.queued(self.acme, BLOCK, SINGLE)

    def approve(self, *cidrs: str, expiry: str = "365", note: str = "") -> TestResponse:
        return self.client.post(
            f"/review/requests/{self.req.id}/approve/",
            {"cidrs": list(cidrs or (BLOCK, SINGLE)), "expiry": expiry, "note": note},
        )

    def test_it_records_the_first_approval_and_keeps_the_request_open(self) -> None:
        self.client.force_login(self.rita)
        r = self.approve(note="PTR and SPF look right.")
        self.assertRedirects(r, f"/review/requests/{self.req.id}/", fetch_redirect_response=False)
        self.req.refresh_from_db()
        self.assertEqual(self.req.state, State.IN_REVIEW)
        self.assertFalse(Exemption.objects.exists())
        approval = Approval.objects.get()
        self.assertEqual((approval.approver, approval.final), (self.rita, False))
        self.assertEqual(approval.cidrs, [BLOCK, SINGLE])
        event = AuditEvent.objects.for_object(self.req).get(action="review.first_approval")
        self.assertIn("it covers a block larger than one address", event.reason)

        page = self.client.get(f"/review/requests/{self.req.id}/")
        self.assertContains(page, "First approval recorded; the request now waits for a second approval")
        self.assertContains(page, "First approval by <strong>rita@provider.example</strong>")
        self.assertContains(page, "“PTR and SPF look right.”")

    def test_it_refuses_the_same_person_twice(self) -> None:
        self.client.force_login(self.ada)
        self.approve()
        r = self.approve()
        self.assertContains(
            r,
            "You gave the first approval; the final approval must come from another person.",
            status_code=403,
        )
        self.assertEqual(Approval.objects.count(), 1)
        self.assertFalse(Exemption.objects.exists())
        self.req.refresh_from_db()
        self.assertEqual(self.req.state, State.IN_REVIEW)

    def test_it_disables_approve_for_the_first_approver_and_says_why(self) -> None:
        self.client.force_login(self.ada)
        self.approve()
        page = self.client.get(f"/review/requests/{self.req.id}/")
        self.assertContains(
            page,
            '<p class="muted" id="approve-why">You gave the first approval; '
            "the final approval must come from another person.</p>",
            html=True,
        )
        self.assertContains(page, '<button type="submit" disabled aria-describedby="approve-why">')

    def test_it_offers_no_expiry_to_approvers_only(self) -> None:
        self.client.force_login(self.rita)
        page = self.client.get(f"/review/requests/{self.req.id}/")
        self.assertNotContains(page, '<option value="never"')
        self.assertContains(page, "No expiry is for approvers only.")
        self.client.force_login(self.ada)
        page = self.client.get(f"/review/requests/{self.req.id}/")
        self.assertContains(page, '<option value="never">No expiry (approvers only)</option>', html=True)
        self.assertNotContains(page, "No expiry is for approvers only.")

    def test_it_refuses_a_reviewer_as_the_second_approver(self) -> None:
        self.client.force_login(self.rita)
        self.approve()
        self.client.force_login(make_user("rex@provider.example", "reviewer"))
        r = self.approve()
        self.assertContains(
            r, "The final approval of this request needs someone with the approver role.", status_code=403
        )
        self.assertEqual(Approval.objects.count(), 1)
        self.assertFalse(Exemption.objects.exists())

    def test_an_approvers_second_approval_creates_one_exemption_per_approved_block(self) -> None:
        self.client.force_login(self.rita)
        self.approve()
        self.client.force_login(self.ada)
        page = self.client.get(f"/review/requests/{self.req.id}/")
        self.assertContains(page, "Approve</button>")
        r = self.approve(BLOCK, note="Second pair of eyes.")
        self.assertRedirects(r, f"/review/requests/{self.req.id}/", fetch_redirect_response=False)
        self.req.refresh_from_db()
        self.assertEqual(self.req.state, State.APPROVED)
        self.assertEqual([e.cidr for e in self.req.exemptions.all()], [BLOCK])
        self.assertEqual(
            list(Approval.objects.order_by("id").values_list("approver__email", "final")),
            [("rita@provider.example", False), ("ada@provider.example", True)],
        )
        self.assertEqual(AuditEvent.objects.filter(action="request.approve").count(), 1)

    def test_the_final_approval_cannot_add_addresses_the_first_did_not_approve(self) -> None:
        self.client.force_login(self.rita)
        self.approve(SINGLE)
        self.client.force_login(self.ada)
        page = self.client.get(f"/review/requests/{self.req.id}/")
        self.assertEqual(page.context["approve_form"]["cidrs"].value(), [SINGLE])
        r = self.approve(BLOCK, SINGLE)
        self.assertContains(r, f"{BLOCK} would have a single approval", status_code=403)
        self.assertFalse(Exemption.objects.exists())
        self.approve(SINGLE)
        self.assertEqual([e.cidr for e in Exemption.objects.all()], [SINGLE])

    def test_it_lets_an_approver_give_the_first_approval_to_another_approver(self) -> None:
        self.client.force_login(self.ada)
        self.approve()
        self.client.force_login(self.root)
        self.approve(expiry="never")
        self.req.refresh_from_db()
        self.assertEqual(self.req.state, State.APPROVED)
        self.assertEqual([e.expires_at for e in Exemption.objects.all()], [None, None])


class FourEyesPolicyTestCase(ReviewTestCase):
    def test_a_single_reviewer_approves_when_no_rule_applies(self) -> None:
        req = self.queued(self.acme, SINGLE, band="low", score=5)
        self.assertEqual(four_eyes_reasons(req), [])
        self.client.force_login(self.rita)
        self.client.post(f"/review/requests/{req.id}/approve/", {"cidrs": [SINGLE], "expiry": "90"})
        req.refresh_from_db()
        self.assertEqual(req.state, State.APPROVED)
        exemption = Exemption.objects.get()
        self.assertEqual((exemption.cidr, exemption.tenant, exemption.request), (SINGLE, self.acme, req))
        assert exemption.expires_at is not None
        self.assertAlmostEqual(
            exemption.expires_at, timezone.now() + timedelta(days=90), delta=timedelta(minutes=1)
        )
        self.assertEqual(Approval.objects.get().final, True)

    def test_it_applies_to_the_high_risk_band(self) -> None:
        req = self.queued(self.acme, SINGLE, band="high", score=80)
        self.assertEqual(four_eyes_reasons(req), ["the risk band is high"])
        outcome = decisions.approve(req=req, user=self.rita, cidrs=None, expires_at=in_a_year(), note="")
        self.assertFalse(outcome.final)

    def test_it_applies_to_young_tenants(self) -> None:
        self.globex.account_opened_on = timezone.localdate() - timedelta(days=30)
        self.globex.save()
        req = self.queued(self.globex, "198.51.100.70")
        self.assertEqual(four_eyes_reasons(req), ["the account is 30 days old (under 90)"])
        first = decisions.approve(req=req, user=self.rita, cidrs=None, expires_at=in_a_year(), note="")
        self.assertFalse(first.final)
        with self.assertRaisesMessage(DecisionRefused, "needs someone with the approver role"):
            rex = make_user("rex@provider.example", "reviewer")
            decisions.approve(req=req, user=rex, cidrs=None, expires_at=in_a_year(), note="")
        final = decisions.approve(req=req, user=self.ada, cidrs=None, expires_at=None, note="")
        self.assertTrue(final.final)
        self.assertEqual([e.cidr for e in final.exemptions], ["198.51.100.70"])

    def test_it_follows_the_settings(self) -> None:
        req = self.queued(self.acme, BLOCK, band="medium", score=40)
        with self.settings(FOUR_EYES_FOR_BLOCKS=False, FOUR_EYES_RISK_BANDS=["medium", "high"]):
            self.assertEqual(four_eyes_reasons(req), ["the risk band is medium"])
        with self.settings(FOUR_EYES_FOR_BLOCKS=False, FOUR_EYES_RISK_BANDS=[]):
            self.assertEqual(four_eyes_reasons(req), [])
            outcome = decisions.approve(req=req, user=self.rita, cidrs=None, expires_at=in_a_year(), note="")
        self.assertTrue(outcome.final)

    def test_an_unvetted_request_needs_two_approvals(self) -> None:
        req = self.make_request(self.acme, "203.0.113.5")
        self.assertEqual(four_eyes_reasons(req), [])
        req.vetted_at = None
        self.assertEqual(four_eyes_reasons(req), ["the automated checks have not finished"])


class FourEyesApiTestCase(ReviewTestCase):
    def setUp(self) -> None:
        self.req = self.queued(self.acme, BLOCK, SINGLE)
        self.url = f"/api/v1/review/requests/{self.req.id}/approve"

    def test_it_takes_two_people_the_second_an_approver(self) -> None:
        r = self.reviewer_api(self.rita).post(self.url, {"note": "Looks fine."}, format="json")
        self.assertEqual(r.status_code, 200, r.content)
        body = r.json()
        self.assertEqual(
            (body["final"], body["waiting_for"], body["exemptions"]),
            (False, "a second approval by another approver", []),
        )
        self.assertEqual(body["request"]["state"], State.IN_REVIEW)
        self.assertEqual(
            [(a["approver"], a["final"]) for a in body["request"]["approvals"]],
            [("rita@provider.example", False)],
        )
        self.assertEqual(body["request"]["four_eyes"], ["it covers a block larger than one address"])

        r = self.reviewer_api(self.rita).post(self.url, {}, format="json")
        self.assertEqual(r.status_code, 403)
        self.assertEqual(
            r.json(),
            {"detail": "You gave the first approval; the final approval must come from another person."},
        )
        rex = make_user("rex@provider.example", "reviewer")
        r = self.reviewer_api(rex).post(self.url, {}, format="json")
        self.assertEqual(r.status_code, 403)
        self.assertFalse(Exemption.objects.exists())

        r = self.reviewer_api(self.ada).post(self.url, {"cidrs": [BLOCK]}, format="json")
        self.assertEqual(r.status_code, 200, r.content)
        body = r.json()
        self.assertTrue(body["final"])
        self.assertEqual([e["cidr"] for e in body["exemptions"]], [BLOCK])
        self.assertEqual(body["request"]["state"], State.APPROVED)
        self.assertEqual(UnblockRequest.objects.get().state, State.APPROVED)
        self.assertEqual(Exemption.objects.count(), 1)
