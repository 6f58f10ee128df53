"""Deciding on a request with the keyboard alone, and the confirmation before an irreversible denial."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from portal.audit.models import AuditEvent
from portal.enforcement.models import Exemption
from portal.review.models import DenialReason
from portal.unblock.models import State
from tests.browser.base import BrowserTestCase
from tests.browser.test_review_flow import filed_and_vetted

# More than the page has focusable elements before the decision panel: a bound, not a target.
MAX_TABS = 120


def tab_to(page: Page, name: str) -> None:
    """Press Tab until the focused element is the one called `name`, as a keyboard user would."""
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "(document.activeElement.innerText || document.activeElement.value || '').trim()"
        )
        if focused == name:
            return
    raise AssertionError(f"{name!r} is not reachable with Tab")


class DecideByKeyboardTestCase(BrowserTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.req = filed_and_vetted(self.acme, "203.0.113.5", "acme.example", band="low", score=5)
        # The canned reasons come from a data migration, which a live-server test may have flushed.
        self.reason, _ = DenialReason.objects.update_or_create(
            title="Reverse DNS not set up",
            defaults={"text": "Set a reverse DNS name for each address, then file again."},
        )
        self.log_in(self.ada.email)
        self.page.goto(f"/review/requests/{self.req.id}/")

    def test_it_approves_with_the_keyboard_alone(self) -> None:
        tab_to(self.page, "Approve")
        self.page.keyboard.press("Enter")
        expect(self.page.get_by_text("Approved: 1 exemption(s) created.")).to_be_visible()
        self.req.refresh_from_db()
        self.assertEqual(self.req.state, State.APPROVED)
        self.assertTrue(Exemption.objects.filter(request=self.req).exists())
        self.assertNoConsoleErrors()

    def test_it_previews_the_denial_and_denies_only_once_confirmed(self) -> None:
        page = self.page
        page.locator("#deny_canned").select_option(label=self.reason.title)
        page.locator("#deny_text").fill("Ask us if unsure.")
        preview = page.locator("#deny-preview")
        expect(preview).to_have_text(f"{self.reason.text}\n\nAsk us if unsure.")

        page.get_by_role("button", name="Deny…").click()
        dialog = page.get_by_role("dialog", name=f"Deny request {self.req.reference}?")
        expect(dialog).to_be_visible()
        expect(dialog.locator(".message-preview")).to_have_text(f"{self.reason.text}\n\nAsk us if unsure.")
        expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()
        expect(page.get_by_role("button", name="Deny…")).to_be_focused()
        self.assertFalse(AuditEvent.objects.for_object(self.req).filter(action__endswith="deny").exists())

        page.get_by_role("button", name="Deny…").click()
        dialog.get_by_role("button", name="Deny and email the customer").click()
        expect(page.get_by_text("Denied; the customer has been told why.")).to_be_visible()
        self.req.refresh_from_db()
        self.assertEqual(self.req.state, State.DENIED)
        denial = AuditEvent.objects.for_object(self.req).get(action__endswith="deny")
        self.assertEqual(denial.reason, f"{self.reason.text}\n\nAsk us if unsure.")
        self.assertNoConsoleErrors()
