"""Feed snapshots built once per version by the worker and served from the artifact store:
a new version publishes new files, the web sends them with the version's ETag and answers
304s in one query, old files go after the grace period, the store is swapped by a setting, and
a revoked key stops reading the feeds within a second."""

from __future__ import annotations

import base64
import gzip
import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.db import connection
from django.http import FileResponse
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from portal.accounts.models import Actor, ApiKey, Scope
from portal.core import metrics
from portal.enforcement import artifacts
from portal.enforcement.feeds import not_modified_from_memory
from portal.enforcement.models import Exemption, FeedArtifact
from portal.ops.management.commands.runworker import lanes
from portal.workflows import exemptions as actions
from portal.wsgi import application
from tests.enforcement.base import EnforcementTestCase, PostgresTestCase

TXT = "/api/v1/feeds/exemptions.txt"
JSON = "/api/v1/feeds/exemptions.json"


def stored_in(directory: str) -> dict[str, Any]:
    return {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "feeds": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": directory},
        },
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@contextmanager
def counted_later() -> Iterator[None]:
    """Request counters written once a second, as in production, not at once as in tests."""
    metrics.flush()
    try:
        with override_settings(METRICS_FLUSH_SECONDS=60):
            yield
    finally:
        metrics.flush()


def files_under(directory: str) -> set[str]:
    return {str(p.relative_to(directory)) for p in Path(directory).rglob("*") if p.is_file()}


class ArtifactTestCase(EnforcementTestCase):
    def setUp(self) -> None:
        super().setUp()
        directory = tempfile.TemporaryDirectory(prefix="eep-feeds-")
        self.addCleanup(directory.cleanup)
        self.directory = directory.name
        storage = override_settings(STORAGES=stored_in(self.directory))
        storage.enable()
        self.addCleanup(storage.disable)
        self.approve("203.0.113.5", "203.0.113.8/29", "2001:db8:a::25")
        _, self.key = ApiKey.issue(name="firewall", scope=Scope.ENFORCEMENT, tenant=None, created_by=None)
        self.client_ = APIClient(HTTP_AUTHORIZATION=f"Bearer {self.key}")

    def suspend(self, cidr: str) -> None:
        actions.change(
            Exemption.objects.get(cidr=cidr),
            "exemption.suspended",
            actor=Actor(user=self.ada),
            reason="Listed",
        )

    def version(self) -> str:
        return artifacts.version_of(*artifacts.feed_state())


class PublishingTestCase(ArtifactTestCase):
    def test_it_builds_every_format_of_the_current_version_once(self) -> None:
        self.assertEqual(artifacts.build_current(), len(artifacts.FORMATS))
        self.assertEqual(artifacts.build_current(), 0)
        built = FeedArtifact.objects.filter(version=self.version())
        self.assertEqual(set(built.values_list("format", flat=True)), set(artifacts.FORMATS))

    def test_it_publishes_a_new_artifact_when_the_feed_moves(self) -> None:
        artifacts.build_current()
        first = artifacts.current("txt-all", self.version())
        self.suspend("203.0.113.5")
        artifacts.build_current()
        second = artifacts.current("txt-all", self.version())
        assert first is not None
        assert second is not None
        self.assertNotEqual(first.name, second.name)
        self.assertEqual(
            (Path(self.directory) / second.name).read_bytes(), b"203.0.113.8/29\n2001:db8:a::25\n"
        )

    def test_it_stores_an_unchanged_body_once_whatever_the_version(self) -> None:
        artifacts.build_current()
        self.suspend("2001:db8:a::25")
        artifacts.build_current()
        v4 = FeedArtifact.objects.filter(format="txt-4").values_list("name", flat=True)
        self.assertEqual(len(v4), 2)
        self.assertEqual(len(set(v4)), 1)

    def test_the_worker_builds_them_in_a_lane_of_their_own(self) -> None:
        lane = next(lane for lane in lanes() if lane.name == "feeds")
        self.assertEqual(lane.job(), len(artifacts.FORMATS))
        self.assertEqual(FeedArtifact.objects.filter(version=self.version()).count(), len(artifacts.FORMATS))

    def test_it_writes_the_same_bytes_as_the_database_would_stream(self) -> None:
        streamed = {url: self.client_.get(url).content for url in (TXT, JSON, JSON + "?family=6")}
        artifacts.build_current()
        for url, body in streamed.items():
            with self.subTest(url):
                response = self.client_.get(url)
                self.assertIsInstance(response, FileResponse)
                self.assertEqual(b"".join(response.streaming_content), body)  # type: ignore[attr-defined]
        self.assertEqual(json.loads(streamed[JSON])["count"], 3)


class ServingTestCase(ArtifactTestCase):
    def setUp(self) -> None:
        super().setUp()
        artifacts.build_current()

    def body(self, response: Any) -> bytes:
        return b"".join(response.streaming_content)

    def test_it_sends_the_file_with_the_versions_etag(self) -> None:
        response = self.client_.get(TXT)
        self.assertIsInstance(response, FileResponse)
        self.assertEqual(response["ETag"], f'"txt-all-{self.version()}"')
        self.assertEqual(response["Content-Type"], "text/plain; charset=utf-8")
        self.assertEqual(int(response["Content-Length"]), len(self.body(response)))

    def test_it_answers_304_to_its_etag_strong_or_weak_in_one_query(self) -> None:
        etag = self.client_.get(JSON)["ETag"]
        for header in (etag, f"W/{etag}", f'"stale", W/{etag}'):
            with self.subTest(header), counted_later(), self.assertNumQueries(1):
                again = self.client_.get(JSON, HTTP_IF_NONE_MATCH=header)
            self.assertEqual((again.status_code, again["ETag"]), (304, etag))

    def test_it_sends_the_gzipped_file_to_who_accepts_gzip(self) -> None:
        self.approve(*[f"2001:db8:a::{n:x}" for n in range(0x1000, 0x1000 + 80)])
        artifacts.build_current()
        plain = self.body(self.client_.get(TXT))
        zipped = self.client_.get(TXT, HTTP_ACCEPT_ENCODING="gzip")
        self.assertEqual(zipped["Content-Encoding"], "gzip")
        self.assertTrue(zipped["ETag"].endswith('-gz"'))
        self.assertEqual(gzip.decompress(self.body(zipped)), plain)
        again = self.client_.get(
            TXT, HTTP_ACCEPT_ENCODING="gzip", HTTP_IF_MODIFIED_SINCE=zipped["Last-Modified"]
        )
        self.assertEqual((again.status_code, again["ETag"]), (304, zipped["ETag"]))

    def test_it_streams_from_the_database_until_the_new_version_is_built(self) -> None:
        self.suspend("203.0.113.5")
        response = self.client_.get(TXT)
        self.assertNotIsInstance(response, FileResponse)
        self.assertEqual(response.content, b"203.0.113.8/29\n2001:db8:a::25\n")
        self.assertEqual(response["ETag"], f'"txt-all-{self.version()}"')

    @override_settings(FEED_STORAGE_REDIRECT=True)
    def test_it_can_redirect_to_the_storages_own_url(self) -> None:
        built = artifacts.current("txt-all", self.version())
        assert built is not None
        response = self.client_.get(TXT)
        self.assertEqual(response.status_code, 302)
        self.assertEqual(response["Location"], artifacts.feed_storage().url(built.name))

    def test_it_reads_with_basic_credentials_as_firewalls_send_them(self) -> None:
        basic = base64.b64encode(f"paloalto:{self.key}".encode()).decode()
        self.assertEqual(APIClient(HTTP_AUTHORIZATION=f"Basic {basic}").get(TXT).status_code, 200)


class PruningTestCase(ArtifactTestCase):
    @override_settings(FEED_ARTIFACT_GRACE_MINUTES=10)
    def test_it_deletes_replaced_artifacts_after_the_grace_period(self) -> None:
        artifacts.build_current()
        old = artifacts.current("txt-all", self.version())
        self.suspend("203.0.113.5")
        artifacts.build_current()
        new = artifacts.current("txt-all", self.version())
        assert old is not None
        assert new is not None

        self.assertEqual(artifacts.prune(), 0, "a download of the old version may still be under way")
        self.assertTrue((Path(self.directory) / old.name).exists())

        pruned = artifacts.prune(timezone.now() + timedelta(minutes=11))
        self.assertEqual(pruned, len(artifacts.FORMATS))
        self.assertFalse(FeedArtifact.objects.filter(pk=old.pk).exists())
        self.assertFalse((Path(self.directory) / old.name).exists())
        self.assertFalse((Path(self.directory) / old.gzip_name).exists())
        # The IPv6 list didn't change: its file is the new version's too, and stays.
        unchanged = artifacts.current("txt-6", self.version())
        assert unchanged is not None
        self.assertTrue((Path(self.directory) / unchanged.name).exists())
        remaining = FeedArtifact.objects.all()
        self.assertEqual(set(remaining.values_list("version", flat=True)), {self.version()})
        self.assertEqual(files_under(self.directory), {n for a in remaining for n in (a.name, a.gzip_name)})

    def test_it_keeps_the_newest_artifact_however_old(self) -> None:
        artifacts.build_current()
        self.assertEqual(artifacts.prune(timezone.now() + timedelta(days=30)), 0)
        self.assertEqual(self.client_.get(TXT)["Content-Type"], "text/plain; charset=utf-8")


class StorageBackendTestCase(ArtifactTestCase):
    def test_it_builds_into_and_serves_from_the_storage_the_setting_names(self) -> None:
        in_memory = stored_in(self.directory)
        in_memory["feeds"] = {"BACKEND": "django.core.files.storage.InMemoryStorage"}
        with override_settings(STORAGES=in_memory):
            artifacts.build_current()
            built = artifacts.current("txt-all", self.version())
            assert built is not None
            self.assertTrue(artifacts.feed_storage().exists(built.name))
            response = self.client_.get(TXT)
            self.assertEqual(
                b"".join(response.streaming_content),  # type: ignore[attr-defined]
                b"203.0.113.5\n203.0.113.8/29\n2001:db8:a::25\n",
            )
        self.assertEqual(files_under(self.directory), set(), "nothing went to the file system")

    def test_a_storage_at_another_path_is_one_setting_away(self) -> None:
        with tempfile.TemporaryDirectory() as other, override_settings(STORAGES=stored_in(other)):
            artifacts.build_current()
            self.assertEqual(len(files_under(other)), 2 * len(artifacts.FORMATS))


class KeyCacheTestCase(ArtifactTestCase):
    def test_a_revocation_reaches_the_key_cache_within_a_second(self) -> None:
        self.assertEqual(self.client_.get(TXT).status_code, 200)
        ApiKey.objects.filter(name="firewall").update(revoked_at=timezone.now())
        revoked_at = time.monotonic()
        while (status := self.client_.get(TXT).status_code) == 200:
            self.assertLess(time.monotonic() - revoked_at, 1.0, "still served after a second")
            time.sleep(0.05)
        self.assertEqual(status, 401)
        self.assertLess(time.monotonic() - revoked_at, 1.1)

    def test_a_verified_key_costs_no_query(self) -> None:
        etag = self.client_.get(TXT)["ETag"]
        with counted_later(), self.assertNumQueries(1):  # the feed's version, nothing for the key
            self.assertEqual(self.client_.get(TXT, HTTP_IF_NONE_MATCH=etag).status_code, 304)

    @override_settings(FEED_VERSION_CACHE_SECONDS=2)
    def test_with_the_version_remembered_a_304_costs_no_query_and_a_change_shows_soon(self) -> None:
        time.sleep(2.1)  # whatever an earlier test left remembered has lapsed
        etag = self.client_.get(TXT)["ETag"]
        with counted_later(), self.assertNumQueries(0):
            self.assertEqual(self.client_.get(TXT, HTTP_IF_NONE_MATCH=etag).status_code, 304)
        self.suspend("203.0.113.5")
        time.sleep(2.1)
        changed = self.client_.get(TXT, HTTP_IF_NONE_MATCH=etag)
        self.assertEqual(changed.status_code, 200)
        self.assertNotEqual(changed["ETag"], etag)

    @override_settings(FEED_VERSION_CACHE_SECONDS=60)
    def test_an_idle_poll_is_answered_before_django_from_memory(self) -> None:
        etag = self.client_.get(TXT)["ETag"]  # verifies the key and reads the version
        poll = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": TXT,
            "QUERY_STRING": "",
            "HTTP_AUTHORIZATION": f"Bearer {self.key}",
            "HTTP_IF_NONE_MATCH": f"W/{etag}",
        }
        answered: list[str] = []
        with counted_later(), self.assertNumQueries(0):
            body = application(poll, lambda status, headers: answered.append(status))
        self.assertEqual((answered, list(body)), (["304 Not Modified"], []))
        self.assertEqual(dict(not_modified_from_memory(poll) or [])["ETag"], etag)
        for other in (
            {"HTTP_AUTHORIZATION": "Bearer eep_" + "x" * 55},
            {"HTTP_IF_NONE_MATCH": '"older"'},
            {"QUERY_STRING": "family=4"},
            {"PATH_INFO": "/api/v1/feeds/changes"},
        ):
            with self.subTest(other):
                self.assertIsNone(not_modified_from_memory({**poll, **other}), "left to Django")

    @override_settings(API_KEY_CACHE_SECONDS=0)
    def test_it_can_be_switched_off(self) -> None:
        self.assertEqual(self.client_.get(TXT).status_code, 200)
        ApiKey.objects.filter(name="firewall").update(revoked_at=timezone.now())
        self.assertEqual(self.client_.get(TXT).status_code, 401)

    @override_settings(API_THROTTLE_FAILED_AUTH_RATE="3/min")
    def test_wrong_keys_are_still_throttled(self) -> None:
        guesser = APIClient(REMOTE_ADDR="192.0.2.99")
        statuses = []
        for n in range(5):
            guesser.credentials(HTTP_AUTHORIZATION=f"Bearer eep_{n:012}{'x' * 43}")
            statuses.append(guesser.get(TXT))
        self.assertEqual([r.status_code for r in statuses], [401, 401, 401, 429, 429])
        self.assertEqual(statuses[0]["WWW-Authenticate"], 'Bearer realm="api"')
        self.assertGreater(int(statuses[-1]["Retry-After"]), 0)

    def test_other_scopes_are_refused_as_before(self) -> None:
        reviewer = self.api(Scope.REVIEWER)
        for _ in range(2):  # never cached
            self.assertEqual(reviewer.get(TXT).status_code, 403)


class PostgresArtifactTestCase(PostgresTestCase):
    """COPY writes the snapshot on PostgreSQL; it must be the bytes the Python path writes."""

    def test_copy_writes_what_the_iterator_writes(self) -> None:
        self.approve("203.0.113.5", "203.0.113.8/29", "2001:db8:a::25")
        Exemption.objects.filter(cidr="203.0.113.5").update(expires_at=None, request=None)
        Exemption.objects.filter(cidr="203.0.113.8/29").update(
            expires_at=timezone.now().replace(microsecond=0) + timedelta(days=3)
        )
        self.acme.external_id = 'acme "quoted" \\ ünïcode'
        self.acme.save(update_fields=["external_id"])
        for name, (kind, family) in artifacts.FORMATS.items():
            with self.subTest(name), artifacts.snapshot() as (seq, _):
                copied = b"".join(artifacts.chunks(kind, family, seq))
                rows = Exemption.objects.active().order_by("family", "first")
                rows = rows.filter(family=family) if family else rows
                header = b'{"cursor":%d,"count":%d,"exemptions":[\n' % (seq, rows.count())
                iterated = b"".join(artifacts._iterated_lines(rows, kind))
                expected = header + iterated + b"]}" if kind == "json" else iterated
                self.assertEqual(copied, expected)
                if kind == "json":
                    self.assertEqual(json.loads(copied)["count"], rows.count())
        self.assertEqual(connection.vendor, "postgresql")
