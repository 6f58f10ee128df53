from __future__ import annotations

import re

from playwright.sync_api import expect

from portal.unblock.models import State, UnblockRequest
from tests.browser.base import BrowserTestCase


class FileRequestInBrowserTestCase(BrowserTestCase):
    def test_it_checks_addresses_as_typed_then_files_the_request(self) -> None:
        page = self.page
        self.log_in("alice@acme.example")
        page.get_by_role("button", name="New request").click()
        expect(page.get_by_role("heading", name="Request port-25 unblocking")).to_be_visible()

        addresses = page.get_by_label("Addresses")
        feedback = page.locator("#field-addresses .field-feedback")
        addresses.fill("198.51.100.70")  # Globex's address, not Acme's
        expect(feedback).to_contain_text("198.51.100.70 is not inside any block allocated to Acme Ltd")
        self.assertEqual(page.url, f"{self.live_server_url}/requests/new/")

        addresses.fill("203.0.113.10")
        expect(feedback).to_be_empty()

        page.get_by_label("Own mail server (MTA for my domains)").check()
        page.get_by_label("Why won't port 587 or a relay service do?").fill("We run our own MX.")
        page.get_by_label("Mail server software").fill("Postfix 3.8")
        page.get_by_label("Sending domains").fill("acme.example")
        page.get_by_label("Expected messages per day").fill("500")
        page.get_by_label("How do you handle bounces and complaints?").fill(
            "Suppressed after one hard bounce."
        )
        page.get_by_label("Abuse contact").fill("abuse@acme.example")
        page.get_by_label("I accept the acceptable-use policy").check()
        expect(page.locator(".field-feedback ul")).to_have_count(0)
        page.get_by_role("button", name="Submit for review").click()

        page.wait_for_url(re.compile(r"/requests/[0-9a-f-]{36}/$"))
        req = UnblockRequest.objects.get()
        self.assertEqual(req.state, State.SUBMITTED)
        self.assertEqual([b.cidr for b in req.blocks.all()], ["203.0.113.10"])
        expect(page.get_by_role("heading", name=f"Request {req.reference}")).to_contain_text("Submitted")
        expect(page.locator(".messages")).to_contain_text(f"Request {req.reference} was submitted")

        page.get_by_role("link", name="Requests", exact=True).click()
        row = page.get_by_role("row").filter(has=page.get_by_role("link", name=req.reference))
        expect(row).to_contain_text("203.0.113.10")
        expect(row).to_contain_text("Submitted")
        self.assertNoConsoleErrors()
