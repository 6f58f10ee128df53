"""Two people deciding the same request at the same moment: exactly one decision stands.

Each decision runs in its own thread with its own database connection, released together by a
barrier, so that the two transactions really overlap. Only PostgreSQL has the row locks this is
about; SQLite serialises every write and would prove nothing.
"""

from __future__ import annotations

import threading
import unittest
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import connection
from django.test import TransactionTestCase
from django.utils import timezone
from rest_framework.test import APIClient

from portal.accounts.models import ApiKey, Scope, Tenant
from portal.audit.models import AuditEvent
from portal.enforcement.models import Exemption
from portal.review.models import Approval
from portal.review.policy import DecisionRefused
from portal.unblock.models import IllegalTransition, State, UnblockRequest
from portal.workflows import decisions
from tests.base import allocate, make_request, make_user

DECISIONS = ("request.approve", "request.deny")

type Outcome = object  # what the call returned, or the exception it raised


@unittest.skipUnless(
    connection.vendor == "postgresql", "concurrent decisions need PostgreSQL's row locks (set DATABASE_URL)"
)
class ConcurrentDecisionTestCase(TransactionTestCase):
    def setUp(self) -> None:
        self.acme = Tenant.objects.create(
            external_id="acme-1", name="Acme Ltd", account_opened_on=date(2025, 1, 1), identity_verified=True
        )
        allocate(self.acme, "203.0.113.0/26")
        self.rita = make_user("rita@provider.example", "reviewer")
        self.ada = make_user("ada@provider.example", "reviewer", "approver")
        self.root = make_user("root@provider.example", "reviewer", "approver", "admin")

    def race(self, *calls: Callable[[], object]) -> list[Outcome]:
        barrier = threading.Barrier(len(calls))
        outcomes: list[Outcome] = [None] * len(calls)

        def run(i: int, call: Callable[[], object]) -> None:
            try:
                barrier.wait(timeout=10)
                outcomes[i] = call()
            except Exception as exc:
                outcomes[i] = exc
            finally:
                connection.close()

        threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        return outcomes

    def approve(self, req: UnblockRequest, user: User) -> Callable[[], object]:
        in_a_year = timezone.now() + timedelta(days=365)
        return lambda: decisions.approve(req=req, user=user, cidrs=None, expires_at=in_a_year, note="")

    def deny(self, req: UnblockRequest, user: User) -> Callable[[], object]:
        return lambda: decisions.deny(req=req, user=user, reason="Use port 587.")

    def assertOneDecision(self, req: UnblockRequest, outcomes: list[Outcome]) -> None:
        losers = [o for o in outcomes if isinstance(o, Exception)]
        self.assertEqual(len(losers), 1, outcomes)
        self.assertIsInstance(losers[0], IllegalTransition | DecisionRefused)
        self.assertEqual(AuditEvent.objects.for_object(req).filter(action__in=DECISIONS).count(), 1)
        req.refresh_from_db()
        self.assertIn(req.state, (State.APPROVED, State.DENIED))

    def test_two_approvals_at_once_make_one_set_of_exemptions(self) -> None:
        req = make_request(self.acme, "203.0.113.5", "203.0.113.6")
        outcomes = self.race(self.approve(req, self.rita), self.approve(req, self.ada))
        self.assertOneDecision(req, outcomes)
        self.assertEqual(sorted(e.cidr for e in Exemption.objects.all()), ["203.0.113.5", "203.0.113.6"])
        self.assertEqual(Approval.objects.count(), 1)
        loser = next(o for o in outcomes if isinstance(o, Exception))
        self.assertEqual(str(loser), "A request that is approved can't be approved.")

    def test_an_approval_and_a_denial_at_once_leave_one_decision(self) -> None:
        for round_ in range(5):
            # A fresh address each round: an approval in an earlier round exempts its address.
            req = make_request(self.acme, f"203.0.113.{5 + round_}")
            outcomes = self.race(self.approve(req, self.rita), self.deny(req, self.ada))
            self.assertOneDecision(req, outcomes)
            req.refresh_from_db()
            exemptions = Exemption.objects.filter(request=req).count()
            self.assertEqual(exemptions, 1 if req.state == State.APPROVED else 0)

    def test_a_double_submitted_first_approval_is_recorded_once(self) -> None:
        req = make_request(self.acme, "203.0.113.8/29")  # four-eyes: a block
        outcomes = self.race(self.approve(req, self.rita), self.approve(req, self.rita))
        refusals = [o for o in outcomes if isinstance(o, Exception)]
        self.assertEqual(len(refusals), 1, outcomes)
        self.assertIsInstance(refusals[0], DecisionRefused)
        self.assertEqual(Approval.objects.count(), 1)
        self.assertFalse(Exemption.objects.exists())

    def test_two_approvers_at_once_under_four_eyes_give_first_and_final_approval(self) -> None:
        req = make_request(self.acme, "203.0.113.8/29")
        outcomes = self.race(self.approve(req, self.ada), self.approve(req, self.root))
        self.assertFalse(any(isinstance(o, Exception) for o in outcomes), outcomes)
        self.assertEqual(sorted(Approval.objects.values_list("final", flat=True)), [False, True])
        self.assertEqual(Exemption.objects.count(), 1)
        self.assertEqual(AuditEvent.objects.for_object(req).filter(action__in=DECISIONS).count(), 1)

    def test_two_api_decisions_at_once_answer_200_and_409(self) -> None:
        req = make_request(self.acme, "203.0.113.5")
        clients = []
        for user in (self.rita, self.ada):
            _, key = ApiKey.issue(name="race", scope=Scope.REVIEWER, tenant=None, created_by=user)
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
            clients.append(client)
        url = f"/api/v1/review/requests/{req.id}"

        def approve() -> tuple[int, Any]:
            r = clients[0].post(f"{url}/approve", {}, format="json")
            return r.status_code, r.json()

        def deny() -> tuple[int, Any]:
            r = clients[1].post(f"{url}/deny", {"reason": "Use port 587."}, format="json")
            return r.status_code, r.json()

        outcomes = self.race(approve, deny)
        responses = [o for o in outcomes if isinstance(o, tuple)]
        self.assertEqual(len(responses), 2, outcomes)
        self.assertEqual(sorted(status for status, _ in responses), [200, 409])
        conflict = next(body for status, body in responses if status == 409)
        self.assertRegex(conflict["detail"], r"^A request that is (approved|denied) can't be")
        self.assertEqual(AuditEvent.objects.for_object(req).filter(action__in=DECISIONS).count(), 1)
        req.refresh_from_db()
        self.assertEqual(Exemption.objects.count(), 1 if req.state == State.APPROVED else 0)
