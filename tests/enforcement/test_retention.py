"""Retention: rows that grow with traffic are deleted in batches once nobody needs them, and
what the product still needs (the audit log, unfinished work, each request's latest vetting, the
change feed's window) stays."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portal.accounts.models import Actor, Scope
from portal.audit.models import AuditEvent
from portal.enforcement.changes import pruned_through
from portal.enforcement.models import Attempt, Delivery, DeliveryState, FeedChange, WebhookEndpoint
from portal.notifications.models import EmailState, OutboundEmail
from portal.unblock.models import UnblockRequest
from portal.vetting.models import CheckResult, RunReason, RunState, VettingRun
from portal.workflows.exemptions import change
from portal.workflows.periodic import schedule
from portal.workflows.retention import prune
from tests.enforcement.base import EnforcementTestCase

CHANGES = "/api/v1/feeds/changes"


def days_ago(days: int) -> datetime:
    return timezone.now() - timedelta(days=days)


@override_settings(
    WEBHOOK_ATTEMPT_RETENTION_DAYS=30,
    WEBHOOK_DELIVERY_RETENTION_DAYS=90,
    EMAIL_RETENTION_DAYS=90,
    FEED_RETENTION_DAYS=90,
    CHECK_RESULT_RETENTION_DAYS=365,
    VETTING_RUN_RETENTION_DAYS=365,
)
class RetentionTestCase(EnforcementTestCase):
    def delivery(self, state: str, *, days: int) -> Delivery:
        endpoint, _ = WebhookEndpoint.objects.get_or_create(url="https://fw.example/hook")
        delivery = Delivery.objects.create(
            endpoint=endpoint,
            event="exemption.activated",
            body="{}",
            state=state,
            created_at=days_ago(days),
            delivered_at=days_ago(days) if state == DeliveryState.DELIVERED else None,
        )
        Attempt.objects.create(delivery=delivery, at=days_ago(days), status_code=200)
        return delivery

    def vetting_run(self, req: UnblockRequest, state: str, *, days: int) -> VettingRun:
        run = VettingRun.objects.create(
            request=req, reason=RunReason.SUBMITTED, requested_by="system", state=state
        )
        VettingRun.objects.filter(pk=run.pk).update(created_at=days_ago(days))
        CheckResult.objects.create(run=run, check_name="rdns", subject="203.0.113.5", outcome="pass")
        return run

    def test_it_is_a_periodic_job(self) -> None:
        self.assertIn("prune_history", schedule())

    def test_it_deletes_delivered_webhooks_past_retention_with_their_attempts(self) -> None:
        old = self.delivery(DeliveryState.DELIVERED, days=100)
        recent = self.delivery(DeliveryState.DELIVERED, days=10)
        prune()
        self.assertFalse(Delivery.objects.filter(pk=old.pk).exists())
        self.assertFalse(Attempt.objects.filter(delivery_id=old.pk).exists())
        self.assertTrue(Delivery.objects.filter(pk=recent.pk).exists())

    def test_it_keeps_pending_and_failed_deliveries_and_their_attempts(self) -> None:
        pending = self.delivery(DeliveryState.PENDING, days=400)
        failed = self.delivery(DeliveryState.FAILED, days=400)
        prune()
        self.assertEqual(Delivery.objects.filter(pk__in=[pending.pk, failed.pk]).count(), 2)
        self.assertEqual(Attempt.objects.filter(delivery__in=[pending, failed]).count(), 2)

    def test_it_deletes_attempts_of_delivered_webhooks_sooner_than_the_deliveries(self) -> None:
        delivered = self.delivery(DeliveryState.DELIVERED, days=40)
        prune()
        self.assertTrue(Delivery.objects.filter(pk=delivered.pk).exists())
        self.assertFalse(delivered.attempt_log.exists())

    def test_it_deletes_sent_emails_past_retention_only(self) -> None:
        for state, sent_days in ((EmailState.SENT, 100), (EmailState.SENT, 5), (EmailState.PENDING, None)):
            OutboundEmail.objects.create(
                to=["a@example.com"],
                subject=f"{state} {sent_days}",
                body="",
                state=state,
                sent_at=days_ago(sent_days) if sent_days else None,
            )
        OutboundEmail.objects.create(to=["a@example.com"], subject="failed", body="", state=EmailState.FAILED)
        prune()
        self.assertEqual(
            sorted(OutboundEmail.objects.values_list("subject", flat=True)),
            ["failed", "pending None", "sent 5"],
        )

    def test_it_keeps_each_requests_latest_finished_run_and_its_results(self) -> None:
        req = self.make_request()
        superseded = self.vetting_run(req, RunState.DONE, days=500)
        failed = self.vetting_run(req, RunState.FAILED, days=450)
        latest = self.vetting_run(req, RunState.DONE, days=400)
        waiting = self.vetting_run(req, RunState.PENDING, days=400)
        only = self.vetting_run(self.make_request(self.globex), RunState.DONE, days=900)
        result = prune()
        self.assertEqual((result.vetting_runs, result.check_results), (2, 2))
        self.assertEqual(
            set(VettingRun.objects.values_list("pk", flat=True)), {latest.pk, waiting.pk, only.pk}
        )
        self.assertFalse(CheckResult.objects.filter(run__in=[superseded, failed]).exists())
        self.assertEqual(latest.results.count(), 1)

    def test_it_never_prunes_the_audit_log(self) -> None:
        self.approve("203.0.113.5")
        before = AuditEvent.objects.count()
        FeedChange.objects.update(at=days_ago(1000))
        prune()
        self.assertEqual(AuditEvent.objects.count(), before)

    @override_settings(RETENTION_BATCH_SIZE=2)
    def test_it_deletes_in_bounded_batches(self) -> None:
        for n in range(5):
            OutboundEmail.objects.create(
                to=["a@example.com"], subject=str(n), body="", state=EmailState.SENT, sent_at=days_ago(100)
            )
        with CaptureQueriesContext(connection) as queries:
            self.assertEqual(prune().emails, 5)
        deletes = [q["sql"] for q in queries if q["sql"].startswith("DELETE") and "outboundemail" in q["sql"]]
        self.assertEqual(len(deletes), 3)  # 2 + 2 + 1


@override_settings(FEED_RETENTION_DAYS=90)
class FeedRetentionTestCase(EnforcementTestCase):
    def setUp(self) -> None:
        # seq 1, 2: two exemptions added; seq 3: the first suspended. All a year old, then
        # seq 4: a third added today.
        first, _ = self.approve("203.0.113.5")[0], self.approve("203.0.113.6")
        change(first, "exemption.suspended", actor=Actor.of_system("test"), reason="listed")
        FeedChange.objects.update(at=days_ago(365))
        self.approve("203.0.113.7")
        self.feed = self.api(Scope.ENFORCEMENT)

    def test_it_keeps_the_newest_change_and_each_exemptions_latest(self) -> None:
        self.assertEqual(prune().feed_changes, 1)
        # seq 1 (the first exemption's add) was superseded by its suspension (seq 3); seq 2 is
        # the second exemption's only change, which the network page reads its history from.
        self.assertEqual(list(FeedChange.objects.values_list("seq", flat=True)), [2, 3, 4])
        self.assertEqual(pruned_through(), 1)

    def test_it_keeps_the_window_a_consumer_may_lag(self) -> None:
        FeedChange.objects.update(at=days_ago(89))
        prune()
        self.assertEqual(FeedChange.objects.count(), 4)
        self.assertEqual(pruned_through(), 0)

    def test_it_tells_a_consumer_behind_the_pruned_changes_to_start_again(self) -> None:
        before = self.feed.get(CHANGES + "?after=0")
        self.assertFalse(before.json()["reset"])
        prune()
        stale = self.feed.get(CHANGES + "?after=0", HTTP_IF_NONE_MATCH=before["ETag"])
        self.assertEqual(stale.status_code, 200)  # not a 304: the same cursor now needs a snapshot
        body = stale.json()
        self.assertEqual((body["reset"], body["changes"], body["latest"]), (True, [], 4))

    def test_it_continues_a_consumer_at_or_past_the_pruned_changes(self) -> None:
        prune()
        body = self.feed.get(CHANGES + "?after=1").json()
        self.assertFalse(body["reset"])
        self.assertEqual([c["seq"] for c in body["changes"]], [2, 3, 4])

    def test_it_numbers_new_changes_after_the_newest_even_if_all_else_is_old(self) -> None:
        FeedChange.objects.update(at=days_ago(365))
        prune()
        self.approve("203.0.113.8")
        self.assertEqual(FeedChange.objects.order_by("seq").last().seq, 5)  # type: ignore[union-attr]
