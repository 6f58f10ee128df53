"""A day's work in the reviewer workspace, in Chromium: filter the queue, ask the customer a
question, get the answer, approve."""

from __future__ import annotations

import re

from django.utils import timezone
from playwright.sync_api import expect

from portal.accounts.models import Actor, Tenant
from portal.enforcement.models import Exemption
from portal.unblock.models import State, UnblockRequest, UseCase
from portal.unblock.rules import RequestData
from portal.vetting.models import CheckResult, RunState
from portal.workflows.requests import save_request
from tests.browser.base import BrowserTestCase


def filed_and_vetted(tenant: Tenant, address: str, domain: str, *, band: str, score: int) -> UnblockRequest:
    """A request filed by the tenant's customer, as the vetting worker leaves it in the queue."""
    member = tenant.memberships.get().user
    req = save_request(
        tenant=tenant,
        actor=Actor(user=member),
        submit=True,
        data=RequestData(
            addresses=[address],
            use_case=UseCase.OWN_MAIL_SERVER,
            justification=f"We run our own MX for {domain}.",
            mail_software="Postfix 3.8",
            sending_domains=[domain],
            expected_daily_volume=500,
            bounce_handling="Suppressed after one hard bounce.",
            abuse_contact=f"abuse@{domain}",
            accept_aup=True,
        ),
    )
    failing = [] if band == "low" else ["rdns"]
    run = req.vetting_runs.get()
    run.state, run.finished_at, run.route = RunState.DONE, timezone.now(), "review"
    run.risk_score, run.risk_band = score, band
    run.breakdown = [{"points": score, "text": f"Risk from the checks (+{score})", "check": "rdns"}]
    run.save()
    CheckResult.objects.create(
        run=run,
        check_name="rdns",
        subject=address,
        outcome="fail" if failing else "pass",
        summary=f"{address} has no PTR record." if failing else f"{address} resolves to mail.{domain}.",
        evidence={"queried": f"PTR of {address}"},
    )
    req.risk_score, req.risk_band = score, band
    req.failing_checks = ",rdns," if failing else ""
    req.vetted_at = timezone.now()
    req.save()
    return req


class ReviewFlowInBrowserTestCase(BrowserTestCase):
    def setUp(self) -> None:
        super().setUp()
        # Acme's request is one address of an established tenant at low risk: one approval is
        # final. Globex's is in the queue too, for the filter to hide.
        self.req = filed_and_vetted(self.acme, "203.0.113.10", "acme.example", band="low", score=5)
        self.other = filed_and_vetted(self.globex, "198.51.100.70", "globex.example", band="high", score=60)

    def test_a_reviewer_asks_the_customer_answers_and_an_approver_approves(self) -> None:
        # The reviewer narrows the queue to Acme; htmx swaps only the table and updates the URL.
        reviewer = self.log_in("rita@provider.example")
        expect(reviewer.get_by_role("heading", name="Review queue")).to_be_visible()
        acme_row = reviewer.get_by_role("row").filter(
            has=reviewer.get_by_role("link", name=self.req.reference)
        )
        globex_row = reviewer.get_by_role("row").filter(
            has=reviewer.get_by_role("link", name=self.other.reference)
        )
        expect(acme_row).to_contain_text("Acme Ltd")
        expect(globex_row).to_contain_text("Globex GmbH")
        reviewer.evaluate("document.body.dataset.loadedOnce = 'yes'")  # gone if the page reloads
        reviewer.get_by_label("Search").fill("Acme")
        expect(globex_row).to_have_count(0)
        expect(reviewer).to_have_url(re.compile(r"/review/\?.*q=Acme"))
        expect(acme_row).to_contain_text("Low risk (5)")
        expect(acme_row).to_contain_text("Submitted")
        expect(reviewer.locator("body")).to_have_attribute("data-loaded-once", "yes")

        # It opens the request: checks, risk breakdown and the decision forms on one page.
        acme_row.get_by_role("link", name=self.req.reference).click()
        expect(reviewer.get_by_role("heading", name=f"Request {self.req.reference}")).to_be_visible()
        checks = reviewer.locator("#checks")
        expect(checks).to_contain_text("Risk 5 (low) · Review queue")
        expect(checks).to_contain_text("203.0.113.10 resolves to mail.acme.example.")
        expect(reviewer.get_by_role("heading", name="Decide")).to_be_visible()
        question = "Which DKIM selector will acme.example use?"
        reviewer.get_by_label("Question to the customer").fill(question)
        reviewer.get_by_role("button", name="Send question").click()
        expect(reviewer.get_by_role("status")).to_contain_text("Question sent")
        expect(reviewer.get_by_role("heading", name=f"Request {self.req.reference}")).to_contain_text(
            "Needs information"
        )
        expect(reviewer.get_by_role("heading", name="Decide")).to_be_visible()

        # The customer sees the question on the request's page and answers it.
        customer = self.log_in("alice@acme.example", page=self.new_page())
        customer.get_by_role("link", name=self.req.reference).click()
        expect(customer.get_by_role("heading", name="A reviewer asked you a question")).to_be_visible()
        expect(customer.locator(".timeline")).to_contain_text(question)
        customer.get_by_label("Your answer").fill("Selector s2026; reports go to dmarc@acme.example.")
        customer.get_by_role("button", name="Send answer").click()
        expect(customer.get_by_role("heading", name=f"Request {self.req.reference}")).to_contain_text(
            "In review"
        )
        expect(customer.get_by_role("heading", name="A reviewer asked you a question")).to_have_count(0)

        # Back in the queue: an approver filters by state and finds the answered request there.
        approver = self.log_in("ada@provider.example", page=self.new_page())
        approver.get_by_label("State").select_option(label="In review")
        expect(approver).to_have_url(re.compile(r"/review/\?.*state=in_review"))
        row = approver.get_by_role("row").filter(has=approver.get_by_role("link", name=self.req.reference))
        expect(row).to_contain_text("In review")
        expect(approver.get_by_role("link", name=self.other.reference)).to_have_count(0)
        row.get_by_role("link", name=self.req.reference).click()
        expect(approver.locator(".timeline")).to_contain_text("Selector s2026")
        approver.get_by_label("Expiry").select_option(label="1 year")
        approver.get_by_role("button", name="Approve", exact=True).click()
        expect(approver.get_by_role("status")).to_contain_text("Approved: 1 exemption(s) created.")
        expect(approver.get_by_role("heading", name="Decide")).to_have_count(0)

        # The customer's page now shows the decision and the exemption it granted.
        customer.reload()
        expect(customer.get_by_role("heading", name=f"Request {self.req.reference}")).to_contain_text(
            "Approved"
        )
        granted = customer.get_by_role("article").filter(
            has=customer.get_by_role("heading", name="Exemptions granted")
        )
        expect(granted).to_contain_text("203.0.113.10")
        expect(granted).to_contain_text("Active")

        self.req.refresh_from_db()
        self.assertEqual(self.req.state, State.APPROVED)
        exemption = Exemption.objects.get(request=self.req)
        self.assertEqual(exemption.cidr, "203.0.113.10")
        self.assertNoConsoleErrors()
