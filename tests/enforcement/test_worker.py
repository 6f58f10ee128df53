"""Real `manage.py runworker` processes against PostgreSQL delivering to the loopback receiver:
woken by NOTIFY within a second, sharing a burst without ever sending one message twice at once,
and losing nothing when one of them is killed with SIGKILL in the middle of a delivery."""

from __future__ import annotations

import signal
import time
from collections import defaultdict
from typing import Any

from django.db import connection

from portal.core.wakeup import CHANNEL
from portal.enforcement.models import Attempt, Delivery, DeliveryState, WorkerHeartbeat
from tests.enforcement.base import PostgresTestCase, Worker, endpoint_for, wait_until
from tests.enforcement.receiver import Receiver, running_receiver


class WorkerTestCase(PostgresTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.postpone_periodic_jobs()
        self.receiver: Receiver = self.enterContext(running_receiver())
        self.endpoint = endpoint_for(self.receiver)

    def start_worker(self, *, poll: float = 1.0, **env: str) -> Worker:
        worker = Worker(poll=poll, **env)
        self.addCleanup(worker.stop)
        started = wait_until(lambda: WorkerHeartbeat.objects.filter(name=worker.name).exists(), timeout=20)
        self.assertTrue(started, worker.output())
        return worker

    def burst(self, count: int) -> list[str]:
        """`count` approvals, each its own committed transaction; returns the exemption ids."""
        return [str(self.approve(f"203.0.113.{n}")[0].id) for n in range(1, count + 1)]

    def all_delivered(self, count: int, timeout: float) -> bool:
        return wait_until(
            lambda: Delivery.objects.filter(state=DeliveryState.DELIVERED).count() == count,
            timeout,
            interval=0.2,
        )

    def by_exemption(self) -> dict[str, set[str]]:
        """The webhook-ids each exemption's activation arrived with."""
        ids: dict[str, set[str]] = defaultdict(set)
        for message in self.receiver.posts():
            payload: dict[str, Any] = message.json
            ids[payload["data"]["id"]].add(message.webhook_id)
        return ids

    def test_a_delivery_starts_within_a_second_of_the_commit(self) -> None:
        # Polling every 30 s: only the NOTIFY sent at commit can wake the worker this fast.
        self.start_worker(poll=30)
        for n in range(1, 4):
            before_commit = time.time()
            self.approve(f"203.0.113.{n}")
            self.assertTrue(self.receiver.wait_for(n, timeout=5))
            latency = self.receiver.posts()[-1].at - before_commit
            self.assertLess(latency, 1.5, f"approval {n}")
        self.assertEqual(self.receiver.failures, [])

    def test_a_worker_stops_promptly_on_sigterm(self) -> None:
        worker = self.start_worker(poll=30)
        started = time.monotonic()
        worker.process.send_signal(signal.SIGTERM)
        self.assertEqual(worker.process.wait(timeout=10), 0)
        self.assertLess(time.monotonic() - started, 5)
        self.assertIn("stopped", worker.output())

    def test_two_workers_share_a_burst_and_never_send_a_message_twice_at_once(self) -> None:
        self.receiver.delay = 0.1
        first = self.start_worker(WEBHOOK_CONCURRENCY="4")
        second = self.start_worker(WEBHOOK_CONCURRENCY="4")

        exemptions = self.burst(40)

        self.assertTrue(self.all_delivered(40, timeout=30))
        self.assertEqual(max(self.receiver.max_in_flight.values()), 1)
        self.assertEqual(sorted(self.by_exemption()), sorted(exemptions))
        self.assertEqual(len(self.receiver.posts()), 40, "nothing sent twice: no lease ran out")
        self.assertEqual(Attempt.objects.count(), 40)
        self.assertEqual(set(Attempt.objects.values_list("worker", flat=True)), {first.name, second.name})
        self.assertEqual(self.receiver.failures, [])

    def test_a_worker_killed_mid_delivery_loses_nothing(self) -> None:
        self.receiver.delay = 0.3  # within WEBHOOK_TIMEOUT (1 s), slow enough to be caught sending
        doomed = self.start_worker(WEBHOOK_CONCURRENCY="4")

        exemptions = self.burst(50)
        caught_sending = wait_until(
            lambda: len(self.receiver.posts()) >= 8 and self.receiver.busy() > 0, 20, 0.01
        )
        self.assertTrue(caught_sending)
        doomed.kill()
        interrupted = Delivery.objects.filter(
            state=DeliveryState.PENDING, claimed_until__isnull=False
        ).count()
        self.assertGreater(interrupted, 0, "the killed worker held claims")

        # The survivor sends the rest at once, and the interrupted messages once their lease
        # (2 * WEBHOOK_TIMEOUT + 30 s) has run out.
        self.start_worker()
        self.assertTrue(self.all_delivered(50, timeout=60))

        received = self.by_exemption()
        self.assertEqual(sorted(received), sorted(exemptions), "every event arrived at least once")
        message_ids = dict(Delivery.objects.values_list("body", "message_id"))
        for exemption, webhook_ids in received.items():
            self.assertEqual(len(webhook_ids), 1, f"duplicates of {exemption} carry one webhook-id")
        self.assertEqual({i for ids in received.values() for i in ids}, set(message_ids.values()))
        duplicates = len(self.receiver.posts()) - 50
        self.assertGreaterEqual(duplicates, 1, "the messages in flight at the kill were sent again")
        self.assertLessEqual(duplicates, interrupted)
        self.assertEqual(max(self.receiver.max_in_flight.values()), 1)
        self.assertEqual(self.receiver.failures, [])

    def test_a_worker_listens_again_after_losing_its_connection(self) -> None:
        # Polling every 30 s: only a NOTIFY on a new LISTEN connection can deliver within seconds.
        worker = self.start_worker(poll=30)
        listening = self.listening_backends()
        self.assertEqual(len(listening), 1, worker.output())
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [listening[0]])

        relistened = wait_until(lambda: self.listening_backends() not in ([], listening), timeout=10)
        self.assertTrue(relistened, worker.output())
        before_commit = time.time()
        self.approve("203.0.113.9")

        self.assertTrue(self.receiver.wait_for(1, timeout=5), worker.output())
        self.assertLess(self.receiver.posts()[-1].at - before_commit, 1.5)
        self.assertIn("lost the LISTEN connection", worker.output())
        self.assertIn("listening again", worker.output())

    def listening_backends(self) -> list[int]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query = %s",
                [f"LISTEN {CHANNEL}"],
            )
            return [pid for (pid,) in cursor.fetchall()]
