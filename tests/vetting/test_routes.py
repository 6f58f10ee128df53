from __future__ import annotations

from unittest import mock

from django.test import override_settings
from django.utils import timezone

from portal.audit.models import AuditEvent
from portal.enforcement.models import Exemption
from portal.reputation.models import Kind, ReputationEvent
from portal.unblock.models import State, UnblockRequest
from portal.vetting.models import CheckResult, Route, RunState, VettingRun
from portal.workflows.vetting import run_due_vetting
from tests.base import complete_request_data
from tests.vetting.base import DnsTestCase


class WorkerDied(BaseException):
    """Stands for the worker process ending mid-transaction: nothing catches it, and the
    database rolls back what the transaction had written, as PostgreSQL does for a killed backend."""


class VettingRoutesTestCase(DnsTestCase):
    def file(self, *addresses: str, domains: tuple[str, ...] = ("acme.example",)) -> UnblockRequest:
        body = complete_request_data(addresses=list(addresses), sending_domains=list(domains))
        r = self.api().post("/api/v1/requests/", body, format="json")
        self.assertEqual(r.status_code, 201, r.content)
        return UnblockRequest.objects.get(pk=r.json()["id"])

    def vet(self, req: UnblockRequest) -> VettingRun:
        self.assertEqual(run_due_vetting(), 1)
        req.refresh_from_db()
        return VettingRun.objects.get(request=req)

    def test_submitting_queues_a_run_that_stores_every_check(self) -> None:
        req = self.file("203.0.113.10")
        self.assertEqual(VettingRun.objects.get(request=req).state, RunState.PENDING)
        run = self.vet(req)
        self.assertEqual(run.state, RunState.DONE)
        checks = set(CheckResult.objects.filter(run=run).values_list("check_name", flat=True))
        self.assertEqual(
            checks,
            {
                "account_age",
                "paid_invoices",
                "identity",
                "billing_standing",
                "ownership",
                "rdns",
                "dnsbl",
                "spf",
                "dmarc",
                "dbl",
                "tenant_history",
                "address_history",
                "blocked_attempts",
            },
        )
        self.assertEqual(set(run.results.values_list("outcome", flat=True)), {"pass"})
        self.assertEqual((req.state, req.risk_score, req.risk_band), (State.SUBMITTED, 0, "low"))
        self.assertEqual(run.route, Route.REVIEW)
        self.assertTrue(AuditEvent.objects.for_object(req).filter(action="request.vetted").exists())

    def test_it_denies_a_listed_address_and_tells_the_customer_how_to_fix_it(self) -> None:
        req = self.file("203.0.113.20")
        run = self.vet(req)
        self.assertEqual((run.route, req.state), (Route.AUTO_DENY, State.DENIED))
        self.assertEqual(run.breakdown[0]["points"], 100)
        self.assertRegex(str(run.breakdown[0]["text"]), r"^\+100 Listed on CSS, SBL .* since \d{4}-\d\d-\d\d")
        self.client.force_login(self.alice)
        page = self.client.get(f"/requests/{req.id}/").content.decode()
        self.assertIn("declined automatically", page)
        self.assertIn("https://check.spamhaus.org/results/?query=203.0.113.20", page)
        self.assertFalse(Exemption.objects.exists())

    def test_it_records_the_listing_once_as_a_reputation_event(self) -> None:
        self.vet(self.file("203.0.113.20"))
        events = ReputationEvent.objects.filter(cidr="203.0.113.20", kind=Kind.LISTED)
        self.assertEqual(events.count(), 1)
        self.assertEqual(events.get().tenant, self.acme)
        self.assertTrue(events.get().abuse)

    def test_dns_errors_go_to_review_and_never_pass(self) -> None:
        req = self.file("203.0.113.22", "203.0.113.14")
        run = self.vet(req)
        self.assertEqual(run.route, Route.REVIEW)
        dnsbl = run.results.get(check_name="dnsbl", subject="203.0.113.22")
        self.assertEqual(dnsbl.outcome, "error")
        self.assertEqual(run.results.get(check_name="rdns", subject="203.0.113.14").outcome, "error")

    def test_a_suspended_tenant_is_denied(self) -> None:
        req = self.file("203.0.113.10")
        self.acme.billing_standing = "suspended"
        self.acme.save()
        run = self.vet(req)
        self.assertEqual(req.state, State.DENIED)
        self.assertTrue(run.results.get(check_name="billing_standing").hard)

    def test_it_checks_every_address_of_a_block(self) -> None:
        req = self.file("203.0.113.8/29")
        run = self.vet(req)
        self.assertEqual(run.results.filter(check_name="rdns").count(), 8)
        self.assertEqual(run.results.filter(check_name="dnsbl").count(), 8)

    @override_settings(AUTO_APPROVE_ENABLED=True)
    def test_it_approves_automatically_only_when_enabled_and_clean(self) -> None:
        req = self.file("203.0.113.10")
        run = self.vet(req)
        self.assertEqual((run.route, req.state), (Route.AUTO_APPROVE, State.APPROVED))
        self.assertEqual(Exemption.objects.get().cidr, "203.0.113.10")

    @override_settings(AUTO_APPROVE_ENABLED=True)
    def test_a_warning_keeps_auto_approval_off(self) -> None:
        req = self.file("203.0.113.10", domains=("weak.example",))
        run = self.vet(req)
        self.assertEqual((run.route, req.state), (Route.REVIEW, State.SUBMITTED))
        self.assertGreater(req.risk_score or 0, 0)

    def test_the_customer_sees_their_failing_checks_but_not_staff_history(self) -> None:
        req = self.file("203.0.113.11", domains=("nospf.example",))
        self.vet(req)
        self.client.force_login(self.alice)
        page = self.client.get(f"/requests/{req.id}/").content.decode()
        self.assertIn("does not resolve back to 203.0.113.11", page)
        self.assertIn("Publish an SPF record for nospf.example", page)
        self.assertNotIn("earlier denied requests", page)

    def test_a_worker_dying_after_the_checks_ran_leaves_the_run_to_be_retried_with_its_route(self) -> None:
        req = self.file("203.0.113.20")
        with (
            mock.patch("portal.workflows.vetting.deny_in_transaction", side_effect=WorkerDied),
            self.assertRaises(WorkerDied),
        ):
            run_due_vetting()
        run = VettingRun.objects.get(request=req)
        req.refresh_from_db()
        # Checks, route and state change are one transaction: none of them was kept.
        self.assertEqual((run.state, req.state), (RunState.RUNNING, State.SUBMITTED))
        self.assertFalse(CheckResult.objects.filter(run=run).exists())
        self.assertEqual(run_due_vetting(), 0, "the dead worker's lease still holds the run")

        VettingRun.objects.filter(pk=run.pk).update(claimed_until=timezone.now())
        run = self.vet(req)
        self.assertEqual((run.state, run.route, req.state), (RunState.DONE, Route.AUTO_DENY, State.DENIED))
        self.assertEqual(run.attempts, 2)
        self.assertEqual(AuditEvent.objects.for_object(req).filter(action="request.vetted").count(), 1)
