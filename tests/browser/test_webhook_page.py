"""The webhook endpoint page in Chromium: the masked secret, and a confirmed redelivery that
keeps the focus and is announced."""

from __future__ import annotations

from playwright.sync_api import expect

from portal.enforcement.models import Attempt, Delivery, DeliveryState, WebhookEndpoint
from tests.base import make_user
from tests.browser.base import BrowserTestCase


class WebhookPageInBrowserTestCase(BrowserTestCase):
    def setUp(self) -> None:
        super().setUp()
        make_user("root@provider.example", "reviewer", "approver", "admin")
        self.endpoint = WebhookEndpoint.objects.create(url="https://hooks.example.net/portal")
        self.delivery = Delivery.objects.create(
            endpoint=self.endpoint,
            event="exemption.granted",
            body="{}",
            state=DeliveryState.FAILED,
            attempts=1,
        )
        Attempt.objects.create(delivery=self.delivery, error="certificate verify failed", duration_ms=80)
        self.log_in("root@provider.example")
        self.page.goto(f"/review/webhooks/{self.endpoint.id}/")

    def test_it_reveals_the_masked_secret_on_request(self) -> None:
        secret = self.page.locator("#signing-secret")
        expect(secret).not_to_contain_text(self.endpoint.secret)
        self.page.get_by_role("button", name="Reveal").click()
        expect(secret).to_have_text(self.endpoint.secret)
        expect(self.page.get_by_role("button", name="Hide")).to_have_attribute("aria-pressed", "true")
        self.assertNoConsoleErrors()

    def test_redelivery_is_confirmed_keeps_the_focus_and_is_announced(self) -> None:
        page = self.page
        page.get_by_role("button", name="Redeliver…").click()
        dialog = page.get_by_role("dialog", name=f"Redeliver {self.delivery.message_id}?")
        dialog.get_by_role("button", name="Redeliver", exact=True).click()
        expect(page.locator("#announcer")).to_have_text(
            f"{self.delivery.message_id} queued again (same webhook-id)."
        )
        expect(page.get_by_role("button", name="Redeliver…")).to_be_focused()
        self.delivery.refresh_from_db()
        self.assertEqual(self.delivery.state, DeliveryState.PENDING)
        self.assertNoConsoleErrors()
