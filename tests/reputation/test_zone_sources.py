"""One zone file, two sources: Debian's rbldnsd serves it over DNS to the DNS monitor, and the
importer reads it from disk. Both must leave the same listing statuses and the same events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from portal.lib.intervals import intersect
from portal.lib.zone_postgres import intersect_on_postgres
from portal.lib.zonefile import Dataset, ZoneParser, resolve
from portal.reputation.models import ListingSource, ListingStatus, ReputationEvent
from portal.workflows.periodic import monitor_dnsbl
from portal.workflows.zone_import import _allocations
from tests.base import PortalTestCase
from tests.support.rbldnsd import serving

ZONES = Path(__file__).resolve().parent / "zones"
V1, V2 = ZONES / "zen-v1.ip4set", ZONES / "zen-v2.ip4set"
ZONE = "zen.test"

SBL = ("127.0.0.2",)
EXPECTED_V1 = {
    **{f"203.0.113.{n}": SBL for n in (0, 1, 2, 3, 4, 6, 7)},  # the /29 less the exclusion
    "203.0.113.20": ("127.0.0.10", "127.0.0.3"),  # two entries, two A records
    "203.0.113.21": ("127.0.0.3",),
    "203.0.113.22": ("127.0.0.3",),
    **{f"198.51.100.{n}": ("127.0.0.4",) for n in (64, 65, 66, 67)},
    "198.51.100.70": SBL,
}
EXPECTED_V2 = {
    "203.0.113.3": SBL,
    "203.0.113.20": ("127.0.0.10", "127.0.0.3"),
    "203.0.113.21": ("127.0.0.4",),
    "203.0.113.22": ("127.0.0.3",),
    **{f"198.51.100.{n}": ("127.0.0.4",) for n in (64, 65, 66, 67)},
    "198.51.100.70": SBL,
    "203.0.113.40": SBL,
}

# Every allocated address in one slice, and again at once: the test compares results, not pacing.
WHOLE_PASS = override_settings(
    DNSBL_ZONE=ZONE,
    DNSBL_EXTRA_ZONES=[],
    SPAMHAUS_DQS_KEY="",
    DNSBL_ZONE_DIR="",
    DNSBL_ZONE_FILES=[],
    DNS_NAMESERVERS=["127.0.0.1"],
    DNS_TIMEOUT=1,
    DNSBL_QUERIES_PER_SECOND=10_000,
    DNSBL_MONITOR_SLICE_SECONDS=3600,
    DNSBL_MONITOR_MINUTES=60,
    DNSBL_MIN_RECHECK_MINUTES=["0"],
)


def listed() -> dict[str, tuple[str, ...]]:
    rows = ListingStatus.objects.filter(zone=ZONE, listed=True).values_list("address", "codes")
    return {address: tuple(codes) for address, codes in rows}


def events() -> list[tuple[Any, ...]]:
    return sorted(
        (e.cidr, e.kind, e.code, e.meaning, e.abuse, e.summary, e.evidence, e.tenant_id, e.zone)
        for e in ReputationEvent.objects.all()
    )


@WHOLE_PASS
class ZoneSourcesTestCase(PortalTestCase):
    def monitor_over_dns(self, path: Path) -> None:
        with serving(path, dataset="ip4set", zone=ZONE) as server, override_settings(DNS_PORT=server.port):
            result = monitor_dnsbl()
        self.assertEqual(result.errors, 0)
        self.assertEqual(result.checked, 96)  # Acme's /26 and Globex's /27; the released /28 is not

    def import_from_disk(self, path: Path) -> None:
        call_command("import_dnsbl_zone", "--zone", ZONE, str(path), stdout=_Null(), stderr=_Null())

    def test_it_sees_the_same_listings_over_dns_and_from_the_file(self) -> None:
        for method in ("sweep", "postgresql") if connection.vendor == "postgresql" else ("sweep",):
            with self.subTest(method), override_settings(DNSBL_ZONE_INTERSECTION=method):
                self.check_both_sources_agree()
                ListingStatus.objects.all().delete()
                ReputationEvent.objects.all().delete()

    def check_both_sources_agree(self) -> None:
        self.monitor_over_dns(V1)
        self.assertEqual(listed(), EXPECTED_V1)
        self.monitor_over_dns(V2)
        self.assertEqual(listed(), EXPECTED_V2)
        over_dns = events()

        ListingStatus.objects.all().delete()
        ReputationEvent.objects.all().delete()
        self.import_from_disk(V1)
        self.assertEqual(listed(), EXPECTED_V1)
        self.import_from_disk(V2)
        self.assertEqual(listed(), EXPECTED_V2)
        from_file = events()

        self.assertEqual(from_file, over_dns)
        # v1: 14 listed; v2: seven delisted, one changed (.21), one new (.40)
        self.assertEqual(len(from_file), 14 + 7 + 1 + 1)
        listed_20 = next(e for e in from_file if e[0] == "203.0.113.20")
        self.assertEqual(listed_20[2], "127.0.0.10,127.0.0.3")
        self.assertEqual(listed_20[5], "Listed on CSS, PBL (zen.test)")
        self.assertEqual(listed_20[7], self.acme.pk)

    def test_both_sources_say_how_much_they_saw(self) -> None:
        self.monitor_over_dns(V1)
        self.import_from_disk(V1)
        dns, file = ListingSource.objects.get(kind="dns"), ListingSource.objects.get(kind="zone_file")
        self.assertEqual((dns.name, dns.addresses_checked, dns.addresses_allocated), ("dns:zen.test", 96, 96))
        self.assertIsNotNone(dns.last_pass_finished_at)
        self.assertEqual(dns.errors_last_pass, 0)
        self.assertEqual(file.name, "file:zen.test")
        self.assertEqual(file.file_serial, "2026120201")
        self.assertEqual(file.errors_last_pass, 1)  # "this is not an entry"
        # 96 IPv4 addresses, and Acme's IPv6 /48 counted in /64s
        self.assertEqual(file.addresses_allocated, 96 + 2**16)

    def test_the_intersection_is_the_same_in_the_database_and_in_memory(self) -> None:
        if connection.vendor != "postgresql":
            self.skipTest(
                "the PostgreSQL path needs DATABASE_URL=postgres://… (the SQLite run covers the sweep)"
            )
        with V1.open() as lines:
            zone = resolve(ZoneParser(Dataset.IP4SET), lines)
        swept = list(intersect(zone.intervals(), _allocations()))
        with connection.cursor() as cursor:
            in_database = intersect_on_postgres(
                cursor, "SELECT cidr FROM accounts_allocation WHERE released_at IS NULL", zone.intervals()
            )
        self.assertEqual(in_database, swept)
        self.assertEqual(sum(hit.size for hit in swept), len(EXPECTED_V1))


class _Null:
    def write(self, text: str) -> None:
        pass

    def flush(self) -> None:
        pass
