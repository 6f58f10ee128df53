"""The staff audit log: filters, CSV export without formula injection, and each request's own trail."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from django.http import StreamingHttpResponse
from django.utils import timezone

from portal.accounts.models import Actor
from portal.audit.log import record
from portal.audit.models import AuditEvent
from tests.review.base import ReviewTestCase


class AuditLogTestCase(ReviewTestCase):
    def setUp(self) -> None:
        self.req = self.queued(self.acme, "203.0.113.5")
        self.other = self.queued(self.globex, "198.51.100.70")
        self.client.force_login(self.ada)
        self.client.post(f"/review/requests/{self.req.id}/deny/", {"text": "Use port 587."})
        self.client.force_login(self.rita)
        self.client.post(f"/review/requests/{self.other.id}/assign/", {"claim": "1"})

    def events(self, **params: str) -> list[AuditEvent]:
        r = self.client.get("/review/audit/", params)
        self.assertEqual(r.status_code, 200)
        return list(r.context["page"].rows)

    def csv_rows(self, **params: str) -> list[list[str]]:
        r = self.client.get("/review/audit/", {**params, "format": "csv"})
        self.assertEqual(r.status_code, 200)
        assert isinstance(r, StreamingHttpResponse)
        self.assertEqual(r["Content-Type"], "text/csv; charset=utf-8")
        self.assertTrue(r["Content-Disposition"].startswith('attachment; filename="audit-'))
        body = b"".join(r.streaming_content).decode()
        return list(csv.reader(io.StringIO(body)))

    def test_it_lists_every_event_newest_first(self) -> None:
        events = self.events()
        self.assertEqual(events, list(AuditEvent.objects.order_by("-at", "-id")))
        page = self.client.get("/review/audit/")
        self.assertContains(page, "ada@provider.example")
        self.assertContains(page, "request.deny")
        self.assertContains(page, f'href="/review/requests/{self.req.id}/"')

    def test_it_filters(self) -> None:
        cases = {
            "actor": ({"actor": "ada@"}, {"request.deny"}),
            "action prefix": ({"action": "review."}, {"review.assigned"}),
            "object": ({"object_id": str(self.other.id)}, {"request.start_review", "review.assigned"}),
            "tenant": ({"tenant": "acme-1"}, {"request.deny"}),
        }
        for name, (params, actions) in cases.items():
            with self.subTest(name):
                self.assertEqual({e.action for e in self.events(**params)}, actions)
        today = timezone.localdate()
        self.assertEqual(len(self.events(since=str(today), until=str(today))), AuditEvent.objects.count())
        self.assertEqual(self.events(since=str(today + timedelta(days=1))), [])
        self.assertEqual(self.events(until=str(today - timedelta(days=1))), [])

    def test_it_shows_each_change_field_by_field(self) -> None:
        page = self.client.get("/review/audit/", {"action": "request.deny"})
        self.assertContains(
            page,
            '<li><span class="field">state:</span> <span class="before">submitted</span> '
            '<span aria-hidden="true">→</span><span class="visually-hidden">changed to</span> '
            '<span class="after">denied</span></li>',
            html=True,
        )

    def test_it_offers_the_recorded_actions_in_a_select_grouped_by_area(self) -> None:
        page = self.client.get("/review/audit/", {"action": "request."})
        self.assertContains(page, '<select name="action"')
        self.assertContains(page, '<option value="request." selected>All request actions</option>', html=True)
        self.assertContains(page, '<option value="request.deny">request.deny</option>', html=True)
        self.assertNotContains(page, "review.assigned</code>")
        self.assertNotContains(page, "{&#x27;state&#x27;")

    def test_it_answers_htmx_with_the_table_only(self) -> None:
        r = self.client.get("/review/audit/", {"actor": "rita"}, headers={"HX-Request": "true"})
        html = r.content.decode()
        self.assertTrue(html.lstrip().startswith('<div id="events"'), html[:100])
        self.assertIn("review.assigned", html)
        self.assertNotIn("request.deny", html)

    def test_it_exports_the_filtered_events_as_csv(self) -> None:
        rows = self.csv_rows()
        self.assertEqual(
            rows[0],
            [
                "at",
                "actor",
                "action",
                "object_type",
                "object_id",
                "object",
                "tenant",
                "before",
                "after",
                "reason",
                "request_id",
            ],
        )
        self.assertEqual(len(rows) - 1, AuditEvent.objects.count())
        deny = next(row for row in rows if row[2] == "request.deny")
        self.assertEqual(
            deny[1:10],
            [
                "ada@provider.example",
                "request.deny",
                "unblock.unblockrequest",
                str(self.req.id),
                str(self.req),
                "acme-1",
                '{"state": "submitted"}',
                '{"state": "denied"}',
                "Use port 587.",
            ],
        )
        self.assertEqual(
            [row[2] for row in self.csv_rows(tenant="globex-2")[1:]],
            ["request.start_review", "review.assigned"],
        )

    def test_it_neutralises_cells_that_spreadsheets_would_run(self) -> None:
        for reason in ('=HYPERLINK("http://evil")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "plain"):
            record(actor=Actor(user=self.rita), action="test.csv", obj=self.req, reason=reason)
        record(actor=Actor.of_system("=cmd|' /C calc'!A0"), action="test.csv", obj=self.req)
        rows = self.csv_rows(action="test.csv")[1:]
        self.assertEqual(
            sorted(row[9] for row in rows),
            sorted(
                ['\'=HYPERLINK("http://evil")', "'+1+1", "'-2+3", "'@SUM(A1)", "'\t=1", "'\r=1", "plain", ""]
            ),
        )
        self.assertIn("'=cmd|' /C calc'!A0", [row[1] for row in rows])


class RequestTrailTestCase(ReviewTestCase):
    def test_the_request_page_shows_its_own_trail(self) -> None:
        req = self.queued(self.acme, "203.0.113.5")
        other = self.queued(self.acme, "203.0.113.6")
        self.client.force_login(self.rita)
        self.client.post(f"/review/requests/{req.id}/ask/", {"question": "Which selector?"})
        self.client.post(f"/review/requests/{other.id}/note/", {"text": "Unrelated note"})
        page = self.client.get(f"/review/requests/{req.id}/")
        trail = list(page.context["trail"])
        self.assertEqual([e.action for e in trail], ["request.ask_for_info", "message.question"])
        self.assertContains(page, "Which selector?")
        self.assertNotContains(page, "message.note")
        self.assertContains(page, f'href="/review/audit/?object_id={req.id}"')
