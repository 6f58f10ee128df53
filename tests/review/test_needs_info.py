"""A reviewer's question, the customer's answer, and the request's way back into the queue."""

from __future__ import annotations

from portal.audit.models import AuditEvent
from portal.notifications.models import OutboundEmail
from portal.unblock.models import MessageKind, State
from tests.review.base import ReviewTestCase

QUESTION = "Which DKIM selector do you sign with?"


class NeedsInfoRoundTripTestCase(ReviewTestCase):
    def setUp(self) -> None:
        self.req = self.queued(self.acme, "203.0.113.5")
        self.in_queue = self.queued(self.acme, "203.0.113.6")  # another open request, for contrast

    def queue_ids(self, **params: str) -> list[str]:
        self.client.force_login(self.rita)
        return [str(r.id) for r in self.client.get("/review/", params).context["page"].rows]

    def test_the_customer_answers_and_the_request_returns_to_the_queue(self) -> None:
        self.client.force_login(self.rita)
        r = self.client.post(f"/review/requests/{self.req.id}/ask/", {"question": QUESTION})
        self.assertRedirects(r, f"/review/requests/{self.req.id}/", fetch_redirect_response=False)
        self.req.refresh_from_db()
        self.assertEqual(self.req.state, State.NEEDS_INFO)
        self.assertEqual(self.queue_ids(state="needs_info"), [str(self.req.id)])
        self.assertNotIn(str(self.req.id), self.queue_ids(state="in_review"))

        self.client.force_login(self.alice)
        page = self.client.get(f"/requests/{self.req.id}/")
        self.assertContains(page, "A reviewer asked you a question")
        self.assertContains(page, QUESTION)
        r = self.client.post(f"/requests/{self.req.id}/answer/", {"text": "Selector s1."})
        self.assertRedirects(r, f"/requests/{self.req.id}/", fetch_redirect_response=False)
        self.req.refresh_from_db()
        self.assertEqual(self.req.state, State.IN_REVIEW)

        self.assertEqual(self.queue_ids(state="in_review"), [str(self.req.id)])
        self.assertEqual(self.queue_ids(state="needs_info"), [])
        staff_page = self.client.get(f"/review/requests/{self.req.id}/")
        self.assertContains(staff_page, QUESTION)
        self.assertContains(staff_page, "Selector s1.")
        self.assertEqual(
            list(self.req.messages.values_list("kind", "author_label")),
            [(MessageKind.QUESTION, "rita@provider.example"), (MessageKind.ANSWER, "alice@acme.example")],
        )

        emails = list(OutboundEmail.objects.order_by("id"))
        self.assertEqual([e.to for e in emails], [["alice@acme.example"]] * 2)
        self.assertIn("is now needs information", emails[0].subject)
        self.assertIn(QUESTION, emails[0].body)
        self.assertIn("is now in review", emails[1].subject)
        self.assertEqual(
            list(
                AuditEvent.objects.for_object(self.req)
                .filter(action__startswith="request.")
                .order_by("id")
                .values_list("action", flat=True)
            ),
            ["request.ask_for_info", "request.answer"],
        )

    def test_it_works_through_the_reviewer_api_and_the_customer_api(self) -> None:
        reviewer = self.reviewer_api(self.rita)
        r = reviewer.post(
            f"/api/v1/review/requests/{self.req.id}/request-info", {"question": QUESTION}, format="json"
        )
        self.assertEqual(r.status_code, 200, r.content)
        self.assertEqual(r.json()["state"], State.NEEDS_INFO)
        listed = reviewer.get("/api/v1/review/requests", {"state": "needs_info"}).json()["results"]
        self.assertEqual([item["id"] for item in listed], [str(self.req.id)])

        r = self.api().post(f"/api/v1/requests/{self.req.id}/answer", {"text": "Selector s1."}, format="json")
        self.assertEqual(r.status_code, 200, r.content)

        listed = reviewer.get("/api/v1/review/requests", {"state": "in_review"}).json()["results"]
        self.assertEqual([item["id"] for item in listed], [str(self.req.id)])
        detail = reviewer.get(f"/api/v1/review/requests/{self.req.id}").json()
        self.assertEqual(
            [(m["kind"], m["body"]) for m in detail["messages"]],
            [
                ("question", QUESTION),
                ("answer", "Selector s1."),
            ],
        )
        self.assertEqual(OutboundEmail.objects.count(), 2)

    def test_it_refuses_a_question_on_a_decided_request(self) -> None:
        self.client.force_login(self.rita)
        self.client.post(f"/review/requests/{self.req.id}/deny/", {"text": "No."})
        r = self.client.post(f"/review/requests/{self.req.id}/ask/", {"question": QUESTION})
        self.assertContains(r, "A request that is denied can&#x27;t be sent a question.", status_code=409)
        self.assertFalse(self.req.messages.exists())

    def test_it_refuses_an_empty_question(self) -> None:
        self.client.force_login(self.rita)
        r = self.client.post(f"/review/requests/{self.req.id}/ask/", {"question": ""})
        self.assertContains(r, "This field is required.", status_code=400)
        self.req.refresh_from_db()
        self.assertEqual(self.req.state, State.SUBMITTED)
