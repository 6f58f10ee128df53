"""Periodic jobs: each due time is claimed by exactly one worker, and expiry takes exemptions out
of the feeds once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from portal.accounts.models import Actor, Scope
from portal.enforcement.models import (
    Delivery,
    Exemption,
    ExemptionState,
    FeedChange,
    PeriodicJob,
    WebhookEndpoint,
)
from portal.workflows import exemptions as actions
from portal.workflows.periodic import claim, expire_exemptions, run_due_periodic_jobs, schedule
from tests.base import make_exemption
from tests.enforcement.base import EnforcementTestCase, PostgresTestCase, dnsbl


def expire_now(*exemptions: Exemption) -> None:
    Exemption.objects.filter(pk__in=[e.pk for e in exemptions]).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )


class ExpiryTestCase(EnforcementTestCase):
    def test_it_expires_the_exemptions_that_are_due_once(self) -> None:
        endpoint = WebhookEndpoint.objects.create(url="https://hooks.example/h")
        due, suspended_and_due, not_due = self.approve("203.0.113.5", "203.0.113.6", "203.0.113.7")
        actions.change(suspended_and_due, "exemption.suspended", actor=Actor(user=self.ada), reason="Spam")
        expire_now(due, suspended_and_due)

        self.assertEqual(expire_exemptions(), 2)
        self.assertEqual(expire_exemptions(), 0)

        states = dict(Exemption.objects.values_list("cidr", "state"))
        self.assertEqual(
            states, {"203.0.113.5": "expired", "203.0.113.6": "expired", "203.0.113.7": "active"}
        )
        expired = FeedChange.objects.filter(event="exemption.expired")
        self.assertEqual(
            sorted(expired.values_list("op", "cidr")), [("remove", "203.0.113.5"), ("remove", "203.0.113.6")]
        )
        self.assertEqual(Delivery.objects.filter(endpoint=endpoint, event="exemption.expired").count(), 2)
        feed = self.api(Scope.ENFORCEMENT).get("/api/v1/feeds/exemptions.txt")
        self.assertEqual(feed.content, b"203.0.113.7\n")
        self.assertEqual(Exemption.objects.get(pk=not_due.pk).state, ExemptionState.ACTIVE)

    def test_an_exemption_without_expiry_never_expires(self) -> None:
        (exemption,) = self.approve("203.0.113.5")
        Exemption.objects.filter(pk=exemption.pk).update(expires_at=None)
        self.assertEqual(expire_exemptions(), 0)

    def test_expiry_does_not_undo_a_renewal_that_committed_first(self) -> None:
        exemption = make_exemption(
            self.acme, "203.0.113.10", expires_at=timezone.now() - timedelta(minutes=1)
        )
        stale = Exemption.objects.get(pk=exemption.pk)  # what the job listed
        Exemption.objects.filter(pk=exemption.pk).update(expires_at=timezone.now() + timedelta(days=365))
        self.assertFalse(actions.move(stale, "exemption.expired", actor=Actor.of_system("test")))
        self.assertEqual(expire_exemptions(), 0)
        exemption.refresh_from_db()
        self.assertEqual(exemption.state, ExemptionState.ACTIVE)


class ScheduleTestCase(EnforcementTestCase):
    def test_it_claims_a_due_time_once(self) -> None:
        self.assertTrue(claim("nightly", timedelta(hours=1)))
        self.assertFalse(claim("nightly", timedelta(hours=1)))
        job = PeriodicJob.objects.get(name="nightly")
        assert job.last_run_at is not None
        self.assertEqual(job.next_run_at, job.last_run_at + timedelta(hours=1))

        PeriodicJob.objects.filter(name="nightly").update(next_run_at=timezone.now())
        self.assertTrue(claim("nightly", timedelta(hours=1)))

    def test_it_runs_each_due_job_once_and_records_its_result(self) -> None:
        (exemption,) = self.approve("203.0.113.5")
        expire_now(exemption)
        with dnsbl({}):  # lists nobody: the monitor asks no one outside (96 allocated addresses)
            self.assertEqual(run_due_periodic_jobs(), len(schedule()))
            self.assertEqual(run_due_periodic_jobs(), 0)
        results = dict(PeriodicJob.objects.values_list("name", "last_result"))
        self.assertEqual(
            results,
            {
                "expire_exemptions": "ok: 1",
                "monitor_dnsbl": "ok: 96 look-ups, 0 without a usable answer",
                "import_dnsbl_zones": "ok: 0",
                "disable_failing_endpoints": "ok: 0",
                "roll_up_network": "ok: 0",  # rollup rows written: nobody is listed
                "purge_telemetry": "ok: 0",  # hourly port-25 rows past retention
                "prune_history": "ok: 0 attempts, 0 deliveries, 0 emails, 0 feed changes, "
                "0 check results, 0 vetting runs",
            },
        )


class ConcurrentClaimTestCase(PostgresTestCase):
    """Two workers' connections asking at the same instant; PostgreSQL's row lock decides."""

    def race(self, call: Callable[[], object], *, threads: int = 2) -> list[object]:
        barrier = threading.Barrier(threads)
        outcomes: list[object] = [None] * threads

        def run(i: int) -> None:
            try:
                barrier.wait(timeout=10)
                outcomes[i] = call()
            except Exception as exc:
                outcomes[i] = exc
            finally:
                connection.close()

        workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=30)
        return outcomes

    def test_exactly_one_of_two_claimers_wins_each_due_time(self) -> None:
        for due_time in range(10):
            if due_time:  # the first round also races to create the row
                PeriodicJob.objects.filter(name="race").update(
                    next_run_at=timezone.now() - timedelta(seconds=1)
                )
            outcomes = self.race(lambda: claim("race", timedelta(hours=1)))
            self.assertEqual(sorted(outcomes, key=str), [False, True], f"due time {due_time}")

    def test_two_workers_run_each_periodic_job_once(self) -> None:
        exemptions = self.approve("203.0.113.5", "203.0.113.6")
        expire_now(*exemptions)
        with dnsbl({}):  # lists nobody: the monitor asks no one outside (96 allocated addresses)
            outcomes = self.race(run_due_periodic_jobs, threads=3)
        self.assertFalse([o for o in outcomes if isinstance(o, Exception)], outcomes)
        self.assertEqual(sum(o for o in outcomes if isinstance(o, int)), len(schedule()))
        self.assertEqual(FeedChange.objects.filter(event="exemption.expired").count(), 2)
        self.assertEqual(PeriodicJob.objects.get(name="expire_exemptions").last_result, "ok: 2")
