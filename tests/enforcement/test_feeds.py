"""The pull feeds firewalls fetch: the active set as text and JSON, the change feed with its
cursor, conditional requests and compression, who may read them, and (on PostgreSQL) a reader
following the change feed while several writers commit at once."""

from __future__ import annotations

import gzip
import random
import threading
import time
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from portal.accounts.models import Actor, ApiKey, Scope
from portal.enforcement.models import Exemption, FeedChange
from portal.workflows import exemptions as actions
from portal.workflows.decisions import approve_in_transaction
from tests.base import make_request
from tests.enforcement.base import EnforcementTestCase, PostgresTestCase

TXT = "/api/v1/feeds/exemptions.txt"
JSON = "/api/v1/feeds/exemptions.json"
CHANGES = "/api/v1/feeds/changes"


class FeedFormatTestCase(EnforcementTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.exemptions = self.approve("203.0.113.5", "203.0.113.8/29", "2001:db8:a::25", "2001:db8:a:1::/64")
        self.client_ = self.api(Scope.ENFORCEMENT)

    def suspend(self, cidr: str) -> None:
        exemption = Exemption.objects.get(cidr=cidr)
        actions.change(exemption, "exemption.suspended", actor=Actor(user=self.ada), reason="Listed")

    def test_it_lists_the_active_set_one_entry_per_line(self) -> None:
        response = self.client_.get(TXT)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response["Content-Type"], "text/plain; charset=utf-8")
        self.assertEqual(
            response.content, b"203.0.113.5\n203.0.113.8/29\n2001:db8:a::25\n2001:db8:a:1::/64\n"
        )

    def test_it_lists_one_family_when_asked(self) -> None:
        self.assertEqual(self.client_.get(TXT + "?family=4").content, b"203.0.113.5\n203.0.113.8/29\n")
        self.assertEqual(self.client_.get(TXT + "?family=6").content, b"2001:db8:a::25\n2001:db8:a:1::/64\n")
        for bad in ("5", "ipv4", "-1"):
            with self.subTest(bad):
                response = self.client_.get(f"{TXT}?family={bad}")
                self.assertEqual(response.status_code, 400)
                self.assertIn("family=4", response.content.decode())

    def test_it_leaves_out_what_is_not_active(self) -> None:
        self.suspend("203.0.113.5")
        actions.change(
            Exemption.objects.get(cidr="2001:db8:a::25"),
            "exemption.revoked",
            actor=Actor(user=self.ada),
            reason="x",
        )
        self.assertEqual(self.client_.get(TXT).content, b"203.0.113.8/29\n2001:db8:a:1::/64\n")

    def test_it_describes_each_exemption_in_json_with_the_cursor(self) -> None:
        body = self.client_.get(JSON).json()
        self.assertEqual(body["cursor"], 4)
        self.assertEqual(body["count"], 4)
        first = body["exemptions"][0]
        exemption = Exemption.objects.get(cidr="203.0.113.5")
        assert exemption.expires_at is not None
        # ISO 8601 in UTC, as PostgreSQL writes it: the fraction of a second without trailing zeros.
        self.assertEqual(datetime.fromisoformat(first.pop("expires_at")), exemption.expires_at)
        self.assertEqual(
            first,
            {
                "id": str(exemption.id),
                "tenant": "acme-1",
                "block": "203.0.113.5",
                "family": 4,
                "ports": [25],
                "state": "active",
                "request": str(exemption.request_id),
            },
        )
        self.assertEqual(
            [e["block"] for e in self.client_.get(JSON + "?family=6").json()["exemptions"]],
            [
                "2001:db8:a::25",
                "2001:db8:a:1::/64",
            ],
        )

    def test_it_pages_through_the_changes_after_a_cursor(self) -> None:
        self.suspend("203.0.113.5")
        first = self.client_.get(CHANGES + "?after=0&limit=3").json()
        self.assertEqual([c["seq"] for c in first["changes"]], [1, 2, 3])
        self.assertEqual(
            (first["cursor"], first["latest"], first["has_more"], first["reset"]), (3, 5, True, False)
        )
        rest = self.client_.get(f"{CHANGES}?after={first['cursor']}&limit=3").json()
        self.assertEqual(
            [(c["seq"], c["op"], c["block"]) for c in rest["changes"]],
            [
                (4, "add", "2001:db8:a:1::/64"),
                (5, "remove", "203.0.113.5"),
            ],
        )
        self.assertEqual((rest["cursor"], rest["has_more"]), (5, False))
        change = rest["changes"][1]
        self.assertEqual(change["event"], "exemption.suspended")
        self.assertEqual(change["exemption"], str(Exemption.objects.get(cidr="203.0.113.5").id))
        self.assertEqual((change["family"], change["tenant"]), (4, "acme-1"))
        caught_up = self.client_.get(f"{CHANGES}?after=5").json()
        self.assertEqual((caught_up["changes"], caught_up["cursor"], caught_up["has_more"]), ([], 5, False))

    def test_it_tells_a_reader_ahead_of_the_feed_to_start_again(self) -> None:
        body = self.client_.get(CHANGES + "?after=99").json()
        self.assertTrue(body["reset"])
        self.assertEqual((body["changes"], body["latest"]), ([], 4))

    def test_it_refuses_a_cursor_or_limit_that_is_not_a_number_in_range(self) -> None:
        for query in ("", "?after=x", "?after=-1", "?after=0&limit=0", "?after=0&limit=5001"):
            with self.subTest(query):
                self.assertEqual(self.client_.get(CHANGES + query).status_code, 400)

    def test_it_reports_a_bad_limit_under_limit_and_a_bad_cursor_under_after(self) -> None:
        for query, errors in (
            ("?after=0&limit=0", {"limit"}),
            ("?after=0&limit=5001", {"limit"}),
            ("?after=-1", {"after"}),
            ("?after=x&limit=null", {"after", "limit"}),
        ):
            with self.subTest(query):
                response = self.client_.get(CHANGES + query)
                self.assertEqual(response.status_code, 400)
                self.assertEqual(response["Content-Type"], "application/json")
                self.assertEqual(set(response.json()), errors)

    def test_it_answers_304_to_the_etag_it_sent(self) -> None:
        for url in (TXT, TXT + "?family=6", JSON, CHANGES + "?after=1"):
            with self.subTest(url):
                full = self.client_.get(url)
                etag = full["ETag"]
                self.assertTrue(etag.startswith('"') and etag.endswith('"'), "a strong ETag")
                again = self.client_.get(url, HTTP_IF_NONE_MATCH=etag)
                self.assertEqual(again.status_code, 304)
                self.assertEqual(again.content, b"")
                self.assertEqual(again["ETag"], etag)
                self.assertEqual(again["Last-Modified"], full["Last-Modified"])

    def test_it_answers_304_to_the_weak_form_of_its_etag(self) -> None:
        # nginx weakens the ETag when it gzips the body; If-None-Match compares weakly.
        for url in (TXT, JSON, CHANGES + "?after=1"):
            with self.subTest(url):
                etag = self.client_.get(url)["ETag"]
                again = self.client_.get(url, HTTP_IF_NONE_MATCH=f"W/{etag}")
                self.assertEqual(again.status_code, 304)
                self.assertEqual(again["ETag"], etag)

    def test_it_answers_304_when_a_list_of_tags_holds_its_etag(self) -> None:
        etag = self.client_.get(TXT)["ETag"]
        for header in (f'"stale", W/{etag}', f'W/"stale",{etag}', "*"):
            with self.subTest(header):
                self.assertEqual(self.client_.get(TXT, HTTP_IF_NONE_MATCH=header).status_code, 304)
        self.assertEqual(self.client_.get(TXT, HTTP_IF_NONE_MATCH='W/"stale", "older"').status_code, 200)

    def test_it_answers_304_with_the_etag_a_200_would_carry_when_gzip_is_accepted(self) -> None:
        # The text feed here is small, so it is sent uncompressed even to a client that accepts gzip.
        full = self.client_.get(TXT, HTTP_ACCEPT_ENCODING="gzip")
        self.assertNotIn("Content-Encoding", full)
        again = self.client_.get(TXT, HTTP_ACCEPT_ENCODING="gzip", HTTP_IF_NONE_MATCH=full["ETag"])
        self.assertEqual(again.status_code, 304)
        self.assertEqual(again["ETag"], full["ETag"])
        by_date = self.client_.get(
            TXT, HTTP_ACCEPT_ENCODING="gzip", HTTP_IF_MODIFIED_SINCE=full["Last-Modified"]
        )
        self.assertEqual(by_date.status_code, 304)
        self.assertEqual(by_date["ETag"], full["ETag"])

    def test_it_answers_304_to_if_modified_since(self) -> None:
        full = self.client_.get(TXT)
        again = self.client_.get(TXT, HTTP_IF_MODIFIED_SINCE=full["Last-Modified"])
        self.assertEqual(again.status_code, 304)
        self.assertEqual(again["ETag"], full["ETag"])
        older = self.client_.get(TXT, HTTP_IF_MODIFIED_SINCE="Mon, 01 Jan 2024 00:00:00 GMT")
        self.assertEqual(older.status_code, 200)

    def test_it_sends_the_new_list_once_it_changed(self) -> None:
        before = self.client_.get(TXT)
        self.suspend("203.0.113.5")
        after = self.client_.get(TXT, HTTP_IF_NONE_MATCH=before["ETag"])
        self.assertEqual(after.status_code, 200)
        self.assertNotEqual(after["ETag"], before["ETag"])
        self.assertNotIn(b"203.0.113.5\n", after.content)

    def test_it_compresses_a_large_list_under_its_own_strong_etag(self) -> None:
        approve = [f"2001:db8:a::{n:x}" for n in range(0x1000, 0x1000 + 80)]
        self.approve(*approve)
        plain = self.client_.get(TXT)
        self.assertGreater(len(plain.content), 1024)
        self.assertNotIn("Content-Encoding", plain)

        zipped = self.client_.get(TXT, HTTP_ACCEPT_ENCODING="gzip, deflate")
        self.assertEqual(zipped["Content-Encoding"], "gzip")
        self.assertEqual(gzip.decompress(zipped.content), plain.content)
        self.assertLess(len(zipped.content), len(plain.content))
        self.assertNotEqual(zipped["ETag"], plain["ETag"])
        self.assertFalse(zipped["ETag"].startswith("W/"))
        self.assertIn("Accept-Encoding", zipped["Vary"])

        again = self.client_.get(TXT, HTTP_ACCEPT_ENCODING="gzip", HTTP_IF_NONE_MATCH=zipped["ETag"])
        self.assertEqual((again.status_code, again["ETag"]), (304, zipped["ETag"]))
        by_date = self.client_.get(
            TXT, HTTP_ACCEPT_ENCODING="gzip", HTTP_IF_MODIFIED_SINCE=zipped["Last-Modified"]
        )
        self.assertEqual((by_date.status_code, by_date["ETag"]), (304, zipped["ETag"]))

    def test_it_needs_an_enforcement_key(self) -> None:
        for url in (TXT, JSON, CHANGES + "?after=0"):
            with self.subTest(url):
                self.assertEqual(APIClient().get(url).status_code, 401)
                for scope in (Scope.CUSTOMER, Scope.REVIEWER, Scope.PROVISIONING):
                    key_holder = self.api(scope, tenant=self.acme if scope == Scope.CUSTOMER else None)
                    self.assertEqual(key_holder.get(url).status_code, 403, scope)
                revoked = self.api(Scope.ENFORCEMENT)
                ApiKey.objects.filter(scope=Scope.ENFORCEMENT).update(revoked_at=timezone.now())
                self.assertEqual(revoked.get(url).status_code, 401)


class FeedSyncUnderConcurrentWritesTestCase(PostgresTestCase):
    """Writers approve, suspend and reinstate in overlapping transactions that commit in random
    order and hold their locks a little; a reader follows /changes the whole time. Replaying what
    it read must give exactly the final active set."""

    WRITERS = 4
    ROUNDS = 8

    def write(self, writer: int, own: list[Exemption], errors: list[BaseException]) -> None:
        rng = random.Random(writer)
        try:
            for round_ in range(self.ROUNDS):
                with transaction.atomic():
                    req = make_request(self.acme, f"203.0.113.{100 + writer * self.ROUNDS + round_}")
                    approve_in_transaction(
                        req, actor=Actor(user=self.ada), cidrs=None, expires_at=None, note=""
                    )
                    time.sleep(rng.uniform(0, 0.02))  # commit later than others that started after
                event = "exemption.suspended" if round_ % 4 < 2 else "exemption.reinstated"
                actions.change(own[round_ % len(own)], event, actor=Actor(user=self.ada), reason="load")
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    def test_a_reader_following_the_changes_ends_with_exactly_the_active_set(self) -> None:
        owned = [
            self.approve(f"203.0.113.{10 + w * 2}", f"203.0.113.{11 + w * 2}") for w in range(self.WRITERS)
        ]
        _, key = ApiKey.issue(name="firewall", scope=Scope.ENFORCEMENT, tenant=None, created_by=None)
        reader = APIClient()
        reader.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")

        errors: list[BaseException] = []
        writers = [
            threading.Thread(target=self.write, args=(w, owned[w], errors)) for w in range(self.WRITERS)
        ]
        for thread in writers:
            thread.start()

        cursor, seen, active = 0, [], dict[str, str]()

        def read_page() -> bool:
            nonlocal cursor
            page: dict[str, Any] = reader.get(f"{CHANGES}?after={cursor}&limit=7").json()
            for change in page["changes"]:
                seen.append(change["seq"])
                if change["op"] == "add":
                    active[change["exemption"]] = change["block"]
                else:
                    active.pop(change["exemption"], None)
            cursor = page["cursor"]
            return bool(page["has_more"])

        while any(t.is_alive() for t in writers):
            read_page()
        for thread in writers:
            thread.join()
        while read_page():
            pass

        self.assertEqual(errors, [])
        latest = FeedChange.objects.count()
        self.assertEqual(latest, self.WRITERS * (2 + self.ROUNDS * 2))
        self.assertEqual(seen, list(range(1, latest + 1)), "every change read once, in order, none skipped")
        feed = reader.get(TXT).content.decode().splitlines()
        self.assertEqual(sorted(active.values()), sorted(feed))
        self.assertEqual(sorted(feed), sorted(Exemption.objects.active().values_list("cidr", flat=True)))
