"""The queue and the request page run the same few queries however many rows they show."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portal.accounts.models import Actor
from portal.audit.log import record
from portal.enforcement.models import Exemption
from portal.unblock.models import MessageKind, RequestedBlock, State, UnblockRequest
from portal.workflows import decisions
from tests.review.base import ReviewTestCase
from tests.review.test_request_page import complaint, listed, vetted

# A page that needs more than this is doing per-row work.
CEILING = 25


def add_block(req: UnblockRequest, cidr: str) -> None:
    block = RequestedBlock(request=req)
    block.set_network(ipaddress.ip_network(cidr))
    block.save()


class QueryCountTestCase(ReviewTestCase):
    def count(self, call: Callable[[], object]) -> int:
        with CaptureQueriesContext(connection) as queries:
            call()
        return len(queries)

    def assertConstant(self, call: Callable[[], object], grow: Callable[[], object]) -> None:
        """`call` runs as many queries after `grow` added rows as before, and not many."""
        call()  # warm per-process caches (content types, sessions)
        small = self.count(call)
        self.assertLessEqual(small, CEILING)
        grow()
        with self.assertNumQueries(small):
            call()

    def fill_queue(self, n: int) -> None:
        for i in range(n):
            self.queued(
                self.acme if i % 2 else self.globex,
                "203.0.113.5" if i % 2 else "198.51.100.70",
                "203.0.113.6" if i % 2 else "198.51.100.71",
                hours_ago=i,
                band="high" if i % 3 else "low",
                score=i,
                failing=("rdns", "spf") if i % 2 else (),
                assignee=self.ada if i % 4 else None,
            )

    def test_the_queue_page(self) -> None:
        self.fill_queue(5)
        self.client.force_login(self.rita)

        def get() -> None:
            r = self.client.get("/review/", {"sort": "risk"})
            self.assertEqual(r.status_code, 200)

        self.assertConstant(get, lambda: self.fill_queue(55))
        self.assertEqual(len(self.client.get("/review/").context["page"].rows), 50)

    def test_the_htmx_queue_table(self) -> None:
        self.fill_queue(5)
        self.client.force_login(self.rita)

        def get() -> None:
            self.client.get("/review/", headers={"HX-Request": "true", "HX-Target": "queue-table"})

        self.assertConstant(get, lambda: self.fill_queue(55))

    def test_the_request_page(self) -> None:
        req = self.queued(self.acme, "203.0.113.5", band="high", score=70)
        vetted(req)
        self.client.force_login(self.ada)

        def get() -> None:
            r = self.client.get(f"/review/requests/{req.id}/")
            self.assertEqual(r.status_code, 200)

        def grow() -> None:
            for i in range(6, 14):
                add_block(req, f"203.0.113.{i}")
                complaint(f"203.0.113.{i}")
                listed(f"203.0.113.{i}", "zen.spamhaus.org")
            add_block(req, "203.0.113.16/29")
            for i in range(10):
                req.messages.create(author_label="x", kind=MessageKind.NOTE, body=f"note {i}", internal=True)
                record(actor=Actor(user=self.rita), action="test.event", obj=req, reason=str(i))
                earlier = self.queued(self.acme, "203.0.113.30", state=State.DENIED)
                exemption = Exemption(tenant=self.acme, request=earlier, expires_at=timezone.now())
                exemption.set_network(ipaddress.ip_network(f"203.0.113.{40 + i}"))
                exemption.save()
            decisions.approve(
                req=req,
                user=self.rita,
                cidrs=None,
                expires_at=timezone.now() + timedelta(days=1),
                note="first",
            )

        self.assertConstant(get, grow)
        self.assertEqual(UnblockRequest.objects.get(pk=req.pk).state, State.IN_REVIEW)

    def test_the_api_queue(self) -> None:
        self.fill_queue(5)
        client = self.reviewer_api(self.rita)

        def get() -> None:
            r = client.get("/api/v1/review/requests", {"page_size": 100})
            self.assertEqual(r.status_code, 200)

        self.assertConstant(get, lambda: self.fill_queue(55))
        self.assertEqual(len(client.get("/api/v1/review/requests", {"page_size": 100}).json()["results"]), 60)

    def test_the_api_request(self) -> None:
        req = self.queued(self.acme, "203.0.113.5")
        vetted(req)
        client = self.reviewer_api(self.rita)

        def get() -> None:
            self.assertEqual(client.get(f"/api/v1/review/requests/{req.id}").status_code, 200)

        def grow() -> None:
            for i in range(6, 14):
                add_block(req, f"203.0.113.{i}")
                req.messages.create(author_label="x", kind=MessageKind.NOTE, body=f"note {i}", internal=True)
            decisions.approve(
                req=req,
                user=self.ada,
                cidrs=None,
                expires_at=timezone.now() + timedelta(days=1),
                note="first",
            )

        self.assertConstant(get, grow)
