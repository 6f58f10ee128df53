from __future__ import annotations

from django.utils import timezone

from portal.accounts.models import Scope
from portal.unblock.models import Message, MessageKind, State
from portal.vetting.models import CheckResult, RunReason, RunState, VettingRun
from portal.workflows.decisions import deny, request_info
from tests.base import PortalTestCase


class RequestDetailApiTestCase(PortalTestCase):
    def setUp(self) -> None:
        self.req = self.make_request()
        run = VettingRun.objects.create(
            request=self.req,
            reason=RunReason.SUBMITTED,
            requested_by="system",
            state=RunState.DONE,
            finished_at=timezone.now(),
        )
        CheckResult.objects.create(
            run=run,
            check_name="spf",
            subject="acme.example / 203.0.113.5",
            outcome="fail",
            summary="acme.example has no SPF record",
            fix='Publish an SPF record for acme.example, e.g. "v=spf1 ip4:203.0.113.5 -all".',
        )
        CheckResult.objects.create(
            run=run, check_name="rdns", subject="203.0.113.5", outcome="pass", summary="PTR mx.acme.example"
        )
        CheckResult.objects.create(
            run=run,
            check_name="tenant_history",
            subject="acme-1",
            outcome="warn",
            summary="Two revoked exemptions this year",
            staff_only=True,
        )

    def detail(self) -> dict[str, object]:
        r = self.api().get(f"/api/v1/requests/{self.req.id}")
        self.assertEqual(r.status_code, 200, r.content)
        data: dict[str, object] = r.json()
        return data

    def test_it_shows_the_customer_visible_checks_with_their_fix(self) -> None:
        checks = self.detail()["checks"]
        self.assertEqual(
            checks,
            [
                {
                    "check": "spf",
                    "title": "SPF",
                    "subject": "acme.example / 203.0.113.5",
                    "outcome": "fail",
                    "summary": "acme.example has no SPF record",
                    "fix": 'Publish an SPF record for acme.example, e.g. "v=spf1 ip4:203.0.113.5 -all".',
                },
                {
                    "check": "rdns",
                    "title": "Reverse DNS",
                    "subject": "203.0.113.5",
                    "outcome": "pass",
                    "summary": "PTR mx.acme.example",
                    "fix": "",
                },
            ],
        )

    def test_it_says_whether_checks_are_still_running(self) -> None:
        self.assertIs(self.detail()["checks_running"], False)
        VettingRun.objects.create(request=self.req, reason=RunReason.CUSTOMER_RECHECK, requested_by="alice")
        self.assertIs(self.detail()["checks_running"], True)

    def test_it_shows_the_reviewers_question_but_not_internal_notes(self) -> None:
        request_info(req=self.req, user=self.rita, question="Which host sends the newsletters?")
        Message.objects.create(
            request=self.req, author_label="Rita", kind=MessageKind.NOTE, body="Looks fine", internal=True
        )
        data = self.detail()
        self.assertEqual(data["state"], State.NEEDS_INFO)
        questions = data["questions"]
        assert isinstance(questions, list)
        self.assertEqual([q["body"] for q in questions], ["Which host sends the newsletters?"])
        self.assertEqual(questions[0]["kind"], "question")
        self.assertNotIn("Looks fine", str(data))

    def test_it_shows_the_denial_reason(self) -> None:
        self.assertIsNone(self.detail()["denial_reason"])
        deny(req=self.req, user=self.ada, reason="The addresses are listed on the SBL.")
        self.assertEqual(self.detail()["denial_reason"], "The addresses are listed on the SBL.")

    def test_it_answers_404_to_a_customer_of_another_tenant(self) -> None:
        r = self.api(Scope.CUSTOMER, tenant=self.globex).get(f"/api/v1/requests/{self.req.id}")
        self.assertEqual(r.status_code, 404)
        self.assertNotIn("SPF", r.content.decode())

    def test_it_keeps_the_list_light(self) -> None:
        # The list is a page of many requests: the checks are for the detail only.
        r = self.api().get("/api/v1/requests/")
        self.assertNotIn("checks", r.json()["results"][0])
