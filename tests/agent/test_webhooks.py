from __future__ import annotations

import ipaddress
import json
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime

from django.test import SimpleTestCase, override_settings
from standardwebhooks.webhooks import Webhook

from portal.accounts.models import Actor
from portal.agent.client import Change
from portal.agent.config import Address
from portal.agent.server import AgentServer
from portal.agent.webhooks import InvalidWebhook, MalformedWebhook, WebhookReceiver, decode_secret, verify
from portal.enforcement.models import Delivery, Exemption, WebhookEndpoint, new_secret
from portal.enforcement.webhooks import deliver_due_webhooks, redeliver, sign
from tests.agent.base import PortalLiveTestCase

NOW = 1_800_000_000
SECRET, OLD_SECRET = new_secret(), new_secret()


def message(event: str, exemption: str, block: str, sequence: int) -> str:
    data = {
        "id": exemption,
        "tenant": "acme-1",
        "block": block,
        "family": 4,
        "ports": [25],
        "sequence": sequence,
    }
    return json.dumps({"type": event, "timestamp": "2027-01-15T10:00:00+00:00", "data": data})


def headers(
    body: str, *, message_id: str = "msg_1", timestamp: int = NOW, secrets: tuple[str, ...] = (SECRET,)
) -> dict[str, str]:
    """What the portal sends, signed by the portal's own code."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(s, message_id, timestamp, body) for s in secrets),
    }


class VerifyTestCase(SimpleTestCase):
    body = message("exemption.activated", "e1", "203.0.113.5", 7)

    def assertRefused(self, headers: dict[str, str], body: str | None = None, now: float = NOW) -> None:
        with self.assertRaises(InvalidWebhook):
            verify([decode_secret(SECRET)], headers, (body or self.body).encode(), now=now)

    def test_it_accepts_what_the_portal_signs(self) -> None:
        self.assertEqual(
            verify([decode_secret(SECRET)], headers(self.body), self.body.encode(), now=NOW), "msg_1"
        )

    def test_it_accepts_what_the_reference_library_signs(self) -> None:
        signature = Webhook(SECRET).sign("msg_9", datetime.fromtimestamp(NOW, UTC), self.body)
        signed = {"webhook-id": "msg_9", "webhook-timestamp": str(NOW), "webhook-signature": signature}
        self.assertEqual(verify([decode_secret(SECRET)], signed, self.body.encode(), now=NOW), "msg_9")

    def test_it_accepts_either_signature_while_the_portal_rotates_the_secret(self) -> None:
        both = headers(self.body, secrets=(SECRET, OLD_SECRET))
        for ours in (SECRET, OLD_SECRET):
            with self.subTest(ours=ours[:12]):
                self.assertEqual(verify([decode_secret(ours)], both, self.body.encode(), now=NOW), "msg_1")

    def test_it_refuses_another_secret_or_a_changed_body(self) -> None:
        self.assertRefused(headers(self.body, secrets=(OLD_SECRET,)))
        self.assertRefused(headers(self.body), body=self.body.replace("203.0.113.5", "203.0.113.6"))
        self.assertRefused({**headers(self.body), "webhook-id": "msg_2"})

    def test_it_refuses_a_timestamp_more_than_five_minutes_from_its_clock(self) -> None:
        for skew in (-301, 301, 86_400):
            with self.subTest(skew=skew):
                self.assertRefused(headers(self.body), now=NOW + skew)
        for skew in (-299, 299):
            verify([decode_secret(SECRET)], headers(self.body), self.body.encode(), now=NOW + skew)

    def test_it_refuses_a_message_without_the_headers_or_with_unknown_signature_versions(self) -> None:
        good = headers(self.body)
        for missing in good:
            with self.subTest(missing=missing):
                self.assertRefused({k: v for k, v in good.items() if k != missing})
        self.assertRefused({**good, "webhook-signature": good["webhook-signature"].replace("v1,", "v2,")})
        self.assertRefused({**good, "webhook-timestamp": "soon"})

    def test_it_takes_only_whsec_secrets(self) -> None:
        for secret in ("s3cret", "whsec_not base64!"):
            with self.subTest(secret=secret), self.assertRaises(ValueError):
                decode_secret(secret)


class ReceiverTestCase(SimpleTestCase):
    def setUp(self) -> None:
        self.applied: list[Change] = []
        self.receiver = WebhookReceiver([SECRET], self.applied.append, clock=lambda: NOW)

    def test_it_hands_on_the_change_a_message_announces(self) -> None:
        body = message("exemption.suspended", "e1", "203.0.113.8/29", 8)
        self.assertEqual(self.receiver.receive(headers(body), body.encode()), 204)
        self.assertEqual(self.applied, [Change(8, "remove", "e1", ipaddress.ip_network("203.0.113.8/29"))])

    def test_it_applies_a_message_once_however_often_it_is_delivered(self) -> None:
        body = message("exemption.activated", "e1", "203.0.113.5", 7)
        for _ in range(3):
            self.assertEqual(self.receiver.receive(headers(body), body.encode()), 204)
        self.assertEqual(len(self.applied), 1)
        self.assertEqual((self.receiver.stats.accepted, self.receiver.stats.duplicates), (1, 2))

    def test_it_acknowledges_events_it_has_no_use_for(self) -> None:
        body = json.dumps({"type": "endpoint.test", "timestamp": "2027-01-15T10:00:00+00:00", "data": {}})
        self.assertEqual(self.receiver.receive(headers(body), body.encode()), 204)
        self.assertEqual(self.applied, [])

    def test_it_refuses_a_signed_message_it_cannot_read_as_malformed(self) -> None:
        body = json.dumps(
            {"type": "exemption.activated", "data": {"id": "e1", "block": "nope", "sequence": 1}}
        )
        with self.assertRaises(MalformedWebhook) as caught:
            self.receiver.receive(headers(body), body.encode())
        self.assertEqual(caught.exception.status, 400)
        self.assertEqual(self.receiver.stats.rejected, 1)


@override_settings(WEBHOOK_ALLOWED_NETWORKS=["127.0.0.0/8"], WEBHOOK_ALLOW_HTTP=True, WEBHOOK_CONCURRENCY=1)
class PortalToAgentTestCase(PortalLiveTestCase):
    """The portal's own delivery code sends to the agent's own HTTP server."""

    def setUp(self) -> None:
        super().setUp()
        self.agent, self.nft = self.started_agent()
        self.agent.sync_once()
        self.nft.take()
        receiver = WebhookReceiver(
            [SECRET], self.agent.on_webhook, clock=lambda: datetime.now(UTC).timestamp()
        )
        self.receiver = receiver
        server = AgentServer(Address("127.0.0.1", 0), self.agent, health=False, webhooks=receiver)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        self.url = f"http://127.0.0.1:{server.server_address[1]}/webhook"
        with self.portal():
            self.endpoint = WebhookEndpoint.objects.create(url=self.url, secret=SECRET)

    def deliver(self) -> int:
        with self.portal():
            return deliver_due_webhooks()

    def test_an_approval_and_a_suspension_apply_at_once_without_waiting_for_a_poll(self) -> None:
        (exemption,) = self.approve("203.0.113.5")
        self.assertEqual(self.deliver(), 1)
        self.assertEqual(self.nft.take(), ["add element inet egress_port25 exempt4 { 203.0.113.5 }\n"])
        self.assertEqual(self.agent.cursor, 1)

        self.move(exemption, "exemption.suspended", "Listed on a DNSBL")
        self.assertEqual(self.deliver(), 1)
        self.assertEqual(self.nft.take(), ["delete element inet egress_port25 exempt4 { 203.0.113.5 }\n"])
        self.assertEqual(self.agent.cursor, 2)

        # The next poll finds nothing left to do.
        self.assertTrue(self.agent.sync_once())
        self.assertEqual(self.nft.take(), [])

    def test_a_redelivered_message_is_acknowledged_and_not_applied_again(self) -> None:
        self.approve("203.0.113.5")
        self.deliver()
        self.nft.take()
        with self.portal():
            redeliver(list(Delivery.objects.all()), actor=Actor.of_system("test"))
        self.assertEqual(self.deliver(), 1)
        self.assertEqual(self.nft.take(), [])
        self.assertEqual(self.receiver.stats.duplicates, 1)

    def test_the_change_feed_settles_messages_that_arrive_out_of_order(self) -> None:
        (exemption,) = self.approve("203.0.113.5")
        self.move(exemption, "exemption.suspended", "Listed on a DNSBL")
        activated, _ = Delivery.objects.order_by("created_at", "id")
        with self.portal():
            Delivery.objects.filter(pk=activated.pk).update(next_attempt_at=datetime(2099, 1, 1, tzinfo=UTC))

        # The suspension (#2) comes first: applied at once, but the cursor waits for #1.
        self.assertEqual(self.deliver(), 1)
        self.assertEqual((self.agent.cursor, self.agent.exemptions), (0, {}))
        self.assertTrue(self.agent.wake.is_set())  # the loop asks the feed now

        # The feed puts #1 before #2: the exemption ends up suspended, not active.
        self.assertTrue(self.agent.sync_once())
        self.assertEqual((self.agent.cursor, self.agent.exemptions), (2, {}))

    def test_a_change_from_ahead_of_the_feed_is_enforced_before_the_feed_catches_up(self) -> None:
        self.approve("203.0.113.5")
        (second,) = self.approve("203.0.113.6")
        first_delivery = Delivery.objects.order_by("created_at", "id").first()
        assert first_delivery is not None
        with self.portal():
            first_delivery.delete()
        self.deliver()
        self.assertEqual(self.nft.take(), ["add element inet egress_port25 exempt4 { 203.0.113.6 }\n"])
        self.assertEqual(self.agent.cursor, 0)
        self.assertEqual(self.agent.exemptions, {str(second.id): ipaddress.ip_network("203.0.113.6")})
        self.agent.sync_once()
        self.assertEqual(self.agent.cursor, 2)
        self.assertEqual(self.nft.take(), ["add element inet egress_port25 exempt4 { 203.0.113.5 }\n"])

    def test_it_answers_401_to_an_unsigned_message_and_applies_nothing(self) -> None:
        body = message("exemption.activated", "e1", "203.0.113.5", 1).encode()
        request = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
        with self.assertRaises(urllib.error.HTTPError) as caught, self.assertLogs("portal.agent", "WARNING"):
            urllib.request.urlopen(request, timeout=5)
        self.assertEqual(caught.exception.code, 401)
        caught.exception.close()
        self.assertEqual(self.nft.transactions, [])
        self.assertFalse(Exemption.objects.exists())
