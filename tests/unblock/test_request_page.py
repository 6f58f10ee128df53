"""The customer's request page: what to do next at the top, refreshed together while it is open."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from portal.unblock.models import State, UnblockRequest
from portal.vetting.models import CheckResult, RunReason, RunState, VettingRun
from portal.workflows import decisions
from tests.base import PortalTestCase, make_request

SPAMHAUS_FIX = (
    "203.0.113.5 is on a Spamhaus blocklist (SBL). Find and stop the source of the abuse, then "
    "request removal at https://check.spamhaus.org/results/?query=203.0.113.5 and re-run the checks."
)


def failed_run(req: UnblockRequest, *, fix: str = SPAMHAUS_FIX) -> VettingRun:
    run = VettingRun.objects.create(
        request=req,
        reason=RunReason.SUBMITTED,
        requested_by="alice@acme.example",
        state=RunState.DONE,
        finished_at=timezone.now(),
    )
    CheckResult.objects.create(
        run=run, check_name="dnsbl", subject="203.0.113.5", outcome="fail", summary="Listed on SBL", fix=fix
    )
    return run


class NeedsInfoTestCase(PortalTestCase):
    def setUp(self) -> None:
        self.req = make_request(self.acme, "203.0.113.5")
        decisions.request_info(req=self.req, user=self.rita, question="Which DKIM <selector> do you use?")
        self.client.force_login(self.alice)
        self.url = f"/requests/{self.req.id}/"

    def test_it_quotes_the_question_above_the_answer_box(self) -> None:
        html = self.client.get(self.url).content.decode()
        quote = html.index('<blockquote class="message-body">Which DKIM &lt;selector&gt; do you use?')
        self.assertLess(html.index("A reviewer asked you a question"), quote)
        self.assertLess(quote, html.index('name="text"'))

    def test_it_says_what_to_write_when_the_answer_is_empty(self) -> None:
        r = self.client.post(f"{self.url}answer/", {"text": "  "})
        self.assertContains(r, "Write your answer to the reviewer&#x27;s question above")
        self.assertNotContains(r, "This field is required")
        self.req.refresh_from_db()
        self.assertEqual(self.req.state, State.NEEDS_INFO)


class LiveRefreshTestCase(PortalTestCase):
    def setUp(self) -> None:
        self.req = make_request(self.acme, "203.0.113.5")
        self.client.force_login(self.alice)
        self.url = f"/requests/{self.req.id}/"

    def poll(self, since: str) -> Any:
        return self.client.get(self.url, {"since": since}, headers={"HX-Request": "true"})

    def test_it_polls_while_the_request_is_open(self) -> None:
        page = self.client.get(self.url)
        self.assertContains(page, 'hx-trigger="every 3s"')

    def test_it_answers_a_poll_with_no_content_while_nothing_changed(self) -> None:
        version = self.client.get(self.url).context["version"]
        r = self.poll(version)
        self.assertEqual(r.status_code, 204)
        self.assertEqual(r.content, b"")

    def test_it_sends_state_banner_and_actions_together_when_the_state_changes(self) -> None:
        version = self.client.get(self.url).context["version"]
        decisions.deny(req=self.req, user=self.rita, reason="The address sent spam last week.")
        r = self.poll(version)
        html = r.content.decode()
        self.assertTrue(html.lstrip().startswith('<div id="request-live"'), html[:80])
        self.assertIn('<span class="badge state-denied">Denied</span>', html)
        self.assertIn("The address sent spam last week.", html)
        self.assertIn("File a new request from this one", html)
        self.assertNotIn("Withdraw this request", html)
        # Final: the fragment no longer asks to be polled.
        self.assertNotIn("hx-trigger", html)
        self.assertNotIn("As filed", html)

    def test_it_does_not_poll_a_draft(self) -> None:
        draft = make_request(self.acme, "203.0.113.6", state=State.DRAFT)
        self.assertNotContains(self.client.get(f"/requests/{draft.id}/"), "hx-trigger")


class DeniedPageTestCase(PortalTestCase):
    def setUp(self) -> None:
        self.req = make_request(self.acme, "203.0.113.5")
        failed_run(self.req)
        decisions.deny(req=self.req, user=self.rita, reason="203.0.113.5 is on a Spamhaus blocklist.")
        self.client.force_login(self.alice)
        self.url = f"/requests/{self.req.id}/"

    def test_it_says_once_at_the_top_why_and_what_to_do(self) -> None:
        html = self.client.get(self.url).content.decode()
        self.assertLess(html.index("Why this request was denied"), html.index("Automated checks"))
        self.assertEqual(html.count("Find and stop the source of the abuse"), 1)
        self.assertNotIn("run the checks again", html.lower())
        self.assertIn(f'href="/requests/new/?from={self.req.id}"', html)

    def test_it_links_the_look_up_in_a_fix_hint(self) -> None:
        self.assertContains(
            self.client.get(self.url),
            '<a href="https://check.spamhaus.org/results/?query=203.0.113.5" rel="noopener noreferrer">',
        )

    def test_it_links_only_safe_schemes_and_escapes_the_rest(self) -> None:
        other = make_request(self.acme, "203.0.113.7")
        failed_run(
            other,
            fix='See javascript:alert(1) or <script>x()</script> or mail.example.com or https://ok.example/?a=1&b="2"',
        )
        decisions.deny(req=other, user=self.rita, reason="Listed.")
        html = self.client.get(f"/requests/{other.id}/").content.decode()
        self.assertNotIn("<script>x()", html)
        self.assertIn("&lt;script&gt;x()&lt;/script&gt;", html)
        self.assertNotIn('href="javascript:', html)
        # Example host names in hints are not links.
        self.assertIn("or mail.example.com", html)
        # A quote ends the link rather than breaking out of the attribute.
        self.assertIn('<a href="https://ok.example/?a=1&amp;b=" rel="noopener noreferrer">', html)
