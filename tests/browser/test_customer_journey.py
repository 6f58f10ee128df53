"""A customer in a real browser: the home page, the needs-info loop, the denial → new request
path, revoking an API key and recovery codes, with axe-core on every page at desktop and phone widths."""

from __future__ import annotations

import re

from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Page, ViewportSize, expect

from portal.accounts.models import ApiKey, Scope
from portal.unblock.models import State, UnblockRequest
from portal.vetting.models import CheckResult, RunReason, RunState, VettingRun
from portal.workflows import decisions
from tests.base import make_request
from tests.browser.axe import axe_violations
from tests.browser.base import BrowserTestCase

SIZES: tuple[ViewportSize, ...] = ({"width": 1366, "height": 900}, {"width": 390, "height": 844})
REQUEST_URL = re.compile(r"/requests/[0-9a-f-]{36}/$")


class CustomerJourneyTestCase(BrowserTestCase):
    def assertAccessible(self, page: Page) -> None:
        for size in SIZES:
            page.set_viewport_size(size)
            self.assertEqual(axe_violations(page), [], f"{page.url} at {size['width']} px")
        page.set_viewport_size(SIZES[0])

    def test_it_walks_the_needs_info_loop_and_refreshes_when_the_reviewer_decides(self) -> None:
        req = make_request(self.acme, "203.0.113.5")
        decisions.request_info(req=req, user=self.rita, question="Which DKIM selector do you use?")
        _, rita_key = ApiKey.issue(
            name="rita's script", scope=Scope.REVIEWER, tenant=None, created_by=self.rita
        )
        page = self.page
        self.log_in("alice@acme.example")

        expect(
            page.get_by_role("heading", name=f"A reviewer asked you a question about request {req.reference}")
        )
        self.assertAccessible(page)
        page.get_by_role("button", name="Answer the question").click()

        question = page.locator(".question blockquote")
        expect(question).to_have_text("Which DKIM selector do you use?")
        self.assertAccessible(page)

        page.get_by_role("button", name="Send answer").click()
        expect(page.get_by_role("alert")).to_contain_text(
            "Write your answer to the reviewer's question above"
        )
        self.assertAccessible(page)

        page.get_by_label("Your answer").fill("Selector s1; DMARC reports go to dmarc@acme.example.")
        page.get_by_role("button", name="Send answer").click()
        page.wait_for_url(REQUEST_URL)
        expect(page.get_by_role("heading", level=1)).to_contain_text("In review")
        expect(page.get_by_text("Withdraw this request")).to_be_visible()
        self.assertAccessible(page)

        # The reviewer decides while the page is open: badge, banner and actions change together.
        # Through the live server, which serves one request at a time, so the decision never
        # overlaps a poll on the shared SQLite connection.
        denied = page.request.post(
            f"/api/v1/review/requests/{req.id}/deny",
            data={"reason": "DKIM selector s1 has no published key."},
            headers={"Authorization": f"Bearer {rita_key}"},
        )
        self.assertEqual(denied.status, 200, denied.text())
        expect(page.get_by_role("heading", level=1)).to_contain_text("Denied", timeout=8_000)
        expect(page.get_by_role("heading", name="Why this request was denied")).to_be_visible()
        expect(page.get_by_text("Withdraw this request")).to_have_count(0)
        expect(page.locator("#announcer")).to_contain_text("Denied")
        self.assertAccessible(page)
        self.assertNoConsoleErrors()

    def test_it_files_a_new_request_from_a_denied_one(self) -> None:
        req = make_request(self.acme, "203.0.113.5")
        run = VettingRun.objects.create(
            request=req,
            reason=RunReason.SUBMITTED,
            requested_by="alice",
            state=RunState.DONE,
            finished_at=timezone.now(),
        )
        CheckResult.objects.create(
            run=run,
            check_name="dnsbl",
            subject="203.0.113.5",
            outcome="fail",
            summary="Listed on SBL",
            fix="203.0.113.5 is on a Spamhaus blocklist (SBL). Find and stop the source of the abuse, then "
            "request removal at https://check.spamhaus.org/results/?query=203.0.113.5 and re-run the checks.",
        )
        decisions.deny(req=req, user=self.rita, reason="203.0.113.5 is on the Spamhaus SBL.")
        page = self.page
        self.log_in("alice@acme.example")

        expect(page.get_by_role("heading", name=f"Request {req.reference} was denied")).to_be_visible()
        page.get_by_role("link", name="Why, and what to do").click()
        expect(page.get_by_role("heading", name="Why this request was denied")).to_be_visible()
        lookup = page.get_by_role("link", name="https://check.spamhaus.org/results/?query=203.0.113.5")
        expect(lookup).to_have_attribute("href", "https://check.spamhaus.org/results/?query=203.0.113.5")
        self.assertAccessible(page)

        page.get_by_role("button", name="File a new request from this one").first.click()
        expect(page.get_by_label("Addresses")).to_have_value("203.0.113.5")
        expect(page.get_by_label("Mail server software")).to_have_value("Postfix")
        expect(page.get_by_label("I accept the acceptable-use policy")).not_to_be_checked()
        self.assertAccessible(page)

        page.get_by_label("Mail server software").fill("")
        page.get_by_role("button", name="Submit for review").click()
        summary = page.locator("[data-error-summary]")
        expect(summary).to_be_focused()
        expect(summary.get_by_role("link")).to_have_count(2)
        self.assertAccessible(page)
        summary.get_by_role("link", name="Accept the acceptable-use policy to submit the request.").click()
        expect(page.get_by_label("I accept the acceptable-use policy")).to_be_focused()

        page.get_by_label("I accept the acceptable-use policy").check()
        page.get_by_label("Mail server software").fill("Postfix 3.8")
        page.get_by_role("button", name="Submit for review").click()
        page.wait_for_url(REQUEST_URL)
        new = UnblockRequest.objects.exclude(pk=req.pk).get()
        self.assertEqual((new.state, new.mail_software), (State.SUBMITTED, "Postfix 3.8"))
        self.assertEqual([b.cidr for b in new.blocks.all()], ["203.0.113.5"])
        self.assertAccessible(page)
        self.assertNoConsoleErrors()

    def test_it_confirms_before_revoking_an_api_key(self) -> None:
        key, _ = ApiKey.issue(
            name="deploy pipeline", scope=Scope.CUSTOMER, tenant=self.acme, created_by=self.alice
        )
        page = self.page
        self.log_in("alice@acme.example")
        page.goto("/keys/")
        page.get_by_role("button", name="Revoke deploy pipeline").click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text("Revoke the key “deploy pipeline”?")
        self.assertAccessible(page)
        dialog.get_by_role("button", name="Cancel").click()
        key.refresh_from_db()
        self.assertFalse(key.is_revoked)

        page.get_by_role("button", name="Revoke deploy pipeline").click()
        page.get_by_role("dialog").get_by_role("button", name="Revoke key").click()
        expect(page.locator(".messages")).to_contain_text("deploy pipeline is revoked")
        key.refresh_from_db()
        self.assertTrue(key.is_revoked)
        self.assertAccessible(page)
        self.assertNoConsoleErrors()

    def test_it_shows_recovery_codes_once_and_makes_new_ones_after_confirming(self) -> None:
        page = self.page
        self.log_in("alice@acme.example")
        page.goto("/account/two-factor/")
        page.get_by_role("button", name="Set up an authenticator app").click()
        device = TOTPDevice.objects.get(user=self.alice)
        page.get_by_label("Code").fill(f"{totp(device.bin_key):06d}")
        page.get_by_role("button", name="Turn on two-factor authentication").click()

        codes = page.get_by_role("list", name="Recovery codes").get_by_role("listitem")
        expect(codes).to_have_count(10)
        first = codes.first.inner_text()
        self.assertAccessible(page)
        page.get_by_role("button", name="I have saved my codes").click()
        expect(page.get_by_text("You have 10 unused codes.")).to_be_visible()
        self.assertAccessible(page)

        page.get_by_role("button", name="Make new recovery codes").click()
        expect(page.get_by_role("dialog")).to_contain_text("Your current recovery codes stop working")
        page.get_by_role("dialog").get_by_role("button", name="Make new codes").click()
        expect(codes).to_have_count(10)
        self.assertNotEqual(codes.first.inner_text(), first)
        self.assertNoConsoleErrors()
