from __future__ import annotations

import base64

from django.test import override_settings
from standardwebhooks.webhooks import Webhook

from portal.accounts.models import Actor, ApiKey, Scope
from portal.enforcement.models import Delivery, DeliveryState, FeedChange, WebhookEndpoint
from portal.enforcement.webhooks import deliver_due_webhooks
from portal.workflows.decisions import approve_request
from tests.base import PortalTestCase
from tests.enforcement.receiver import running_receiver


@override_settings(WEBHOOK_ALLOWED_NETWORKS=["127.0.0.0/8"], WEBHOOK_ALLOW_HTTP=True)
class ApprovalToWebhookTestCase(PortalTestCase):
    def test_an_approval_reaches_the_receiver_signed_and_the_feeds(self) -> None:
        with running_receiver() as receiver:
            endpoint = WebhookEndpoint.objects.create(url=receiver.url)
            req = self.make_request(self.acme, "203.0.113.5")
            (exemption,) = approve_request(req=req, actor=Actor(user=self.ada), note="ok")
            self.assertEqual(Delivery.objects.get().state, DeliveryState.PENDING)
            self.assertEqual(deliver_due_webhooks(), 1)
        (message,) = receiver.received
        payload = Webhook(endpoint.secret).verify(message.body, message.headers)
        self.assertEqual(payload["type"], "exemption.activated")
        self.assertEqual(payload["data"]["block"], "203.0.113.5")
        self.assertEqual(payload["data"]["sequence"], FeedChange.objects.get().seq)
        self.assertEqual(Delivery.objects.get().state, DeliveryState.DELIVERED)

        client = self.api(Scope.ENFORCEMENT)
        text = client.get("/api/v1/feeds/exemptions.txt")
        self.assertEqual(text.content, b"203.0.113.5\n")
        etag = text["ETag"]
        self.assertEqual(client.get("/api/v1/feeds/exemptions.txt", HTTP_IF_NONE_MATCH=etag).status_code, 304)
        changes = client.get("/api/v1/feeds/changes?after=0").json()
        self.assertEqual([(c["op"], c["block"]) for c in changes["changes"]], [("add", "203.0.113.5")])
        self.assertEqual(changes["cursor"], 1)
        self.assertEqual(str(exemption.id), changes["changes"][0]["exemption"])


class BasicAuthForFirewallsTestCase(PortalTestCase):
    def test_enforcement_keys_work_as_a_basic_password(self) -> None:
        _, key = ApiKey.issue(name="pan", scope=Scope.ENFORCEMENT, tenant=None, created_by=None)
        credentials = base64.b64encode(f"firewall:{key}".encode()).decode()
        r = self.client.get("/api/v1/feeds/exemptions.txt", HTTP_AUTHORIZATION=f"Basic {credentials}")
        self.assertEqual(r.status_code, 200)
        wrong = base64.b64encode(f"firewall:{key}x".encode()).decode()
        r = self.client.get("/api/v1/feeds/exemptions.txt", HTTP_AUTHORIZATION=f"Basic {wrong}")
        self.assertEqual(r.status_code, 401)

    def test_other_keys_stay_bearer_only(self) -> None:
        _, key = ApiKey.issue(name="c", scope=Scope.CUSTOMER, tenant=self.acme, created_by=None)
        credentials = base64.b64encode(f"x:{key}".encode()).decode()
        r = self.client.get("/api/v1/requests/", HTTP_AUTHORIZATION=f"Basic {credentials}")
        self.assertEqual(r.status_code, 401)
        self.assertIn("Bearer", r.json()["detail"])
