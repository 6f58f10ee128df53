"""The review queue: filters, search, sorting, keyset pages, the htmx table, counts and bulk actions."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

from portal.review.models import Approval, DenialReason
from portal.unblock.models import Message, MessageKind, State, UnblockRequest
from tests.review.base import ReviewTestCase

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as TestResponse


def cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


class QueueTestCase(ReviewTestCase):
    def setUp(self) -> None:
        self.old = self.queued(
            self.acme,
            "203.0.113.5",
            state=State.IN_REVIEW,
            hours_ago=30,
            band="high",
            score=80,
            failing=("rdns", "dnsbl"),
            assignee=self.rita,
        )
        self.new = self.queued(
            self.acme, "203.0.113.6", hours_ago=1, band="low", score=5, domains=("mail.acme.example",)
        )
        self.globex_req = self.queued(
            self.globex,
            "198.51.100.72/29",
            state=State.NEEDS_INFO,
            hours_ago=5,
            band="medium",
            score=40,
            failing=("spf",),
            assignee=self.ada,
        )
        self.decided = self.queued(self.acme, "203.0.113.7", state=State.APPROVED, hours_ago=50)
        self.draft = self.make_request(self.acme, "203.0.113.8", state=State.DRAFT)
        self.client.force_login(self.rita)

    def get(self, **params: str) -> TestResponse:
        r = self.client.get("/review/", params)
        self.assertEqual(r.status_code, 200)
        return r

    def ids(self, **params: str) -> list[UnblockRequest]:
        return list(self.get(**params).context["page"].rows)

    def test_it_lists_open_requests_oldest_first(self) -> None:
        self.assertEqual(self.ids(), [self.old, self.globex_req, self.new])
        page = self.get()
        self.assertContains(page, "Globex GmbH")
        self.assertContains(page, "198.51.100.72/29")
        self.assertContains(page, "High risk (80)")
        self.assertContains(page, '<span class="badge outcome-fail">Reverse DNS</span>', html=True)
        self.assertContains(page, '<tr class="overdue">', count=1)

    def test_it_sorts_by_a_column_header_and_marks_the_sorted_column(self) -> None:
        page = self.get(state="in_review", after="stale")
        self.assertContains(
            page, '<th scope="col" aria-sort="descending"><a href="?state=in_review&amp;sort=newest"'
        )
        self.assertContains(page, '<a href="?state=in_review&amp;sort=risk" class="sort-link">Risk</a>')
        page = self.get(sort="risk")
        self.assertContains(
            page, '<th scope="col" aria-sort="descending"><a href="?sort=oldest" class="sort-link">Risk'
        )
        self.assertEqual(self.ids(sort="risk"), [self.old, self.globex_req, self.new])

    def test_it_marks_a_customer_reply_and_a_request_awaiting_its_second_approval(self) -> None:
        Message.objects.create(request=self.globex_req, author_label="x", kind=MessageKind.QUESTION, body="?")
        Message.objects.create(request=self.globex_req, author_label="x", kind=MessageKind.ANSWER, body="!")
        Approval.objects.create(request=self.old, approver=self.ada, cidrs=["203.0.113.5"])
        page = self.get()
        self.assertContains(page, "Customer replied", count=1)
        self.assertContains(page, "Awaits second approval", count=1)
        rows = {row.req.pk: row for row in page.context["rows"]}
        self.assertTrue(rows[self.globex_req.pk].customer_replied)
        self.assertTrue(rows[self.old.pk].awaits_second_approval)
        self.assertFalse(rows[self.new.pk].customer_replied or rows[self.new.pk].awaits_second_approval)

    def test_it_previews_the_bulk_denial_and_asks_to_confirm_it(self) -> None:
        page = self.get()
        self.assertContains(page, 'data-confirm="Deny the selected requests?"')
        self.assertContains(page, '<script id="canned-reasons" type="application/json">')

    def test_it_offers_a_skip_link_to_the_requests(self) -> None:
        self.assertContains(self.get(), '<a class="skip-link" href="#queue-table">Skip to the requests</a>')

    def test_it_filters_by_state_and_band(self) -> None:
        self.assertEqual(self.ids(state="needs_info"), [self.globex_req])
        self.assertEqual(self.ids(state="in_review"), [self.old])
        self.assertEqual(self.ids(band="low"), [self.new])
        self.assertEqual(self.ids(band="high", state="submitted"), [])

    def test_it_filters_overdue_requests_by_the_review_target(self) -> None:
        self.assertEqual(self.ids(overdue="on"), [self.old])
        with self.settings(REVIEW_SLA_HOURS=4):
            self.assertEqual(self.ids(overdue="on"), [self.old, self.globex_req])
            self.assertContains(self.get(), '<tr class="overdue">', count=2)

    def test_it_filters_by_assignee(self) -> None:
        self.assertEqual(self.ids(assignee="mine"), [self.old])
        self.assertEqual(self.ids(assignee="unassigned"), [self.new])
        self.assertEqual(self.ids(assignee=str(self.ada.pk)), [self.globex_req])

    def test_it_filters_by_failing_check_and_tenant(self) -> None:
        self.assertEqual(self.ids(failing="rdns"), [self.old])
        self.assertEqual(self.ids(failing="spf"), [self.globex_req])
        self.assertEqual(self.ids(failing="dmarc"), [])
        self.assertEqual(self.ids(tenant="globex-2"), [self.globex_req])

    def test_it_searches_tenants_addresses_and_domains(self) -> None:
        cases = {
            "globex": [self.globex_req],  # tenant name, any case
            "ACME-1": [self.old, self.new],  # external id
            "198.51.100.75": [self.globex_req],  # an address inside a requested block
            "198.51.100.64/27": [self.globex_req],  # a block around it
            "203.0.113.6": [self.new],
            "mail.acme": [self.new],  # sending domain
            "nothing-like-it": [],
        }
        for q, expected in cases.items():
            with self.subTest(q=q):
                self.assertEqual(self.ids(q=q), expected)

    def test_it_ignores_filters_that_are_not_choices(self) -> None:
        self.assertEqual(self.ids(state="approved"), [self.old, self.globex_req, self.new])

    def test_it_sorts(self) -> None:
        self.assertEqual(self.ids(sort="newest"), [self.new, self.globex_req, self.old])
        self.assertEqual(self.ids(sort="risk"), [self.old, self.globex_req, self.new])
        unscored = self.queued(self.acme, "203.0.113.9", hours_ago=2)
        self.assertEqual(self.ids(sort="risk")[-1], unscored)
        self.assertEqual(self.ids(sort="bogus"), self.ids(sort="oldest"))

    def test_it_counts_open_requests_per_state_and_band(self) -> None:
        context = self.get().context
        self.assertEqual(
            context["state_counts"],
            [
                ("submitted", "Submitted", 1),
                ("in_review", "In review", 1),
                ("needs_info", "Needs information", 1),
            ],
        )
        self.assertEqual(
            context["band_counts"], [("low", "Low", 1), ("medium", "Medium", 1), ("high", "High", 1)]
        )

    def test_it_answers_htmx_with_the_table_only(self) -> None:
        r = self.client.get(
            "/review/", {"state": "needs_info"}, headers={"HX-Request": "true", "HX-Target": "queue-table"}
        )
        self.assertEqual(r.status_code, 200)
        html = r.content.decode()
        self.assertTrue(html.lstrip().startswith('<div id="queue-table"'), html[:200])
        self.assertIn(self.globex_req.reference, html)
        self.assertNotIn(self.old.reference, html)
        self.assertNotIn("<html", html)
        self.assertNotIn("With the selected requests", html)
        # The table refreshes itself with the same filters.
        self.assertIn('hx-get="/review/?state=needs_info"', html)


class QueuePaginationTestCase(ReviewTestCase):
    def setUp(self) -> None:
        # 60 open requests, two per submission time, so that the keyset has ties to break.
        self.reqs = [
            self.queued(self.acme, "203.0.113.5", hours_ago=100 - i // 2, score=i % 3, band="low")
            for i in range(60)
        ]
        same_time = self.reqs[0].submitted_at
        UnblockRequest.objects.filter(pk__in=[r.pk for r in self.reqs[:4]]).update(submitted_at=same_time)
        self.client.force_login(self.rita)

    def pages(self, **params: str) -> tuple[list[UnblockRequest], list[UnblockRequest], str]:
        first = self.client.get("/review/", params).context["page"]
        self.assertEqual(len(first.rows), 50)
        self.assertTrue(first.next_cursor)
        second = self.client.get("/review/", {**params, "after": first.next_cursor}).context["page"]
        return first.rows, second.rows, second.next_cursor

    def test_page_two_continues_page_one_without_overlap_or_gap(self) -> None:
        for sort in ("oldest", "newest", "risk"):
            with self.subTest(sort=sort):
                one, two, more = self.pages(sort=sort)
                self.assertEqual(len(two), 10)
                self.assertEqual(more, "")
                self.assertEqual(len({r.pk for r in one} | {r.pk for r in two}), 60)
                if sort == "oldest":
                    expected = UnblockRequest.objects.order_by("submitted_at", "id")
                    self.assertEqual(one + two, list(expected))

    def test_the_next_link_keeps_the_filters(self) -> None:
        page = self.client.get("/review/", {"band": "low", "sort": "risk"})
        cursor_value = page.context["page"].next_cursor
        self.assertContains(page, f'href="?band=low&amp;sort=risk&amp;after={cursor_value}"')

    def test_a_garbage_cursor_shows_page_one(self) -> None:
        first = self.client.get("/review/").context["page"].rows
        garbage = [
            "garbage",
            "!!!",
            cursor([1, 2]),
            cursor(["2026-01-01T00:00:00+00:00", 5]),  # not a UUID
            cursor(["2026-01-01T00:00:00", "00000000-0000-0000-0000-000000000000"]),  # no time zone
            cursor({"a": 1}),  # type: ignore[arg-type]
            cursor([None, None]),
        ]
        for value in garbage:
            with self.subTest(cursor=value):
                r = self.client.get("/review/", {"after": value})
                self.assertEqual(r.status_code, 200)
                self.assertEqual(r.context["page"].rows, first)
        r = self.client.get(
            "/review/", {"sort": "risk", "after": cursor(["x", "2026-01-01T00:00:00+00:00", "y"])}
        )
        self.assertEqual(r.status_code, 200)


class BulkActionTestCase(ReviewTestCase):
    def setUp(self) -> None:
        self.a = self.queued(self.acme, "203.0.113.5")
        self.b = self.queued(self.globex, "198.51.100.70")
        self.done = self.queued(self.acme, "203.0.113.6", state=State.APPROVED)
        self.reason = DenialReason.objects.create(title="Use a relay", text="Send through port 587.")
        self.client.force_login(self.rita)

    def post(self, **data: Any) -> TestResponse:
        data.setdefault("next", "/review/?state=submitted")
        r = self.client.post("/review/bulk/", data)
        self.assertEqual(r.status_code, 302)
        return self.client.get(r["Location"])

    def test_it_claims_for_me(self) -> None:
        page = self.post(ids=[self.a.id, self.b.id], action="claim")
        self.assertContains(page, "2 request(s) updated.")
        self.assertEqual(set(UnblockRequest.objects.filter(assignee=self.rita)), {self.a, self.b})

    def test_it_assigns_to_someone(self) -> None:
        self.post(ids=[self.a.id, self.b.id], action="assign", assignee=self.ada.pk)
        self.assertEqual(set(UnblockRequest.objects.filter(assignee=self.ada)), {self.a, self.b})

    def test_it_asks_whom_to_assign_to(self) -> None:
        self.a.assignee = self.ada
        self.a.save()
        page = self.post(ids=[self.a.id], action="assign", assignee="")
        self.assertContains(page, "Choose whom to assign the selected requests to.")
        self.a.refresh_from_db()
        self.assertEqual(self.a.assignee, self.ada)

    def test_it_denies_with_one_reason_and_reports_what_it_skipped(self) -> None:
        page = self.post(
            ids=[self.a.id, self.b.id, self.done.id],
            action="deny",
            canned=self.reason.pk,
            text="See the docs.",
        )
        self.assertContains(page, "2 request(s) updated.")
        self.assertContains(
            page, f"Skipped {self.done.reference}: A request that is approved can&#x27;t be denied."
        )
        for req in (self.a, self.b):
            req.refresh_from_db()
            self.assertEqual(req.state, State.DENIED)
        self.done.refresh_from_db()
        self.assertEqual(self.done.state, State.APPROVED)
        self.assertEqual(
            set(
                UnblockRequest.objects.filter(state=State.DENIED).values_list(
                    "tenant__external_id", flat=True
                )
            ),
            {"acme-1", "globex-2"},
        )

    def test_it_refuses_to_deny_without_a_reason(self) -> None:
        page = self.post(ids=[self.a.id], action="deny")
        self.assertContains(page, "Pick or write a reason to deny: the customers need to know why.")
        self.a.refresh_from_db()
        self.assertEqual(self.a.state, State.SUBMITTED)

    def test_it_asks_for_a_selection(self) -> None:
        page = self.post(ids=["not-a-uuid"], action="claim")
        self.assertContains(page, "Select at least one request and an action.")

    def test_it_returns_to_the_filtered_queue_and_nowhere_else(self) -> None:
        r = self.client.post(
            "/review/bulk/", {"ids": [self.a.id], "action": "claim", "next": "/review/?band=low"}
        )
        self.assertRedirects(r, "/review/?band=low", fetch_redirect_response=False)
        for next_url in ("https://evil.example/", "//evil.example/review/", ""):
            with self.subTest(next=next_url):
                for data in ({"ids": [self.a.id], "action": "claim"}, {"action": "claim"}):
                    r = self.client.post("/review/bulk/", {**data, "next": next_url})
                    self.assertRedirects(r, "/review/", fetch_redirect_response=False)
