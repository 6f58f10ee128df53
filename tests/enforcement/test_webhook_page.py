"""The admin's webhook endpoint page: the form, the masked secret, the delivery log and redelivery."""

from __future__ import annotations

from portal.enforcement.models import Attempt, Delivery, DeliveryState, WebhookEndpoint
from tests.base import PortalTestCase

CERT_ERROR = (
    "certificate verify failed: unable to get local issuer certificate (_ssl.c:1000) "
    "while connecting to hooks.example.net:443"
)


class WebhookPageTestCase(PortalTestCase):
    def setUp(self) -> None:
        self.endpoint = WebhookEndpoint.objects.create(url="https://hooks.example.net/portal")
        self.delivery = Delivery.objects.create(
            endpoint=self.endpoint,
            event="exemption.granted",
            body='{"cidr": "203.0.113.5"}',
            state=DeliveryState.FAILED,
            attempts=1,
        )
        Attempt.objects.create(delivery=self.delivery, error=CERT_ERROR, duration_ms=87, worker="w1")
        self.url = f"/review/webhooks/{self.endpoint.id}/"
        self.client.force_login(self.root)

    def test_it_masks_the_signing_secret_behind_reveal_and_copy(self) -> None:
        page = self.client.get(self.url)
        self.assertContains(page, f'data-secret="{self.endpoint.secret}">••••')
        self.assertContains(page, 'data-reveal="#signing-secret"')
        self.assertContains(page, 'data-copy="#signing-secret"')
        self.assertNotContains(page, f">{self.endpoint.secret}<")

    def test_it_shows_the_whole_error_and_the_request_it_sent(self) -> None:
        page = self.client.get(self.url)
        self.assertContains(page, f'<dd class="outcome-fail">{CERT_ERROR}</dd>', html=True)
        self.assertContains(page, "<code>POST https://hooks.example.net/portal</code>", html=True)
        self.assertContains(page, "{&quot;cidr&quot;: &quot;203.0.113.5&quot;}")
        self.assertContains(page, "none after 87 ms (w1)")

    def test_it_labels_each_field_with_its_errors_under_it(self) -> None:
        page = self.client.post(self.url, {"url": "not a url", "enabled": "on"})
        html = page.content.decode()
        self.assertEqual(page.status_code, 400)
        self.assertIn('<label for="id_url">URL', html)
        self.assertLess(html.index('id="id_url"'), html.index('class="errorlist'))

    def test_it_confirms_rotating_the_secret_and_redelivering(self) -> None:
        page = self.client.get(self.url)
        self.assertContains(page, 'data-confirm="Rotate the signing secret?"')
        self.assertContains(page, f'data-confirm="Redeliver {self.delivery.message_id}?"')

    def test_redelivering_with_htmx_announces_it_and_takes_the_focus(self) -> None:
        r = self.client.post(
            f"{self.url}deliveries/{self.delivery.uuid}/redeliver/", headers={"HX-Request": "true"}
        )
        self.assertContains(
            r,
            f'<p class="flash flash-success" data-announce>'
            f"{self.delivery.message_id} queued again (same webhook-id).</p>",
            html=True,
        )
        self.assertContains(
            r, f'id="redeliver-{self.delivery.uuid}" class="secondary outline small" data-swap-focus'
        )
        self.delivery.refresh_from_db()
        self.assertEqual(self.delivery.state, DeliveryState.PENDING)
