"""The read-replica router: which database a read goes to, and which requests may read stale rows."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.db import transaction
from django.test import RequestFactory, TransactionTestCase, override_settings

from portal.accounts.models import ApiKey, Tenant
from portal.core.replica import PIN_COOKIE, ReplicaRouter, reads_may_lag, replica_reads
from portal.enforcement.models import Exemption
from portal.unblock.models import UnblockRequest

with_replica = override_settings(DATABASE_REPLICA_URL="postgres://replica.invalid/portal")


@with_replica
class ReplicaRouterTestCase(TransactionTestCase):
    router = ReplicaRouter()

    def test_it_reads_feed_and_queue_rows_from_the_replica_on_those_pages(self) -> None:
        with replica_reads():
            for model in (Exemption, UnblockRequest, Tenant):
                self.assertEqual(self.router.db_for_read(model), "replica", model)

    def test_it_reads_everything_from_the_primary_elsewhere(self) -> None:
        self.assertIsNone(self.router.db_for_read(Exemption))

    def test_it_always_reads_who_is_asking_from_the_primary(self) -> None:
        with replica_reads():
            for model in (Session, User, ApiKey):
                self.assertIsNone(self.router.db_for_read(model), model)

    def test_it_reads_from_the_primary_inside_a_transaction(self) -> None:
        with replica_reads(), transaction.atomic():
            self.assertIsNone(self.router.db_for_read(Exemption))

    def test_it_writes_and_migrates_on_the_primary_only(self) -> None:
        with replica_reads():
            self.assertIsNone(self.router.db_for_write(Exemption))
        self.assertFalse(self.router.allow_migrate("replica", "enforcement"))
        self.assertTrue(self.router.allow_migrate("default", "enforcement"))

    @override_settings(DATABASE_REPLICA_URL="")
    def test_it_reads_the_primary_when_no_replica_is_configured(self) -> None:
        with replica_reads():
            self.assertIsNone(self.router.db_for_read(Exemption))


@with_replica
class ReplicaReadsTestCase(TransactionTestCase):
    factory = RequestFactory()

    def test_feed_and_queue_reads_may_lag(self) -> None:
        for path in ("/api/v1/feeds/exemptions.txt", "/api/v1/feeds/changes", "/review/"):
            self.assertTrue(reads_may_lag(self.factory.get(path)), path)
        self.assertTrue(reads_may_lag(self.factory.head("/review/")))

    def test_other_pages_and_every_write_read_the_primary(self) -> None:
        self.assertFalse(reads_may_lag(self.factory.get("/requests/")))
        self.assertFalse(reads_may_lag(self.factory.post("/review/")))

    def test_a_browser_that_just_changed_something_reads_the_primary(self) -> None:
        request = self.factory.get("/review/")
        request.COOKIES[PIN_COOKIE] = "1"
        self.assertFalse(reads_may_lag(request))

    def test_a_change_pins_the_browser_to_the_primary_for_a_while(self) -> None:
        response = self.client.post("/review/bulk/", {})
        self.assertEqual(response.cookies[PIN_COOKIE]["max-age"], 10)
        self.assertNotIn(PIN_COOKIE, self.client.get("/healthz").cookies)
