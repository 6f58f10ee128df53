"""The webhook lane's batched claim on PostgreSQL: one `UPDATE … WHERE id IN (SELECT … FOR UPDATE
SKIP LOCKED LIMIT n) RETURNING id`, raced by concurrent claimers, and a batch recorded in a number
of statements that does not grow with its size."""

from __future__ import annotations

import threading
from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.enforcement.models import Attempt, Delivery, DeliveryState, WebhookEndpoint
from portal.enforcement.webhooks import deliver_due_webhooks
from tests.enforcement.base import PostgresTestCase, deliver_to_loopback, endpoint_for
from tests.enforcement.receiver import running_receiver


def pending(endpoint: WebhookEndpoint, count: int) -> list[int]:
    made = Delivery.objects.bulk_create(
        Delivery(endpoint=endpoint, event="exemption.activated", body=f'{{"n": {n}}}') for n in range(count)
    )
    return [d.pk for d in made]


@deliver_to_loopback
class BatchedClaimTestCase(PostgresTestCase):
    def test_concurrent_claimers_never_claim_one_message_twice_and_leave_none_behind(self) -> None:
        endpoint = WebhookEndpoint.objects.create(url="https://hooks.example/h")
        ids = pending(endpoint, 400)
        claims: list[list[int]] = []
        start = threading.Barrier(8)

        def claimer() -> None:
            try:
                start.wait()
                while batch := Delivery.objects.claim_due(17, timedelta(minutes=1)):
                    claims.append([d.pk for d in batch])
            finally:
                connection.close()

        threads = [threading.Thread(target=claimer) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        claimed = [pk for batch in claims for pk in batch]
        self.assertEqual(len(claimed), len(set(claimed)), "no message claimed twice")
        self.assertEqual(sorted(claimed), sorted(ids), "every message claimed")
        self.assertEqual(set(Delivery.objects.values_list("attempts", flat=True)), {1})

    def test_it_claims_the_oldest_due_messages_of_enabled_endpoints_only(self) -> None:
        enabled = WebhookEndpoint.objects.create(url="https://hooks.example/a")
        disabled = WebhookEndpoint.objects.create(url="https://hooks.example/b", enabled=False)
        ids = pending(enabled, 5)
        pending(disabled, 5)

        batch = Delivery.objects.claim_due(3, timedelta(minutes=1))

        self.assertEqual([d.pk for d in batch], ids[:3])
        self.assertEqual([d.pk for d in Delivery.objects.claim_due(10, timedelta(minutes=1))], ids[3:])
        self.assertEqual(Delivery.objects.claim_due(10, timedelta(minutes=1)), [])

    def test_it_records_a_batch_in_as_many_statements_whatever_its_size(self) -> None:
        receiver = self.enterContext(running_receiver())
        endpoint = endpoint_for(receiver)
        statements = []
        for size in (1, 5, 80):  # the first creates the counters
            pending(endpoint, size)
            with CaptureQueriesContext(connection) as queries:
                self.assertEqual(deliver_due_webhooks(), size)
            statements.append(len(queries))

        self.assertEqual(statements[1], statements[2])
        self.assertLessEqual(statements[2], 12)
        self.assertEqual(Delivery.objects.filter(state=DeliveryState.DELIVERED).count(), 86)
        self.assertEqual(Attempt.objects.filter(status_code=200).count(), 86)
        self.assertEqual(receiver.failures, [])
