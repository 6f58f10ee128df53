"""The request state machine: every legal step works and leaves a trace, every other is refused."""

from __future__ import annotations

from collections.abc import Callable

from portal.accounts.models import Actor, Membership
from portal.audit.models import AuditEvent
from portal.notifications.models import OutboundEmail
from portal.unblock.models import TRANSITIONS, IllegalTransition, MessageKind, State, UnblockRequest
from portal.workflows import decisions
from portal.workflows import requests as actions
from tests.base import PortalTestCase, complete_request_data, make_user

LEGAL = [(action, source, target) for action, (sources, target) in TRANSITIONS.items() for source in sources]
# The public workflow step for each action, called the way the portal calls it.
WORKFLOW: dict[str, Callable[[UnblockRequest, Actor], object]] = {
    "submit": lambda req, actor: actions.submit_request(req=req, actor=actor),
    "start_review": lambda req, actor: actions.start_review(req=req, actor=actor),
    "ask_for_info": lambda req, actor: actions.ask_for_info(req=req, actor=actor, question="Which selector?"),
    "answer": lambda req, actor: actions.answer_request(req=req, actor=actor, answer="Selector s1."),
    "approve": lambda req, actor: decisions.approve_request(req=req, actor=actor),
    "deny": lambda req, actor: decisions.deny_request(req=req, actor=actor, reason="Listed on a blocklist."),
    "withdraw": lambda req, actor: actions.withdraw_request(req=req, actor=actor, reason="Not needed."),
}
ILLEGAL = [
    (action, state) for action, (sources, _) in TRANSITIONS.items() for state in State if state not in sources
]


class StateMachineTestCase(PortalTestCase):
    def test_it_knows_every_state(self) -> None:
        reachable = {target for _, _, target in LEGAL} | {source for _, source, _ in LEGAL}
        self.assertEqual(reachable, set(State))
        self.assertEqual(len(LEGAL) + len(ILLEGAL), len(TRANSITIONS) * len(State))

    def test_it_makes_every_legal_transition(self) -> None:
        for action, source, target in LEGAL:
            with self.subTest(action=action, source=source):
                req = self.make_request(self.acme, state=source)
                self.assertEqual(req.transition(action), (source, target))
                req.refresh_from_db()
                self.assertEqual(req.state, target)
                if source == State.DRAFT:
                    self.assertEqual(req.submitted_at is not None, target == State.SUBMITTED)
                self.assertEqual(req.decided_at is not None, target in (State.APPROVED, State.DENIED))
                req.delete()

    def test_it_refuses_every_illegal_transition(self) -> None:
        for action, state in ILLEGAL:
            with self.subTest(action=action, state=state):
                req = self.make_request(self.acme, state=state)
                with self.assertRaises(IllegalTransition) as caught:
                    req.transition(action)
                self.assertEqual((caught.exception.action, caught.exception.current), (action, state))
                req.refresh_from_db()
                self.assertEqual(req.state, state)
                req.delete()

    def test_it_explains_an_illegal_transition(self) -> None:
        req = self.make_request(self.acme, state=State.WITHDRAWN)
        with self.assertRaisesMessage(IllegalTransition, "A request that is withdrawn can't be withdrawn."):
            req.transition("withdraw")
        with self.assertRaisesMessage(IllegalTransition, "A request that is withdrawn can't be answered."):
            req.transition("answer")

    def test_it_lets_only_one_of_two_concurrent_transitions_win(self) -> None:
        req = self.make_request(self.acme, state=State.IN_REVIEW)
        stale = UnblockRequest.objects.get(pk=req.pk)
        req.transition("approve")
        with self.assertRaisesMessage(IllegalTransition, "A request that is approved can't be withdrawn."):
            stale.transition("withdraw")
        self.assertEqual(stale.state, State.APPROVED)
        self.assertEqual(UnblockRequest.objects.get(pk=req.pk).state, State.APPROVED)

    def test_it_has_a_workflow_step_for_every_transition(self) -> None:
        self.assertEqual(set(WORKFLOW), set(TRANSITIONS))

    def test_it_audits_and_announces_every_legal_transition(self) -> None:
        carol = make_user("carol@acme.example")
        Membership.objects.create(user=carol, tenant=self.acme)
        actor = Actor(user=self.rita)
        for n, (action, source, target) in enumerate(LEGAL, start=1):
            with self.subTest(action=action, source=source):
                # A separate address each, so that open requests don't clash with each other.
                req = self.make_request(self.acme, f"203.0.113.{n}", state=source)
                emails = OutboundEmail.objects.count()
                WORKFLOW[action](req, actor)
                req.refresh_from_db()
                self.assertEqual(req.state, target)
                event = AuditEvent.objects.for_object(req).get(action=f"request.{action}")
                self.assertEqual(event.actor, self.rita)
                self.assertEqual(event.actor_label, "rita@provider.example")
                self.assertEqual(event.tenant_id, self.acme.pk)
                self.assertEqual((event.before, event.after), ({"state": source}, {"state": target}))
                self.assertEqual(OutboundEmail.objects.count(), emails + 1)
                email = OutboundEmail.objects.latest("id")
                self.assertEqual(email.to, ["alice@acme.example", "carol@acme.example"])
                self.assertIn(f"Request {req.reference} is now {target.label.lower()}", email.subject)
                self.assertIn(f"/requests/{req.id}/", email.body)

    def test_it_writes_nothing_for_an_illegal_transition(self) -> None:
        req = self.make_request(self.acme, state=State.WITHDRAWN)
        with self.assertRaises(IllegalTransition):
            actions.withdraw_request(req=req, actor=Actor(user=self.alice))
        self.assertEqual(AuditEvent.objects.for_object(req).count(), 0)
        self.assertEqual(OutboundEmail.objects.count(), 0)

    def test_it_does_not_email_inactive_members(self) -> None:
        carol = make_user("carol@acme.example")
        carol.is_active = False
        carol.save()
        Membership.objects.create(user=carol, tenant=self.acme)
        req = self.make_request(self.acme, state=State.SUBMITTED)
        actions.start_review(req=req, actor=Actor(user=self.rita))
        self.assertEqual(OutboundEmail.objects.get().to, ["alice@acme.example"])


class WorkflowTestCase(PortalTestCase):
    def test_it_submits_a_draft(self) -> None:
        draft = self.make_request(self.acme, state=State.DRAFT)
        actions.submit_request(req=draft, actor=Actor(user=self.alice))
        draft.refresh_from_db()
        self.assertEqual(draft.state, State.SUBMITTED)
        event = AuditEvent.objects.for_object(draft).get()
        self.assertEqual((event.action, event.actor), ("request.submit", self.alice))

    def test_it_refuses_to_submit_an_incomplete_draft(self) -> None:
        draft = self.make_request(self.acme, state=State.DRAFT)
        UnblockRequest.objects.filter(pk=draft.pk).update(mail_software="", aup_accepted_at=None)
        with self.assertRaisesMessage(
            Exception,
            "This draft is incomplete: Name the mail server software, e.g. Postfix 3.8. "
            "Accept the acceptable-use policy to submit the request. Edit the draft to add it.",
        ):
            actions.submit_request(req=draft, actor=Actor(user=self.alice))
        draft.refresh_from_db()
        self.assertEqual(draft.state, State.DRAFT)

    def test_it_asks_and_records_the_question(self) -> None:
        req = self.make_request(self.acme, state=State.SUBMITTED)
        actions.start_review(req=req, actor=Actor(user=self.rita))
        actions.ask_for_info(req=req, actor=Actor(user=self.rita), question="Which DKIM selector?")
        req.refresh_from_db()
        self.assertEqual(req.state, State.NEEDS_INFO)
        question = req.messages.get()
        self.assertEqual(
            (question.kind, question.body, question.author),
            (MessageKind.QUESTION, "Which DKIM selector?", self.rita),
        )
        self.assertEqual(
            list(AuditEvent.objects.for_object(req).order_by("id").values_list("action", flat=True)),
            ["request.start_review", "request.ask_for_info", "message.question"],
        )
        self.assertIn("Which DKIM selector?", OutboundEmail.objects.latest("id").body)


class CustomerStepsTestCase(PortalTestCase):
    def setUp(self) -> None:
        self.req = self.make_request(self.acme, state=State.SUBMITTED)
        actions.ask_for_info(
            req=self.req, actor=Actor(user=self.rita), question="Which DKIM selector do you use?"
        )
        OutboundEmail.objects.all().delete()
        self.client.force_login(self.alice)

    def assertAnswered(self, answer: str, actor_label: str) -> None:
        self.req.refresh_from_db()
        self.assertEqual(self.req.state, State.IN_REVIEW)
        message = self.req.messages.get(kind=MessageKind.ANSWER)
        self.assertEqual((message.body, message.author_label), (answer, actor_label))
        event = AuditEvent.objects.for_object(self.req).get(action="request.answer")
        self.assertEqual((event.before, event.after), ({"state": "needs_info"}, {"state": "in_review"}))
        self.assertEqual(event.actor_label, actor_label)
        email = OutboundEmail.objects.get()
        self.assertEqual(email.to, ["alice@acme.example"])
        self.assertIn("is now in review", email.subject)

    def test_it_takes_the_answer_on_the_web(self) -> None:
        page = self.client.get(f"/requests/{self.req.id}/")
        self.assertContains(page, "A reviewer asked you a question")
        r = self.client.post(
            f"/requests/{self.req.id}/answer/", {"text": "Selector s1, reports to dmarc@acme.example"}
        )
        self.assertRedirects(r, f"/requests/{self.req.id}/", fetch_redirect_response=False)
        self.assertAnswered("Selector s1, reports to dmarc@acme.example", "alice@acme.example")

    def test_it_shows_the_question_and_the_answer_on_the_timeline(self) -> None:
        self.client.post(f"/requests/{self.req.id}/answer/", {"text": "Selector <s1>"})
        page = self.client.get(f"/requests/{self.req.id}/")
        self.assertContains(page, "Question from the reviewer")
        self.assertContains(page, "Which DKIM selector do you use?", count=1)
        self.assertContains(page, "Answer from the customer")
        self.assertContains(page, "Selector &lt;s1&gt;")
        self.assertNotContains(page, "A reviewer asked you a question")
        timeline = page.context["timeline"]
        self.assertEqual(
            [e.get("message", e.get("event")).__class__.__name__ for e in timeline],
            ["AuditEvent", "Message", "AuditEvent", "Message"],
        )

    def test_it_hides_staff_notes_from_the_timeline(self) -> None:
        self.req.messages.create(
            author_label="rita", kind=MessageKind.COMMENT, body="Looks like a spammer", internal=True
        )
        page = self.client.get(f"/requests/{self.req.id}/")
        self.assertNotContains(page, "Looks like a spammer")
        r = self.api().get(f"/api/v1/requests/{self.req.id}")
        self.assertNotIn("Looks like a spammer", r.content.decode())

    def test_it_refuses_an_empty_answer_on_the_web(self) -> None:
        r = self.client.post(f"/requests/{self.req.id}/answer/", {"text": ""})
        self.assertEqual(r.status_code, 200)
        self.req.refresh_from_db()
        self.assertEqual(self.req.state, State.NEEDS_INFO)

    def test_it_refuses_an_answer_when_none_was_asked_on_the_web(self) -> None:
        self.client.post(f"/requests/{self.req.id}/answer/", {"text": "first"})
        r = self.client.post(f"/requests/{self.req.id}/answer/", {"text": "second"})
        self.assertEqual(r.status_code, 409)
        self.assertContains(r, "A request that is in review can&#x27;t be answered.", status_code=409)
        self.assertEqual(self.req.messages.filter(kind=MessageKind.ANSWER).count(), 1)

    def test_it_takes_the_answer_in_the_api(self) -> None:
        r = self.api().post(f"/api/v1/requests/{self.req.id}/answer", {"text": "Selector s1"}, format="json")
        self.assertEqual(r.status_code, 200, r.content)
        self.assertEqual(r.json()["state"], State.IN_REVIEW)
        self.assertEqual(
            [(m["kind"], m["body"]) for m in r.json()["messages"]],
            [("question", "Which DKIM selector do you use?"), ("answer", "Selector s1")],
        )
        self.assertAnswered("Selector s1", r.json()["messages"][1]["author_label"])
        self.assertTrue(r.json()["messages"][1]["author_label"].startswith("API key test customer (eep_"))

    def test_it_answers_409_to_an_answer_when_none_was_asked_in_the_api(self) -> None:
        api = self.api()
        api.post(f"/api/v1/requests/{self.req.id}/answer", {"text": "first"}, format="json")
        r = api.post(f"/api/v1/requests/{self.req.id}/answer", {"text": "second"}, format="json")
        self.assertEqual(r.status_code, 409)
        self.assertEqual(r.json(), {"detail": "A request that is in review can't be answered."})

    def test_it_withdraws_on_the_web_and_refuses_to_withdraw_twice(self) -> None:
        r = self.client.post(f"/requests/{self.req.id}/withdraw/", {"reason": "Moved to a relay"})
        self.assertRedirects(r, f"/requests/{self.req.id}/", fetch_redirect_response=False)
        self.req.refresh_from_db()
        self.assertEqual(self.req.state, State.WITHDRAWN)
        event = AuditEvent.objects.for_object(self.req).get(action="request.withdraw")
        self.assertEqual((event.reason, event.actor), ("Moved to a relay", self.alice))
        r = self.client.post(f"/requests/{self.req.id}/withdraw/", {"reason": ""}, follow=True)
        self.assertContains(r, "A request that is withdrawn can&#x27;t be withdrawn.")
        self.assertEqual(AuditEvent.objects.for_object(self.req).filter(action="request.withdraw").count(), 1)

    def test_it_answers_409_to_withdrawing_a_withdrawn_request_in_the_api(self) -> None:
        api = self.api()
        r = api.post(f"/api/v1/requests/{self.req.id}/withdraw", {"reason": "done"}, format="json")
        self.assertEqual(r.status_code, 200, r.content)
        self.assertEqual(r.json()["state"], State.WITHDRAWN)
        r = api.post(f"/api/v1/requests/{self.req.id}/withdraw", {}, format="json")
        self.assertEqual(r.status_code, 409)
        self.assertEqual(r.json(), {"detail": "A request that is withdrawn can't be withdrawn."})

    def test_it_answers_409_to_submitting_twice_in_the_api(self) -> None:
        draft = self.make_request(self.acme, "203.0.113.20", state=State.DRAFT)
        api = self.api()
        r = api.post(f"/api/v1/requests/{draft.id}/submit")
        self.assertEqual(r.status_code, 200, r.content)
        self.assertEqual(r.json()["state"], State.SUBMITTED)
        r = api.post(f"/api/v1/requests/{draft.id}/submit")
        self.assertEqual(r.status_code, 409)
        self.assertEqual(r.json(), {"detail": "A request that is submitted can't be submitted."})
        self.assertEqual(AuditEvent.objects.for_object(draft).filter(action="request.submit").count(), 1)

    def test_it_submits_a_draft_on_the_web_once(self) -> None:
        draft = self.make_request(self.acme, "203.0.113.20", state=State.DRAFT)
        self.client.post(f"/requests/{draft.id}/submit/")
        draft.refresh_from_db()
        self.assertEqual(draft.state, State.SUBMITTED)
        r = self.client.post(f"/requests/{draft.id}/submit/", follow=True)
        self.assertContains(r, "A request that is submitted can&#x27;t be submitted.")

    def test_it_replaces_a_drafts_contents_on_the_web(self) -> None:
        draft = self.make_request(self.acme, "203.0.113.20", state=State.DRAFT)
        page = self.client.get(f"/requests/{draft.id}/edit/")
        self.assertContains(page, "203.0.113.20")
        body = {**page.context["form"].initial, "addresses": "203.0.113.21\n203.0.113.22", "action": "draft"}
        body["accept_aup"] = "on"
        r = self.client.post(f"/requests/{draft.id}/edit/", body)
        self.assertRedirects(r, f"/requests/{draft.id}/", fetch_redirect_response=False)
        draft.refresh_from_db()
        self.assertEqual(draft.state, State.DRAFT)
        self.assertEqual([b.cidr for b in draft.blocks.all()], ["203.0.113.21", "203.0.113.22"])
        event = AuditEvent.objects.for_object(draft).get(action="request.draft_saved")
        self.assertEqual(
            (event.before["addresses"], event.after["addresses"]),
            (["203.0.113.20"], ["203.0.113.21", "203.0.113.22"]),
        )

    def test_it_replaces_a_drafts_contents_and_submits_it_in_the_api(self) -> None:
        draft = self.make_request(self.acme, "203.0.113.20", state=State.DRAFT)
        body = complete_request_data(addresses=["203.0.113.24/30"])
        r = self.api().put(f"/api/v1/requests/{draft.id}", body, format="json")
        self.assertEqual(r.status_code, 200, r.content)
        self.assertEqual((r.json()["state"], r.json()["addresses"]), (State.SUBMITTED, ["203.0.113.24/30"]))
        self.assertEqual(r.json()["mail_software"], "Postfix 3.8")

    def test_it_edits_only_drafts(self) -> None:
        r = self.client.get(f"/requests/{self.req.id}/edit/", follow=True)
        self.assertRedirects(r, f"/requests/{self.req.id}/")
        self.assertContains(r, "Only drafts can be edited")
        body = {"addresses": ["203.0.113.30"], "submit": False}
        api = self.api().put(f"/api/v1/requests/{self.req.id}", body, format="json")
        self.assertEqual(api.status_code, 409)
        self.assertEqual(
            api.json()["detail"],
            "A request that is waiting for information can't be edited (only drafts can be).",
        )
        self.assertEqual([b.cidr for b in self.req.blocks.all()], ["203.0.113.5"])
