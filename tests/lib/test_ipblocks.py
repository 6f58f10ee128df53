from __future__ import annotations

import ipaddress

from django.test import SimpleTestCase

from portal.accounts.models import Allocation
from portal.lib.ipblocks import BlockError, bounds, parse_block
from tests.base import PortalTestCase


class ParseBlockTestCase(SimpleTestCase):
    def assertRefused(self, text: str, message: str) -> None:
        with self.assertRaises(BlockError) as caught:
            parse_block(text)
        self.assertEqual(str(caught.exception), message)

    def test_it_parses_addresses_and_blocks_of_both_families(self) -> None:
        self.assertEqual(parse_block("203.0.113.10"), ipaddress.ip_network("203.0.113.10/32"))
        self.assertEqual(parse_block(" 203.0.113.8/29\n"), ipaddress.ip_network("203.0.113.8/29"))
        self.assertEqual(parse_block("2001:db8:a::25"), ipaddress.ip_network("2001:db8:a::25/128"))
        self.assertEqual(parse_block("2001:0db8:000a:0000::0025"), ipaddress.ip_network("2001:db8:a::25/128"))
        self.assertEqual(parse_block("2001:db8:a:1::/64"), ipaddress.ip_network("2001:db8:a:1::/64"))

    def test_it_asks_for_something_when_given_nothing(self) -> None:
        self.assertRefused("  ", "Enter an IPv4 or IPv6 address, or a CIDR block such as 203.0.113.8/29.")

    def test_it_refuses_spaces_inside_an_entry(self) -> None:
        self.assertRefused(
            "203.0.113.1 203.0.113.2",
            "“203.0.113.1 203.0.113.2” contains spaces; enter one address or block per line.",
        )

    def test_it_refuses_what_is_not_an_address(self) -> None:
        for text in ("300.1.1.1", "abc", "203.0.113", "2001:db8:::1", "/24"):
            with self.subTest(text=text):
                self.assertRefused(
                    text,
                    f"“{text}” is not an IP address or CIDR block. Use a form such as 203.0.113.10, "
                    "203.0.113.8/29 or 2001:db8::25.",
                )

    def test_it_refuses_a_prefix_that_is_not_a_number(self) -> None:
        for text in ("203.0.113.1/x", "203.0.113.1/", "203.0.113.1/-1", "203.0.113.0/２９"):
            with self.subTest(text=text):
                self.assertRefused(
                    text,
                    f"“{text}” has an invalid prefix length; write it as a number, e.g. 203.0.113.1/29."
                    if text.startswith("203.0.113.1")
                    else f"“{text}” has an invalid prefix length; write it as a number, e.g. 203.0.113.0/29.",
                )

    def test_it_refuses_a_prefix_longer_than_the_family_allows(self) -> None:
        self.assertRefused(
            "203.0.113.1/33",
            "“203.0.113.1/33” has a prefix length over /32; IPv4 prefixes go from /0 to /32.",
        )
        self.assertRefused(
            "2001:db8::/129",
            "“2001:db8::/129” has a prefix length over /128; IPv6 prefixes go from /0 to /128.",
        )

    def test_it_names_the_block_when_host_bits_are_set(self) -> None:
        self.assertRefused(
            "203.0.113.9/29",
            "“203.0.113.9/29” has host bits set; the block containing it is 203.0.113.8/29. "
            "Enter 203.0.113.8/29, or the single address 203.0.113.9.",
        )
        self.assertRefused(
            "2001:db8:a::1/64",
            "“2001:db8:a::1/64” has host bits set; the block containing it is 2001:db8:a::/64. "
            "Enter 2001:db8:a::/64, or the single address 2001:db8:a::1.",
        )

    def test_it_refuses_an_ipv6_zone_index(self) -> None:
        self.assertRefused(
            "2001:db8:a::25%eth0",
            "“2001:db8:a::25%eth0” has a zone index (%eth0); enter the address without it, "
            "e.g. 2001:db8:a::25.",
        )


class BoundsTestCase(SimpleTestCase):
    def test_it_writes_first_and_last_address_as_fixed_width_hex(self) -> None:
        b = bounds(ipaddress.ip_network("203.0.113.8/29"))
        self.assertEqual((b.family, b.first, b.last), (4, "cb007108", "cb00710f"))
        b = bounds(ipaddress.ip_network("0.0.0.0/0"))
        self.assertEqual((b.first, b.last), ("00000000", "ffffffff"))
        b = bounds(ipaddress.ip_network("2001:db8::/32"))
        self.assertEqual(b.family, 6)
        self.assertEqual(b.first, "20010db8" + "0" * 24)
        self.assertEqual(b.last, "20010db8" + "f" * 24)

    def test_it_orders_ipv4_as_numbers_where_dotted_text_would_not(self) -> None:
        texts = [
            "10.0.0.10",
            "10.0.0.9",
            "9.255.255.255",
            "100.0.0.0",
            "10.0.0.100",
            "255.255.255.255",
            "0.0.0.0",  # noqa: S104 - an address to sort, not one to bind to
        ]
        self.assertNotEqual(sorted(texts), sorted(texts, key=lambda t: int(ipaddress.ip_address(t))))
        by_hex = sorted(texts, key=lambda t: bounds(ipaddress.ip_network(t)).first)
        self.assertEqual(by_hex, sorted(texts, key=lambda t: int(ipaddress.ip_address(t))))

    def test_it_orders_ipv6_as_numbers(self) -> None:
        texts = ["2001:db8::a", "2001:db8::9", "2001:db8::10", "::1", "ffff::", "2001:db8:0:1::", "fe80::1"]
        by_hex = sorted(texts, key=lambda t: bounds(ipaddress.ip_network(t)).first)
        self.assertEqual(by_hex, sorted(texts, key=lambda t: int(ipaddress.ip_address(t))))

    def test_it_decides_overlap_by_comparing_strings(self) -> None:
        blocks = [
            "203.0.113.0/26",
            "203.0.113.8/29",
            "203.0.113.16/29",
            "203.0.113.15",
            "203.0.113.64/26",
            "2001:db8:a::/48",
            "2001:db8:a:ffff::/64",
            "2001:db8:b::/48",
        ]
        for a in blocks:
            for b in blocks:
                na, nb = ipaddress.ip_network(a), ipaddress.ip_network(b)
                ba, bb = bounds(na), bounds(nb)
                by_strings = ba.family == bb.family and ba.first <= bb.last and ba.last >= bb.first
                expected = na.version == nb.version and na.overlaps(nb)
                with self.subTest(a=a, b=b):
                    self.assertEqual(by_strings, expected)


class BlockQueryTestCase(PortalTestCase):
    def cidrs(self, text: str, how: str) -> list[str]:
        queryset = Allocation.objects.all()
        network = parse_block(text)
        found = queryset.overlapping(network) if how == "overlapping" else queryset.covering(network)
        return sorted(a.cidr for a in found)

    def test_it_finds_overlapping_and_covering_blocks_in_the_database(self) -> None:
        self.assertEqual(self.cidrs("203.0.113.63", "covering"), ["203.0.113.0/26"])
        self.assertEqual(self.cidrs("203.0.113.64", "covering"), [])
        self.assertEqual(self.cidrs("203.0.113.0/24", "covering"), [])
        self.assertEqual(self.cidrs("203.0.113.0/24", "overlapping"), ["203.0.113.0/26"])
        self.assertEqual(self.cidrs("198.51.100.0/24", "overlapping"), ["198.51.100.64/27"])
        self.assertEqual(self.cidrs("2001:db8:a:ffff::/64", "covering"), ["2001:db8:a::/48"])
        self.assertEqual(self.cidrs("2001:db8:b::1", "overlapping"), [])
        self.assertEqual(self.cidrs("2001:db8::/32", "overlapping"), ["2001:db8:a::/48"])
        # The same 32 bits as an IPv4 address must not match an IPv6 block, or the reverse.
        self.assertEqual(self.cidrs("::cb00:7105", "overlapping"), [])
