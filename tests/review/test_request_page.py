"""The staff request page: everything needed to decide, on one screen."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

from django.utils import timezone

from portal.enforcement.models import Exemption
from portal.reputation.models import Kind, ListingStatus, Source
from portal.reputation.recording import new_event
from portal.review.models import DenialReason
from portal.unblock.models import MessageKind, State, UnblockRequest
from portal.vetting.models import CheckResult, RunReason, RunState, VettingRun
from tests.review.base import ReviewTestCase


def vetted(req: UnblockRequest) -> VettingRun:
    run = VettingRun.objects.create(
        request=req,
        reason=RunReason.SUBMITTED,
        requested_by="alice@acme.example",
        state=RunState.DONE,
        finished_at=timezone.now(),
        risk_score=45,
        risk_band="medium",
        route="review",
        breakdown=[{"points": 30, "text": "No reverse DNS for 203.0.113.5 (+30)", "check": "rdns"}],
    )
    CheckResult.objects.create(
        run=run,
        check_name="rdns",
        subject="203.0.113.5",
        outcome="fail",
        summary="203.0.113.5 has no PTR record.",
        evidence={"ptr": None, "queried": "5.113.0.203.in-addr.arpa"},
        score=30,
    )
    CheckResult.objects.create(
        run=run, check_name="paid_invoices", subject="acme-1", outcome="pass", summary="12 paid invoices."
    )
    return run


def complaint(address: str, *, days_ago: int = 3, abuse: bool = True, kind: str = Kind.COMPLAINT) -> None:
    new_event(
        network=ipaddress.ip_network(address),
        source=Source.ABUSE_REPORT,
        kind=kind,
        observed_at=timezone.now() - timedelta(days=days_ago),
        abuse=abuse,
        summary="Spam complaint",
    ).save()


def listed(address: str, zone: str) -> None:
    now = timezone.now()
    ListingStatus.objects.create(
        address=address, zone=zone, listed=True, codes=["127.0.0.2"], since=now, checked_at=now
    )


class RequestPageTestCase(ReviewTestCase):
    def setUp(self) -> None:
        self.req = self.queued(self.acme, "203.0.113.5", "203.0.113.8/29", band="medium", score=45)
        self.client.force_login(self.rita)
        self.url = f"/review/requests/{self.req.id}/"

    def test_it_shows_the_tenant_profile_and_its_history(self) -> None:
        earlier = self.queued(self.acme, "203.0.113.20", state=State.DENIED)
        exemption = Exemption(tenant=self.acme, request=None)
        exemption.set_network(ipaddress.ip_network("203.0.113.30"))
        exemption.save()
        page = self.client.get(self.url)
        self.assertContains(page, "Acme Ltd</a> (acme-1)")
        self.assertContains(page, "2025-01-01")
        self.assertContains(page, "Good, 12 paid invoices")
        self.assertContains(page, "<dd>verified</dd>", html=True)
        self.assertContains(
            page, f'<a href="/review/requests/{earlier.id}/">{earlier.reference}</a> (denied)', html=True
        )
        self.assertContains(page, "203.0.113.30 · Active · expires never")

    def test_it_shows_each_check_with_its_evidence_and_the_risk_breakdown(self) -> None:
        vetted(self.req)
        page = self.client.get(self.url)
        self.assertContains(page, "Risk 45 (medium) · Review queue")
        self.assertContains(page, "No reverse DNS for 203.0.113.5 (+30)")
        self.assertContains(page, "203.0.113.5 has no PTR record.")
        self.assertContains(page, "5.113.0.203.in-addr.arpa")
        self.assertContains(page, "Reverse DNS")
        self.assertContains(page, "12 paid invoices.")

    def test_it_folds_the_passed_checks_away_under_the_problems(self) -> None:
        vetted(self.req)
        html = self.client.get(self.url).content.decode()
        folded = html.index('<details class="passed-checks">')
        self.assertLess(html.index("203.0.113.5 has no PTR record."), folded)
        self.assertGreater(html.index("12 paid invoices."), folded)
        self.assertIn("1 more check passed", html)

    def test_it_summarises_the_reputation_of_each_address(self) -> None:
        complaint("203.0.113.5")
        complaint("203.0.113.5", days_ago=400)
        complaint("203.0.113.9")  # inside the /29
        complaint("203.0.113.0/28")  # covers both
        complaint("203.0.113.5", abuse=False, kind=Kind.NOTE)  # not abuse
        complaint("203.0.113.40")  # elsewhere
        listed("203.0.113.5", "zen.spamhaus.org")
        listed("203.0.113.10", "bl.spamcop.net")  # inside the /29
        listed("203.0.113.50", "bl.spamcop.net")  # elsewhere
        page = self.client.get(self.url)
        addresses = {a["cidr"]: a for a in page.context["addresses"]}
        self.assertEqual(addresses["203.0.113.5"]["events"], 3)
        self.assertEqual(addresses["203.0.113.8/29"]["events"], 2)
        self.assertEqual(addresses["203.0.113.5"]["listed"], ["zen.spamhaus.org"])
        self.assertEqual(addresses["203.0.113.8/29"]["listed"], ["bl.spamcop.net (203.0.113.10)"])
        self.assertContains(page, "3 abuse events")
        self.assertContains(page, "listed on bl.spamcop.net (203.0.113.10)")
        self.assertContains(page, 'href="/reputation/addresses/203.0.113.8/29/"')
        self.assertContains(page, "https://check.spamhaus.org/results/?query=203.0.113.8")

    def test_it_shows_the_conversation_with_internal_notes_marked(self) -> None:
        self.req.messages.create(
            author_label="rita@provider.example", kind=MessageKind.QUESTION, body="Selector?"
        )
        self.req.messages.create(author_label="alice@acme.example", kind=MessageKind.ANSWER, body="s1")
        self.req.messages.create(
            author_label="ada@provider.example", kind=MessageKind.NOTE, body="Known sender.", internal=True
        )
        page = self.client.get(self.url)
        self.assertContains(page, "Selector?")
        self.assertContains(page, "s1")
        self.assertContains(page, 'ada@provider.example <span class="badge">internal</span>', html=False)

    def test_it_offers_decisions_only_while_the_request_is_open(self) -> None:
        self.assertContains(self.client.get(self.url), "Give first approval")
        UnblockRequest.objects.filter(pk=self.req.pk).update(state=State.APPROVED)
        page = self.client.get(self.url)
        self.assertNotContains(page, "Give first approval")
        self.assertNotContains(page, f'action="/review/requests/{self.req.id}/deny/"')

    def test_it_polls_only_the_checks_while_they_run(self) -> None:
        VettingRun.objects.create(request=self.req, reason=RunReason.STAFF_RECHECK, requested_by="rita")
        r = self.client.get(self.url, headers={"HX-Request": "true"})
        html = r.content.decode()
        self.assertTrue(html.lstrip().startswith('<section id="checks"'), html[:100])
        self.assertIn('hx-trigger="every 2s"', html)
        self.assertNotIn("Conversation", html)

    def test_it_previews_the_denial_message_and_asks_to_confirm_it(self) -> None:
        reason = DenialReason.objects.create(title="No PTR", text="Set a PTR <name>.")
        page = self.client.get(self.url)
        self.assertContains(page, f'"{reason.pk}": "Set a PTR \\u003Cname\\u003E."')
        self.assertContains(page, f'data-confirm="Deny request {self.req.reference}?"')
        self.assertContains(page, 'data-confirm-preview="#deny-preview"')
        self.assertContains(page, '<button type="submit" class="button-danger">Deny…</button>', html=True)

    def test_it_names_the_assignee_select(self) -> None:
        self.assertContains(self.client.get(self.url), 'aria-label="Assign to"')

    def test_it_is_404_for_an_unknown_request(self) -> None:
        self.assertEqual(
            self.client.get("/review/requests/00000000-0000-0000-0000-000000000000/").status_code, 404
        )
