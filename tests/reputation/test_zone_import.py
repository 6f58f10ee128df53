"""Importing DNSBL zone files: clear errors that change nothing, IPv6 runs, the suspension policy,
the periodic job that watches a directory, and /healthz when a feed stops."""

from __future__ import annotations

import io
import os
import tempfile
import time
from pathlib import Path

from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from portal.enforcement.models import ExemptionState
from portal.reputation.health import source_health
from portal.reputation.models import Kind, ListingSource, ListingStatus, ReputationEvent
from portal.workflows.zone_import import watch_zone_files
from tests.enforcement.base import EnforcementTestCase

ZONE = "zen.test"


class ZoneImportTestCase(EnforcementTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.folder = Path(self.enterContext(tempfile.TemporaryDirectory()))

    def zone_file(self, text: str, name: str = "zone.ip4set") -> Path:
        path = self.folder / name
        path.write_text(text)
        return path

    def run_import(self, path: Path, *options: str) -> str:
        out = io.StringIO()
        call_command(
            "import_dnsbl_zone", "--zone", ZONE, *options, str(path), stdout=out, stderr=io.StringIO()
        )
        return out.getvalue()

    def assert_refused(self, path: Path, message: str, *options: str) -> None:
        with self.assertRaisesMessage(CommandError, message):
            self.run_import(path, *options)
        self.assertFalse(ReputationEvent.objects.exists())

    def test_it_refuses_what_it_cannot_read_and_changes_nothing(self) -> None:
        self.run_import(self.zone_file("203.0.113.9\n"))
        self.assertEqual(ReputationEvent.objects.count(), 1)
        ReputationEvent.objects.all().delete()
        self.assert_refused(self.folder / "missing.ip4set", "no such file. Nothing was changed.")
        self.assert_refused(
            self.zone_file("junk\n1.2.3.999\n"), "no line could be read as ip4set; first error: line 1"
        )
        self.assert_refused(self.zone_file("# nothing\n"), "the file lists nothing: refusing to delist")
        self.assert_refused(self.zone_file("203.0.113.9\n"), "unknown format 'ip5set'", "--format", "ip5set")
        self.assertTrue(ListingStatus.objects.get(address="203.0.113.9").listed)  # still listed

        self.run_import(self.zone_file("# the zone really is empty\n"), "--allow-empty")
        self.assertEqual(ReputationEvent.objects.get().kind, Kind.DELISTED)

    def test_a_failed_import_shows_on_the_source(self) -> None:
        with self.assertRaises(CommandError):
            self.run_import(self.folder / "missing.ip4set")
        (health,) = source_health()
        self.assertTrue(health.failing)
        self.assertIn("no such file", health.problems[0])

    def test_a_listing_in_the_file_suspends_an_exemption(self) -> None:
        listed, clean = self.approve("203.0.113.5", "203.0.113.6")
        summary = self.run_import(self.zone_file(":127.0.0.2:SBL\n203.0.113.5\n198.51.100.70 :10:PBL\n"))
        self.assertIn("2 allocated IPv4 addresses listed, 2 changes, 2 events (sweep", summary)
        listed.refresh_from_db()
        clean.refresh_from_db()
        self.assertEqual((listed.state, clean.state), (ExemptionState.SUSPENDED, ExemptionState.ACTIVE))
        self.assertIn("SBL", listed.state_reason)
        pbl = ReputationEvent.objects.get(cidr="198.51.100.70")
        self.assertEqual(
            (pbl.tenant, pbl.abuse, pbl.summary), (self.globex, False, "Listed on PBL (zen.test)")
        )

    def test_it_keeps_ipv6_runs_as_blocks_and_records_only_changes(self) -> None:
        v6 = "2001:db8:a:1::/64\n!2001:db8:a:1::5\n2001:db8:ffff::/48\n"
        path = self.zone_file(v6, "zone.ip6trie")
        self.run_import(path)
        self.run_import(path)  # the same file again: nothing new
        statuses = set(ListingStatus.objects.filter(listed=True).values_list("address", flat=True))
        self.assertIn("2001:db8:a:1::/126", statuses)  # ::0-::3
        self.assertIn("2001:db8:a:1::4", statuses)
        self.assertIn("2001:db8:a:1:8000::/65", statuses)
        self.assertNotIn("2001:db8:a:1::5", statuses)
        self.assertFalse(any(a.startswith("2001:db8:ffff") for a in statuses))  # not ours
        first_pass = ReputationEvent.objects.count()
        self.assertEqual(first_pass, len(statuses))

        self.run_import(self.zone_file("2001:db8:a:1::/64\n", "zone.ip6trie"))  # the exclusion lifted
        new = ReputationEvent.objects.exclude(
            pk__in=ReputationEvent.objects.order_by("id")[:first_pass].values("id")
        )
        self.assertEqual(
            [(e.cidr, e.kind, e.tenant) for e in new], [("2001:db8:a:1::5", Kind.LISTED, self.acme)]
        )

        self.run_import(self.zone_file("2001:db8:a:1::4\n2001:db8:a:1::5\n", "zone.ip6trie"))
        listed_now = set(ListingStatus.objects.filter(listed=True).values_list("address", flat=True))
        self.assertEqual(listed_now, {"2001:db8:a:1::4", "2001:db8:a:1::5"})
        self.assertEqual(
            ReputationEvent.objects.filter(kind=Kind.DELISTED).count(), len(statuses) - 1
        )  # every block but ::4 (and ::5, which was listed last time) delisted

    def test_the_periodic_job_imports_files_when_they_change(self) -> None:
        path = self.zone_file("203.0.113.9\n", f"{ZONE}.ip4set")
        self.zone_file("not a zone", ".zen.test.ip4set.tmp")  # rsync's temporary file
        with override_settings(DNSBL_ZONE_DIR=str(self.folder), DNSBL_ZONE_FILES=[]):
            self.assertEqual(watch_zone_files(), 1)
            self.assertEqual(watch_zone_files(), 0)  # unchanged
            path.write_text("203.0.113.10\n")
            later = time.time() + 5
            os.utime(path, (later, later))
            self.assertEqual(watch_zone_files(), 1)
            self.assertEqual(
                sorted(ListingStatus.objects.values_list("address", "listed")),
                [("203.0.113.10", True), ("203.0.113.9", False)],
            )
            source = ListingSource.objects.get()
            self.assertEqual((source.kind, source.path), ("zone_file", str(path)))
            self.assertTrue(source_health()[0].ok)

            assert source.file_mtime is not None
            ListingSource.objects.update(file_mtime=source.file_mtime.replace(year=2020))
            path.unlink()
            self.assertEqual(watch_zone_files(), 0)
        (health,) = source_health()
        self.assertTrue(health.stale)
        self.assertIn("is the feed still syncing?", " ".join(health.problems))

    def test_a_configured_file_that_is_missing_makes_the_source_fail(self) -> None:
        missing = self.folder / "gone.ip4set"
        with override_settings(DNSBL_ZONE_DIR="", DNSBL_ZONE_FILES=[f"{ZONE}:ip4set:{missing}"]):
            self.assertEqual(watch_zone_files(), 0)
        (health,) = source_health()
        self.assertTrue(health.failing)
        self.assertEqual(health.problems, [f"{missing}: no such file"])
