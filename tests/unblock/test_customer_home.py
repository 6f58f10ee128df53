"""The customer's home: what needs them first, then their exemptions and open requests."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from portal.enforcement.models import ExemptionState
from portal.unblock.models import State
from portal.workflows import decisions
from tests.base import PortalTestCase, make_exemption, make_request


class CustomerHomeTestCase(PortalTestCase):
    def setUp(self) -> None:
        self.client.force_login(self.alice)

    def test_it_is_where_a_customer_lands(self) -> None:
        r = self.client.get("/")
        self.assertEqual(r.status_code, 200)
        self.assertTemplateUsed(r, "unblock/home.html")
        self.assertContains(r, "Nothing needs you now.")

    def test_it_says_a_reviewer_asked_a_question_and_quotes_it(self) -> None:
        req = make_request(self.acme, "203.0.113.5")
        decisions.request_info(req=req, user=self.rita, question="Which DKIM selector do you use?")
        r = self.client.get("/")
        self.assertContains(r, f"A reviewer asked you a question about request {req.reference}")
        self.assertContains(r, "Which DKIM selector do you use?")
        self.assertContains(r, f'href="/requests/{req.id}/#question-heading">Answer the question</a>')

    def test_it_says_when_an_exemption_expires_soon_with_a_renewal_action(self) -> None:
        ex = make_exemption(
            self.acme, "203.0.113.9/32", expires_at=timezone.now() + timedelta(days=9, hours=1)
        )
        make_exemption(self.acme, "203.0.113.10/32", expires_at=timezone.now() + timedelta(days=200))
        r = self.client.get("/")
        self.assertContains(r, 'Exemption for <span class="addresses">203.0.113.9</span> expires in 9 days')
        self.assertContains(r, f'action="/exemptions/{ex.id}/renew/"')
        self.assertNotContains(r, "203.0.113.10</span> expires in")

    def test_it_says_why_a_request_was_denied_and_offers_a_new_one(self) -> None:
        req = make_request(self.acme, "203.0.113.5")
        decisions.deny(req=req, user=self.rita, reason="No reverse DNS for 203.0.113.5.")
        r = self.client.get("/")
        self.assertContains(r, f"Request {req.reference} was denied")
        self.assertContains(r, "No reverse DNS for 203.0.113.5.")
        self.assertContains(r, f'href="/requests/new/?from={req.id}"')

    def test_it_says_a_suspended_exemption_needs_reinstatement(self) -> None:
        make_exemption(
            self.acme, "203.0.113.11/32", state=ExemptionState.SUSPENDED, state_reason="Spam complaints"
        )
        r = self.client.get("/")
        self.assertContains(r, "is suspended")
        self.assertContains(r, "Spam complaints")

    def test_it_lists_exemptions_and_open_requests(self) -> None:
        make_exemption(self.acme, "203.0.113.12/32")
        req = make_request(self.acme, "203.0.113.13", state=State.IN_REVIEW)
        closed = make_request(self.acme, "203.0.113.14", state=State.WITHDRAWN)
        r = self.client.get("/")
        self.assertEqual(list(r.context["open_requests"]), [req])
        self.assertContains(r, "203.0.113.12")
        self.assertNotContains(r, closed.reference)

    def test_it_shows_nothing_of_another_tenant(self) -> None:
        theirs = make_request(self.globex, "198.51.100.70")
        decisions.request_info(req=theirs, user=self.rita, question="Globex secret question?")
        make_exemption(self.globex, "198.51.100.71/32", expires_at=timezone.now() + timedelta(days=3))
        r = self.client.get("/")
        self.assertNotContains(r, "Globex secret question?")
        self.assertNotContains(r, "198.51.100.7")

    def test_it_sends_staff_to_the_queue(self) -> None:
        self.client.force_login(self.rita)
        self.assertRedirects(self.client.get("/"), "/review/", fetch_redirect_response=False)
