"""Signed webhook delivery to a real receiver on loopback, which verifies every message with the
`standardwebhooks` reference library: retries, 410, Retry-After, permanent errors, disabling,
secret rotation, event filtering, redelivery and test events (page and API)."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

from django.test import override_settings
from django.utils import timezone
from django.utils.http import http_date
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from portal.accounts.models import Actor, Scope
from portal.enforcement import webhooks
from portal.enforcement.models import Attempt, Delivery, DeliveryState, WebhookEndpoint
from portal.enforcement.webhooks import deliver_due_webhooks, disable_failing_endpoints, redeliver
from portal.notifications.models import OutboundEmail
from portal.workflows import exemptions as actions
from tests.enforcement.base import EnforcementTestCase, deliver_to_loopback, endpoint_for
from tests.enforcement.receiver import Receiver, running_receiver


def time_passes(*deliveries: Delivery) -> None:
    """Bring the retries forward: what the schedule says would happen later happens now."""
    Delivery.objects.filter(pk__in=[d.pk for d in deliveries]).update(next_attempt_at=timezone.now())


@deliver_to_loopback
class WebhookDeliveryTestCase(EnforcementTestCase):
    def receive(self) -> Receiver:
        return self.enterContext(running_receiver())

    def test_it_retries_after_a_500_with_the_same_webhook_id(self) -> None:
        receiver = self.receive()
        receiver.script = [500]
        endpoint_for(receiver)
        self.approve("203.0.113.5")

        before = timezone.now()
        self.assertEqual(deliver_due_webhooks(), 1)
        after = timezone.now()
        delivery = Delivery.objects.get()
        self.assertEqual((delivery.state, delivery.attempts, delivery.last_status), ("pending", 1, 500))
        # The first retry of the default schedule is 5 s, with ±20 % jitter.
        self.assertGreaterEqual(delivery.next_attempt_at, before + timedelta(seconds=4))
        self.assertLessEqual(delivery.next_attempt_at, after + timedelta(seconds=6))
        self.assertEqual(deliver_due_webhooks(), 0, "not due yet")

        time_passes(delivery)
        self.assertEqual(deliver_due_webhooks(), 1)

        delivery.refresh_from_db()
        self.assertEqual((delivery.state, delivery.attempts, delivery.last_status), ("delivered", 2, 200))
        first, second = receiver.posts()
        self.assertEqual(first.webhook_id, delivery.message_id)
        self.assertEqual(second.webhook_id, delivery.message_id)
        self.assertEqual(first.body, second.body)
        self.assertEqual(receiver.failures, [])
        self.assertEqual(second.json["type"], "exemption.activated")
        attempts = list(delivery.attempt_log.values_list("status_code", "response_excerpt", "error"))
        self.assertEqual(attempts, [(500, "ok", ""), (200, "ok", "")])
        self.assertTrue(all(a.duration_ms >= 0 for a in delivery.attempt_log.all()))

    def test_it_shows_each_attempt_in_the_api_delivery_log(self) -> None:
        receiver = self.receive()
        receiver.script = [503]
        endpoint = endpoint_for(receiver)
        self.approve("203.0.113.5")
        deliver_due_webhooks()
        time_passes(*Delivery.objects.all())
        deliver_due_webhooks()

        log = self.api(Scope.PROVISIONING).get(f"/api/v1/webhooks/endpoints/{endpoint.id}/deliveries").json()
        (message,) = log
        self.assertEqual(message["state"], "delivered")
        self.assertEqual([a["status_code"] for a in message["attempts"]], [503, 200])
        self.assertEqual({a["response_excerpt"] for a in message["attempts"]}, {"ok"})
        self.assertTrue(all(isinstance(a["duration_ms"], int) for a in message["attempts"]))

    def test_it_disables_the_endpoint_on_410_and_tells_the_admins(self) -> None:
        receiver = self.receive()
        receiver.script = [500, 410]
        endpoint = endpoint_for(receiver)
        self.approve("203.0.113.5")
        deliver_due_webhooks()  # 500: a retry is scheduled
        self.approve("203.0.113.6")
        deliver_due_webhooks()  # 410 Gone

        endpoint.refresh_from_db()
        self.assertFalse(endpoint.enabled)
        self.assertIn("410", endpoint.disabled_reason)
        gone = Delivery.objects.get(last_status=410)
        self.assertEqual(gone.state, DeliveryState.FAILED)
        email = OutboundEmail.objects.get(subject__icontains="disabled")
        self.assertIn(self.root.email, email.to)
        self.assertNotIn(self.alice.email, email.to)

        # The retry of the first message is due, but the endpoint is disabled: nothing is sent.
        time_passes(*Delivery.objects.all())
        self.assertEqual(deliver_due_webhooks(), 0)
        self.assertEqual(len(receiver.posts()), 2)
        self.assertEqual(Delivery.objects.get(last_status=500).state, DeliveryState.PENDING)

    def test_it_honours_retry_after_in_seconds_on_429(self) -> None:
        receiver = self.receive()
        receiver.script = [(429, {"Retry-After": "120"})]
        endpoint_for(receiver)
        self.approve("203.0.113.5")
        before = timezone.now()
        deliver_due_webhooks()

        delivery = Delivery.objects.get()
        self.assertEqual(delivery.state, DeliveryState.PENDING)
        self.assertGreaterEqual(delivery.next_attempt_at, before + timedelta(seconds=120))

    def test_it_honours_retry_after_as_a_date_on_503(self) -> None:
        receiver = self.receive()
        not_before = timezone.now().replace(microsecond=0) + timedelta(minutes=10)
        receiver.script = [(503, {"Retry-After": http_date(not_before.timestamp())})]
        endpoint_for(receiver)
        self.approve("203.0.113.5")
        deliver_due_webhooks()

        self.assertGreaterEqual(Delivery.objects.get().next_attempt_at, not_before)

    def test_it_ignores_retry_after_on_a_plain_500(self) -> None:
        receiver = self.receive()
        receiver.script = [(500, {"Retry-After": "3600"})]
        endpoint_for(receiver)
        self.approve("203.0.113.5")
        deliver_due_webhooks()

        self.assertLess(Delivery.objects.get().next_attempt_at, timezone.now() + timedelta(seconds=10))

    def test_it_fails_at_once_on_a_refused_address_without_retrying(self) -> None:
        # Created behind the form's back: the transport refuses it again at delivery time.
        endpoint = WebhookEndpoint.objects.create(url="http://10.1.2.3/hooks")
        self.approve("203.0.113.5")

        self.assertEqual(deliver_due_webhooks(), 1)

        delivery = Delivery.objects.get()
        self.assertEqual((delivery.state, delivery.attempts), (DeliveryState.FAILED, 1))
        attempt = Attempt.objects.get()
        self.assertIsNone(attempt.status_code)
        self.assertIn("10.1.2.3", attempt.error)
        self.assertIn("WEBHOOK_ALLOWED_NETWORKS", attempt.error)
        endpoint.refresh_from_db()
        self.assertIsNotNone(endpoint.failing_since)

    def test_it_retries_a_connection_that_is_refused(self) -> None:
        with running_receiver() as gone:
            url = gone.url  # a port nothing listens on once the receiver has stopped
        WebhookEndpoint.objects.create(url=url)
        self.approve("203.0.113.5")
        deliver_due_webhooks()

        delivery = Delivery.objects.get()
        self.assertEqual(delivery.state, DeliveryState.PENDING)
        self.assertIn("Connection refused", Attempt.objects.get().error)

    @override_settings(WEBHOOK_DISABLE_AFTER_HOURS=24)
    def test_it_disables_an_endpoint_that_fails_for_longer_than_the_limit(self) -> None:
        now = timezone.now()
        long_failing = WebhookEndpoint.objects.create(
            url="https://a.example/h", failing_since=now - timedelta(hours=25)
        )
        recently_failing = WebhookEndpoint.objects.create(
            url="https://b.example/h", failing_since=now - timedelta(hours=23)
        )
        healthy = WebhookEndpoint.objects.create(url="https://c.example/h")

        self.assertEqual(disable_failing_endpoints(), 1)

        long_failing.refresh_from_db()
        self.assertFalse(long_failing.enabled)
        self.assertIn("24 hours", long_failing.disabled_reason)
        self.assertTrue(WebhookEndpoint.objects.get(pk=recently_failing.pk).enabled)
        self.assertTrue(WebhookEndpoint.objects.get(pk=healthy.pk).enabled)
        email = OutboundEmail.objects.get()
        self.assertIn(self.root.email, email.to)
        self.assertIn("a.example", email.body)
        self.assertEqual(disable_failing_endpoints(), 0, "told once")

    def test_it_marks_an_endpoint_failing_until_a_delivery_succeeds(self) -> None:
        receiver = self.receive()
        receiver.script = [500]
        endpoint = endpoint_for(receiver)
        self.approve("203.0.113.5")
        deliver_due_webhooks()
        endpoint.refresh_from_db()
        self.assertIsNotNone(endpoint.failing_since)

        time_passes(*Delivery.objects.all())
        deliver_due_webhooks()
        endpoint.refresh_from_db()
        self.assertIsNone(endpoint.failing_since)

    def test_it_signs_with_both_secrets_while_a_rotation_overlaps(self) -> None:
        receiver = self.receive()
        endpoint = endpoint_for(receiver)
        old = endpoint.secret
        response = self.api(Scope.PROVISIONING).post(
            f"/api/v1/webhooks/endpoints/{endpoint.id}/rotate-secret"
        )
        self.assertEqual(response.status_code, 200)
        new = response.json()["secret"]
        self.assertNotEqual(new, old)
        self.assertTrue(new.startswith("whsec_"))
        receiver.secrets = [old, new]  # the receiver verifies each message with each secret

        self.approve("203.0.113.5")
        deliver_due_webhooks()

        (message,) = receiver.posts()
        self.assertEqual(receiver.failures, [])
        signatures = message.headers["webhook-signature"].split(" ")
        self.assertEqual(len(signatures), 2)
        self.assertTrue(all(s.startswith("v1,") for s in signatures))

        # Once the overlap is over, only the new secret signs.
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            previous_secret_expires_at=timezone.now() - timedelta(seconds=1)
        )
        receiver.secrets = [new]
        self.approve("203.0.113.6")
        deliver_due_webhooks()
        latest = receiver.posts()[-1]
        self.assertEqual(len(latest.headers["webhook-signature"].split(" ")), 1)
        self.assertEqual(receiver.failures, [])
        with self.assertRaises(WebhookVerificationError):
            Webhook(old).verify(latest.body, latest.headers)

    def test_it_rotates_the_secret_from_the_page(self) -> None:
        endpoint = WebhookEndpoint.objects.create(url="https://hooks.example/h")
        old = endpoint.secret
        self.client.force_login(self.root)
        response = self.client.post(f"/review/webhooks/{endpoint.id}/rotate/")
        self.assertRedirects(response, f"/review/webhooks/{endpoint.id}/", fetch_redirect_response=False)
        endpoint.refresh_from_db()
        self.assertEqual(endpoint.previous_secret, old)
        self.assertEqual(endpoint.signing_secrets(), [endpoint.secret, old])

    def test_it_sends_an_endpoint_only_the_event_types_it_wants(self) -> None:
        receiver = self.receive()
        suspensions_only = WebhookEndpoint.objects.create(
            url=receiver.url, event_types=["exemption.suspended"]
        )
        everything = WebhookEndpoint.objects.create(url=receiver.url + "/all")

        (exemption,) = self.approve("203.0.113.5")
        actions.change(exemption, "exemption.suspended", actor=Actor(user=self.ada), reason="Spam run")

        self.assertEqual(
            sorted(Delivery.objects.values_list("endpoint__url", "event")),
            [
                (suspensions_only.url, "exemption.suspended"),
                (everything.url, "exemption.activated"),
                (everything.url, "exemption.suspended"),
            ],
        )
        deliver_due_webhooks()
        receiver.secrets = []
        for message in receiver.posts():
            endpoint = suspensions_only if message.path == "/hooks" else everything
            Webhook(endpoint.secret).verify(message.body, message.headers)
        self.assertEqual(
            sorted((m.path, m.json["type"]) for m in receiver.posts()),
            [
                ("/hooks", "exemption.suspended"),
                ("/hooks/all", "exemption.activated"),
                ("/hooks/all", "exemption.suspended"),
            ],
        )

    def test_it_redelivers_one_message_from_the_page_and_the_api(self) -> None:
        receiver = self.receive()
        endpoint = endpoint_for(receiver)
        self.approve("203.0.113.5")
        deliver_due_webhooks()
        delivery = Delivery.objects.get()

        self.client.force_login(self.root)
        page = self.client.post(f"/review/webhooks/{endpoint.id}/deliveries/{delivery.uuid}/redeliver/")
        self.assertEqual(page.status_code, 302)
        delivery.refresh_from_db()
        self.assertEqual((delivery.state, delivery.attempts), (DeliveryState.PENDING, 0))
        deliver_due_webhooks()

        response = self.api(Scope.PROVISIONING).post(
            f"/api/v1/webhooks/endpoints/{endpoint.id}/deliveries/{delivery.uuid}/redeliver"
        )
        self.assertEqual(response.status_code, 202)
        self.assertEqual(response.json()["state"], "pending")
        self.assertEqual(response.json()["id"], str(delivery.uuid))
        deliver_due_webhooks()

        self.assertEqual([m.webhook_id for m in receiver.posts()], [delivery.message_id] * 3)
        self.assertEqual(receiver.failures, [])
        self.assertEqual(Delivery.objects.get().state, DeliveryState.DELIVERED)

    def test_the_redeliver_button_swaps_the_delivery_log_in_place(self) -> None:
        receiver = self.receive()
        endpoint = endpoint_for(receiver)
        self.approve("203.0.113.5")
        deliver_due_webhooks()
        delivery = Delivery.objects.get()

        self.client.force_login(self.root)
        fragment = self.client.post(
            f"/review/webhooks/{endpoint.id}/deliveries/{delivery.uuid}/redeliver/",
            headers={"HX-Request": "true"},
        )
        self.assertEqual(fragment.status_code, 200)
        body = fragment.content.decode()
        self.assertTrue(body.lstrip().startswith('<div id="delivery-log"'))
        self.assertIn(delivery.message_id, body)
        self.assertIn("Pending", body)
        self.assertEqual(Delivery.objects.get().state, DeliveryState.PENDING)

    @override_settings(WEBHOOK_RETRY_SCHEDULE=[])  # the first failure is final
    def test_it_redelivers_the_failed_messages_of_a_time_range_from_the_page_and_the_api(self) -> None:
        receiver = self.receive()
        receiver.script = [500, 500, 500]
        endpoint = endpoint_for(receiver)
        self.approve("203.0.113.5")
        self.approve("203.0.113.6")
        self.approve("203.0.113.7")
        deliver_due_webhooks()
        self.assertEqual(Delivery.objects.filter(state=DeliveryState.FAILED).count(), 3)
        old = Delivery.objects.filter(event="exemption.activated").order_by("id").first()
        assert old is not None
        Delivery.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))

        now = timezone.now()
        self.client.force_login(self.root)
        self.client.post(
            f"/review/webhooks/{endpoint.id}/redeliver-range/",
            {
                "since": (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
                "until": (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
            },
        )
        self.assertEqual(deliver_due_webhooks(), 2)
        self.assertEqual(Delivery.objects.get(pk=old.pk).state, DeliveryState.FAILED)

        response = self.api(Scope.PROVISIONING).post(
            f"/api/v1/webhooks/endpoints/{endpoint.id}/redeliver-failed",
            {"since": (now - timedelta(days=3)).isoformat(), "until": now.isoformat()},
            format="json",
        )
        self.assertEqual(response.json(), {"queued": 1})
        deliver_due_webhooks()

        self.assertEqual(Delivery.objects.filter(state=DeliveryState.DELIVERED).count(), 3)
        self.assertEqual(len(receiver.posts()), 6)
        self.assertEqual(receiver.failures, [])

    def test_it_refuses_a_range_that_ends_before_it_starts(self) -> None:
        endpoint = WebhookEndpoint.objects.create(url="https://hooks.example/h")
        self.client.force_login(self.root)
        response = self.client.post(
            f"/review/webhooks/{endpoint.id}/redeliver-range/",
            {"since": "2026-05-02T10:00", "until": "2026-05-01T10:00"},
            follow=True,
        )
        self.assertContains(response, "must be before")

    def test_it_sends_a_test_event_from_the_page_and_the_api(self) -> None:
        receiver = self.receive()
        endpoint = endpoint_for(receiver)
        self.client.force_login(self.root)
        self.client.post(f"/review/webhooks/{endpoint.id}/test/")
        response = self.api(Scope.PROVISIONING).post(f"/api/v1/webhooks/endpoints/{endpoint.id}/test")
        self.assertEqual(response.status_code, 202)

        self.assertEqual(deliver_due_webhooks(), 2)

        messages = receiver.posts()
        self.assertEqual([m.json["type"] for m in messages], ["webhook.test", "webhook.test"])
        self.assertEqual({m.json["data"]["endpoint"] for m in messages}, {str(endpoint.id)})
        self.assertEqual(len({m.webhook_id for m in messages}), 2)
        self.assertEqual(receiver.failures, [])

    def test_it_keeps_webhook_pages_for_admins(self) -> None:
        endpoint = WebhookEndpoint.objects.create(url="https://hooks.example/h")
        self.client.force_login(self.ada)  # an approver, not an admin
        self.assertEqual(self.client.get(f"/review/webhooks/{endpoint.id}/").status_code, 404)
        self.assertEqual(self.client.post(f"/review/webhooks/{endpoint.id}/test/").status_code, 404)
        self.assertFalse(Delivery.objects.exists())
        self.assertEqual(
            self.api(Scope.ENFORCEMENT).post(f"/api/v1/webhooks/endpoints/{endpoint.id}/test").status_code,
            403,
        )


@deliver_to_loopback
class DeliveryClaimTestCase(EnforcementTestCase):
    """One worker's claim on a message: what the others may and may not take from it."""

    def test_it_gives_back_unattempted_what_it_could_not_start_within_its_send_window(self) -> None:
        # A claimed message must be sent before its lease runs out: one still waiting its turn
        # when the window closes goes back to the queue, its attempt not counted.
        receiver = self.enterContext(running_receiver())
        receiver.delay = 0.2
        endpoint_for(receiver)
        self.approve("203.0.113.5", "203.0.113.6", "203.0.113.7", "203.0.113.8", "203.0.113.9")

        with mock.patch.object(webhooks, "SEND_WINDOW_SECONDS", 0.25):
            self.assertEqual(deliver_due_webhooks(), 2)
        self.assertEqual(len(receiver.posts()), 2)
        given_back = Delivery.objects.filter(state=DeliveryState.PENDING, attempts=0, claimed_until=None)
        self.assertEqual(given_back.count(), 3)
        while deliver_due_webhooks():
            pass
        self.assertEqual(Delivery.objects.filter(state=DeliveryState.DELIVERED).count(), 5)
        self.assertEqual(len(receiver.posts()), 5)

    def test_it_sends_each_endpoints_messages_in_the_order_they_were_made(self) -> None:
        first, second = self.enterContext(running_receiver()), self.enterContext(running_receiver())
        endpoint_for(first)
        WebhookEndpoint.objects.create(url=second.url, secret=first.secrets[0])
        second.secrets = first.secrets
        for n in range(1, 31):
            self.approve(f"203.0.113.{n}")

        self.assertEqual(deliver_due_webhooks(), 60)

        for receiver in (first, second):
            sequences = [m.json["data"]["sequence"] for m in receiver.posts()]
            self.assertEqual(len(sequences), 30)
            self.assertEqual(sequences, sorted(sequences))
            self.assertEqual(receiver.failures, [])

    def test_it_does_not_claim_a_message_another_worker_has_just_rescheduled(self) -> None:
        receiver = self.enterContext(running_receiver())
        receiver.script = [500]
        endpoint_for(receiver)
        self.approve("203.0.113.5")
        seen_by_a_slower_worker = list(Delivery.objects.due())

        deliver_due_webhooks()  # another worker tries, fails, and schedules the retry

        (stale,) = seen_by_a_slower_worker
        self.assertFalse(stale.claim(timedelta(seconds=60)))
        self.assertEqual(len(receiver.posts()), 1)

    def test_it_leaves_a_message_in_flight_alone_when_asked_to_redeliver_it(self) -> None:
        endpoint = WebhookEndpoint.objects.create(url="https://hooks.example/h")
        self.approve("203.0.113.5")
        delivery = Delivery.objects.get(endpoint=endpoint)
        self.assertTrue(delivery.claim(timedelta(seconds=60)))  # a worker is sending it now

        self.assertEqual(redeliver([delivery], actor=Actor(user=self.root)), 0)

        delivery.refresh_from_db()
        self.assertIsNotNone(delivery.claimed_until)
        self.assertEqual(Delivery.objects.due().count(), 0)
