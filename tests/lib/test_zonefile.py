from __future__ import annotations

import ipaddress
import shutil
import tempfile
from pathlib import Path

from django.test import SimpleTestCase

from portal.lib.zonefile import (
    DEFAULT_LISTING,
    Dataset,
    Listing,
    ResolvedZone,
    ZoneParser,
    render_txt,
    resolve,
)
from tests.support import rbldnsd


def ip(text: str) -> int:
    return int(ipaddress.ip_address(text))


def runs(zone: ResolvedZone) -> list[tuple[str, str, tuple[str, ...]]]:
    return [
        (str(ipaddress.ip_address(run.first)), str(ipaddress.ip_address(run.last)), run.values)
        for run in zone.intervals()
    ]


def zone_of(dataset: Dataset, text: str) -> tuple[ResolvedZone, ZoneParser]:
    parser = ZoneParser(dataset)
    return resolve(parser, text.splitlines()), parser


LISTED = ("127.0.0.2",)


class Ip4setTestCase(SimpleTestCase):
    def test_it_reads_every_address_form(self) -> None:
        zone, parser = zone_of(
            Dataset.IP4SET,
            "192.0.2.1\n198.51.100.0/25\n203.0.113.4-203.0.113.9\n10.1.16-31\n10.2.0.5-9\n10.3.0\n10.4\n",
        )
        self.assertEqual(parser.errors, [])
        self.assertEqual(
            runs(zone),
            [
                ("10.1.16.0", "10.1.31.255", LISTED),
                ("10.2.0.5", "10.2.0.9", LISTED),
                ("10.3.0.0", "10.3.0.255", LISTED),
                ("10.4.0.0", "10.4.255.255", LISTED),
                ("192.0.2.1", "192.0.2.1", LISTED),
                ("198.51.100.0", "198.51.100.127", LISTED),
                ("203.0.113.4", "203.0.113.9", LISTED),
            ],
        )

    def test_it_yields_entries_as_rbldnsd_buckets_them(self) -> None:
        entries = list(ZoneParser(Dataset.IP4SET).parse(["10.0.0.250-10.0.2.3"]))
        self.assertEqual(
            [(e.version, e.first, e.last, e.level, e.excluded) for e in entries],
            [
                (4, ip("10.0.0.250"), ip("10.0.0.255"), 32, False),
                (4, ip("10.0.2.0"), ip("10.0.2.3"), 32, False),
                (4, ip("10.0.1.0"), ip("10.0.1.255"), 24, False),
            ],
        )
        self.assertEqual(entries[0].value, "127.0.0.2")

    def test_it_applies_default_and_per_entry_values(self) -> None:
        zone, parser = zone_of(
            Dataset.IP4SET,
            "192.0.2.1\n"
            ":127.0.0.4:Listed, see https://example.test/$\n"
            "192.0.2.2\n192.0.2.3 :3\n192.0.2.4 :10:\n192.0.2.5 open relay at $\n"
            "192.0.2.6 :127.0.0.9:nine # not a comment\n192.0.2.7 # just a comment\n",
        )
        self.assertEqual(parser.errors, [])
        listing = Listing("127.0.0.4", "Listed, see https://example.test/$")
        self.assertEqual(zone.lookup(4, ip("192.0.2.1")), [DEFAULT_LISTING])
        self.assertEqual(zone.lookup(4, ip("192.0.2.2")), [listing])
        self.assertEqual(zone.lookup(4, ip("192.0.2.3")), [Listing("127.0.0.3", listing.txt)])
        self.assertEqual(zone.lookup(4, ip("192.0.2.4")), [Listing("127.0.0.10", None)])
        self.assertEqual(zone.lookup(4, ip("192.0.2.5")), [Listing("127.0.0.4", "open relay at $")])
        self.assertEqual(zone.lookup(4, ip("192.0.2.6")), [Listing("127.0.0.9", "nine # not a comment")])
        self.assertEqual(zone.lookup(4, ip("192.0.2.7")), [listing])
        self.assertEqual(zone.lookup(4, ip("192.0.2.8")), [])

    def test_it_skips_comments_and_reads_metadata(self) -> None:
        _, parser = zone_of(
            Dataset.IP4SET,
            "# a comment\n; another\n\n   \n$TTL 300\n"
            "$SOA 0 ns.zone.test. hostmaster.zone.test. 0 600 300 86400 300\n"
            "$NS 0 ns.zone.test.\n#$NS 0 ignored.test.\n$1 see the site\n192.0.2.1\n",
        )
        self.assertEqual(parser.errors, [])
        self.assertEqual(parser.ttl, 300)
        self.assertEqual(parser.soa, "0 ns.zone.test. hostmaster.zone.test. 0 600 300 86400 300")
        self.assertEqual(parser.ns, "0 ns.zone.test.")
        self.assertEqual(parser.variables, {"1": "see the site"})

    def test_it_reports_bad_lines_with_numbers_and_keeps_the_rest(self) -> None:
        zone, parser = zone_of(
            Dataset.IP4SET,
            "192.0.2.1\nbogus\n1.2.3.4.5\n10\n192.0.2.8/24\n192.0.2.9-192.0.2\n192.0.2.9-3\n"
            "300.1.1.1\n$WHAT 1\n192.0.2.2 :0.0.0.0:\n192.0.2.3\n",
        )
        self.assertEqual(
            [(error.line, error.message) for error in parser.errors],
            [
                (2, "invalid address"),
                (3, "invalid address"),
                (4, "a bare number is not an address; write 10/8"),
                (5, "invalid range (non-zero host part)"),
                (6, "both ends of a range need the same number of octets"),
                (7, "range ends before it starts"),
                (8, "invalid address"),
                (9, "unrecognised special entry"),
                (10, "A value 0.0.0.0 is not allowed"),
            ],
        )
        self.assertEqual(str(parser.errors[0]), "line 2: invalid address: 'bogus'")
        self.assertEqual(runs(zone), [("192.0.2.1", "192.0.2.1", LISTED), ("192.0.2.3", "192.0.2.3", LISTED)])

    def test_it_keeps_a_bounded_number_of_errors_but_counts_them_all(self) -> None:
        parser = ZoneParser(Dataset.IP4SET, max_errors=3)
        self.assertEqual(list(parser.parse(["x"] * 10)), [])
        self.assertEqual((len(parser.errors), parser.error_count), (3, 10))

    def test_an_exclusion_inside_a_range_or_block_wins(self) -> None:
        zone, _ = zone_of(
            Dataset.IP4SET, "192.0.2.0/24\n!192.0.2.5\n198.51.100.1-198.51.100.9\n!198.51.100.3\n"
        )
        self.assertEqual(
            runs(zone),
            [
                ("192.0.2.0", "192.0.2.4", LISTED),
                ("192.0.2.6", "192.0.2.255", LISTED),
                ("198.51.100.1", "198.51.100.2", LISTED),
                ("198.51.100.4", "198.51.100.9", LISTED),
            ],
        )

    def test_the_most_specific_bucket_wins_as_in_rbldnsd(self) -> None:
        # An exclusion of a /24 does not remove a single address listed inside it, and a /25
        # (stored as /32 entries) beats an exclusion of its /24.
        zone, _ = zone_of(
            Dataset.IP4SET,
            "10.0.0.0/16\n!10.0.1.0/24\n10.0.1.7\n!10.0.2.0/24\n10.0.2.0/25\n",
        )
        self.assertEqual(
            runs(zone),
            [
                ("10.0.0.0", "10.0.0.255", LISTED),
                ("10.0.1.7", "10.0.1.7", LISTED),
                ("10.0.2.0", "10.0.2.127", LISTED),
                ("10.0.3.0", "10.0.255.255", LISTED),
            ],
        )

    def test_overlapping_entries_answer_every_value_and_duplicates_once(self) -> None:
        zone, _ = zone_of(Dataset.IP4SET, "192.0.2.1-192.0.2.5\n192.0.2.3-192.0.2.9\n192.0.2.4 :3:\n")
        self.assertEqual(
            runs(zone),
            [
                ("192.0.2.1", "192.0.2.3", LISTED),
                ("192.0.2.4", "192.0.2.4", ("127.0.0.2", "127.0.0.3")),
                ("192.0.2.5", "192.0.2.9", LISTED),
            ],
        )

    def test_the_result_is_sorted_whatever_the_file_order(self) -> None:
        zone, _ = zone_of(Dataset.IP4SET, "203.0.113.9\n192.0.2.1\n203.0.113.8\n")
        self.assertEqual(
            runs(zone), [("192.0.2.1", "192.0.2.1", LISTED), ("203.0.113.8", "203.0.113.9", LISTED)]
        )


class TrivialSetsTestCase(SimpleTestCase):
    def test_ip4tset_takes_single_addresses_and_one_value(self) -> None:
        zone, parser = zone_of(
            Dataset.IP4TSET, "192.0.2.1\n:127.0.0.3:first $\n192.0.2.0/24\n:4:\n192.0.2.2\n"
        )
        self.assertEqual(
            [(e.line, e.message) for e in parser.errors],
            [(3, "ip4tset takes single addresses only (a.b.c.d)")],
        )
        # The dataset's first value line applies to every entry, even those before it.
        self.assertEqual(zone.lookup(4, ip("192.0.2.1")), [Listing("127.0.0.3", "first $")])
        self.assertEqual(runs(zone), [("192.0.2.1", "192.0.2.2", ("127.0.0.3",))])

    def test_ip6tset_lists_64s_and_excludes_single_addresses(self) -> None:
        zone, parser = zone_of(
            Dataset.IP6TSET, "2001:db8:1:2\n!2001:db8:1:2::5\n2001:db8::/64\n!2001:db8:1:2:0:0:0:9\n"
        )
        self.assertEqual([(e.line, e.message) for e in parser.errors], [(3, "invalid address")])
        self.assertEqual(
            runs(zone),
            [
                ("2001:db8:1:2::", "2001:db8:1:2::4", LISTED),
                ("2001:db8:1:2::6", "2001:db8:1:2::8", LISTED),
                ("2001:db8:1:2::a", "2001:db8:1:2:ffff:ffff:ffff:ffff", LISTED),
            ],
        )


class Ip6trieTestCase(SimpleTestCase):
    def test_it_reads_prefixes_in_every_notation_and_the_longest_prefix_wins(self) -> None:
        zone, parser = zone_of(
            Dataset.IP6TRIE,
            ":127.0.1.2: Listed, see http://example.test/lookup?$\n"
            "2001:21ab:c000/36\n"
            "2001:21ab:def7:4242 :127.0.1.3: This one smells funny\n"
            "2605:6001:42::/52\n"
            "::1  # localhost\n"
            "!2605:6001:42::bead\n"
            "2605:6001:42::/52 :5:\n"
            "2001:db8::1/64\n",
        )
        self.assertEqual(
            [(e.line, e.message) for e in parser.errors],
            [(7, "duplicate of line 4, which is used"), (8, "invalid range (non-zero host part)")],
        )
        default = Listing("127.0.1.2", "Listed, see http://example.test/lookup?$")
        self.assertEqual(zone.lookup(6, ip("::1")), [default])
        self.assertEqual(zone.lookup(6, ip("2001:21ab:c123::1")), [default])
        self.assertEqual(zone.lookup(6, ip("2001:21ab:d000::1")), [])
        self.assertEqual(
            zone.lookup(6, ip("2001:21ab:def7:4242::25")), [Listing("127.0.1.3", "This one smells funny")]
        )
        self.assertEqual(zone.lookup(6, ip("2605:6001:42::bead")), [])
        self.assertEqual(zone.lookup(6, ip("2605:6001:42::beae")), [default])


class RenderTxtTestCase(SimpleTestCase):
    def test_it_substitutes_the_address_dollars_and_variables(self) -> None:
        self.assertEqual(
            render_txt("$1/$ costs $$5", "192.0.2.1", {"1": "https://example.test"}),
            "https://example.test/192.0.2.1 costs $5",
        )


class AgreesWithRbldnsdTestCase(SimpleTestCase):
    """The parser answers as Debian's rbldnsd does, for every address of a test range."""

    IP4SET = (
        "$TTL 300\n"
        ":127.0.0.2:Listed, see https://example.test/$\n"
        "10.0.0.0/26\n!10.0.0.5\n10.0.0.40-10.0.0.70\n10.0.0.64 :3:\n10.0.0.66 :4\n"
        "10.0.0.100-110 custom $ text\n!10.0.0.105\n10.0.0.128/25 :127.0.0.10:pbl $\n"
        "!10.0.0.130-10.0.0.139\n10.0.0.131\n10.0.0.200-10.0.1.20\n!10.0.1.0/24\n10.0.1.10\n"
        "bogus line\n"
    )
    IP6TRIE = (
        ":127.0.1.2:v6 $\n"
        "2001:db8:0:1::/120\n!2001:db8:0:1::7\n2001:db8:0:1::40/122 :127.0.1.3:\n2001:db8:0:1::80/128\n"
    )

    def serve(self, text: str, dataset: str) -> tuple[rbldnsd.Server, ResolvedZone]:
        directory = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, directory)
        path = directory / "zone.txt"
        path.write_text(text)
        parser = ZoneParser(Dataset(dataset))
        zone = resolve(parser, text.splitlines())
        context = rbldnsd.serving(path, dataset)
        server = context.__enter__()
        self.addCleanup(context.__exit__, None, None, None)
        return server, zone

    def assertAgrees(self, server: rbldnsd.Server, zone: ResolvedZone, addresses: list[str]) -> None:
        for address in addresses:
            parsed = ipaddress.ip_address(address)
            expected = zone.lookup(parsed.version, int(parsed))
            if parsed.version == 4:
                name = ".".join(reversed(address.split(".")))
            else:
                name = ".".join(reversed(parsed.exploded.replace(":", "")))
            with self.subTest(address=address):
                self.assertEqual(server.query(name, "A"), sorted({listing.value for listing in expected}))
                self.assertEqual(
                    server.query(name, "TXT"),
                    # Identical records are sent once.
                    sorted({render_txt(listing.txt, address) for listing in expected if listing.txt}),
                )

    def test_ip4set(self) -> None:
        server, zone = self.serve(self.IP4SET, "ip4set")
        self.assertAgrees(server, zone, [f"10.0.{n >> 8}.{n & 255}" for n in range(300)])

    def test_ip6trie(self) -> None:
        server, zone = self.serve(self.IP6TRIE, "ip6trie")
        self.assertAgrees(
            server, zone, [str(ipaddress.ip_address(ip("2001:db8:0:1::") + n)) for n in range(260)]
        )
