"""The queue's free-text search on PostgreSQL: the same answers as everywhere, and a plan that reads
the pg_trgm GIN index on sending domains rather than every request."""

from __future__ import annotations

import unittest

from django.db import connection

from portal.unblock.models import State, UnblockRequest
from tests.review.base import ReviewTestCase


@unittest.skipUnless(connection.vendor == "postgresql", "needs PostgreSQL (set DATABASE_URL=postgres://…)")
class SearchIndexTestCase(ReviewTestCase):
    def setUp(self) -> None:
        self.mail = self.queued(self.acme, "203.0.113.6", domains=("Mail.Acme.example",))
        self.other = self.queued(self.globex, "198.51.100.72/29", state=State.IN_REVIEW)

    def search(self, text: str) -> set[UnblockRequest]:
        return set(UnblockRequest.objects.search(text))

    def test_it_finds_by_domain_tenant_name_and_external_id_in_any_case(self) -> None:
        self.assertEqual(self.search("mail.ACME"), {self.mail})
        self.assertEqual(self.search("GLOBEX"), {self.other})
        self.assertEqual(self.search("acme-1"), {self.mail})
        self.assertEqual(self.search("no-such-thing"), set())

    def test_it_reads_the_trigram_index_for_a_domain(self) -> None:
        with connection.cursor() as cursor:
            # A handful of rows: without this the planner rightly prefers a scan.
            cursor.execute("SET LOCAL enable_seqscan = off")
            plan = UnblockRequest.objects.search("mail.acme").explain()

        self.assertIn("request_domains_trgm", plan)
