from __future__ import annotations

import ipaddress
import unittest

from django.test import SimpleTestCase

from portal.agent.nft import (
    Elements,
    Names,
    NftError,
    empty_sets,
    ensure_table,
    replace_table,
    run_nft,
    update_sets,
)
from tests.agent import netns


def blocks(*cidrs: str) -> Elements:
    return Elements.of(ipaddress.ip_network(c) for c in cidrs)


NAMES = Names(table="port25", set4="ok4", set6="ok6")
COUNTING_SETS = [
    f"add set inet port25 smtp_{verdict}{family} {{ type ipv{family}_addr; size 65536; "
    "flags dynamic,timeout; timeout 3600s; counter; }"
    for verdict, family in (("blocked", 4), ("blocked", 6), ("accepted", 4), ("accepted", 6))
]
SYN = "tcp flags & (fin | syn | rst | ack) == syn"


def rules(chain: str) -> list[str]:
    """Count new connections (without a verdict, so that a full counting set changes nothing),
    then accept the exempt and drop the rest."""
    return [
        f"add rule inet port25 {chain} {line}"
        for line in (
            f"tcp dport 25 {SYN} ip saddr @ok4 add @smtp_accepted4 {{ ip saddr counter }}",
            f"tcp dport 25 {SYN} ip6 saddr @ok6 add @smtp_accepted6 {{ ip6 saddr counter }}",
            "tcp dport 25 ip saddr @ok4 accept",
            "tcp dport 25 ip6 saddr @ok6 accept",
            f"tcp dport 25 {SYN} meta nfproto ipv4 add @smtp_blocked4 {{ ip saddr counter }}",
            f"tcp dport 25 {SYN} meta nfproto ipv6 add @smtp_blocked6 {{ ip6 saddr counter }}",
            "tcp dport 25 counter drop",
        )
    ]


class TransactionTextTestCase(SimpleTestCase):
    def test_it_writes_a_table_that_drops_port_25_unless_the_source_is_exempt(self) -> None:
        text = replace_table(
            NAMES, blocks("203.0.113.5", "198.51.100.64/28", "2001:db8:a::/64", "2001:db8:b::25")
        )
        self.assertEqual(
            text.splitlines(),
            [
                "add table inet port25",
                "delete table inet port25",
                "add table inet port25",
                "add set inet port25 ok4 { type ipv4_addr; flags interval; }",
                "add set inet port25 ok6 { type ipv6_addr; flags interval; }",
                *COUNTING_SETS,
                "add chain inet port25 forward { type filter hook forward priority filter; policy accept; }",
                *rules("forward"),
                "add chain inet port25 output { type filter hook output priority filter; policy accept; }",
                *rules("output"),
                "add element inet port25 ok4 { 198.51.100.64/28, 203.0.113.5 }",
                "add element inet port25 ok6 { 2001:db8:a::/64, 2001:db8:b::25 }",
            ],
        )

    def test_it_merges_blocks_that_overlap_or_touch_since_an_interval_set_refuses_overlaps(self) -> None:
        elements = blocks(
            "203.0.113.8/29", "203.0.113.9", "203.0.113.16/29", "2001:db8:a::/64", "2001:db8:a::25"
        )
        self.assertEqual(
            elements.v4, {ipaddress.IPv4Network("203.0.113.8/29"), ipaddress.IPv4Network("203.0.113.16/29")}
        )
        self.assertEqual(elements.v6, {ipaddress.IPv6Network("2001:db8:a::/64")})
        self.assertEqual(
            blocks("203.0.113.0/25", "203.0.113.128/25").v4, {ipaddress.IPv4Network("203.0.113.0/24")}
        )

    def test_it_changes_only_what_changed_deleting_before_adding(self) -> None:
        before = blocks("203.0.113.4", "203.0.113.5", "2001:db8:a::/64")
        after = blocks("203.0.113.4", "203.0.113.7", "2001:db8:b::/64")
        self.assertEqual(
            update_sets(NAMES, before, after).splitlines(),
            [
                # .4 and .5 were one /31; .5 leaves, so the /31 goes and .4 comes back alone.
                "delete element inet port25 ok4 { 203.0.113.4/31 }",
                "delete element inet port25 ok6 { 2001:db8:a::/64 }",
                "add element inet port25 ok4 { 203.0.113.4, 203.0.113.7 }",
                "add element inet port25 ok6 { 2001:db8:b::/64 }",
            ],
        )

    def test_it_writes_nothing_when_nothing_changed(self) -> None:
        self.assertEqual(update_sets(NAMES, blocks("203.0.113.5"), blocks("203.0.113.5")), "")

    def test_it_splits_a_large_set_into_statements_of_a_thousand(self) -> None:
        many = Elements.of(ipaddress.ip_network(f"10.{i // 256}.{i % 256}.1") for i in range(2500))
        statements = [
            line for line in replace_table(NAMES, many).splitlines() if line.startswith("add element")
        ]
        self.assertEqual([line.count(",") + 1 for line in statements], [1000, 1000, 500])

    def test_it_keeps_the_elements_when_it_only_makes_sure_the_table_exists(self) -> None:
        text = ensure_table(NAMES)
        self.assertNotIn("delete table", text)
        self.assertNotIn("delete element", text)
        self.assertNotIn("flush set", text)
        self.assertIn("flush chain inet port25 forward", text)
        # The counting sets are made anew, after the rules that use them are flushed.
        self.assertLess(
            text.index("flush chain inet port25 output"), text.index("delete set inet port25 smtp_")
        )
        self.assertTrue(empty_sets(NAMES).endswith("flush set inet port25 ok4\nflush set inet port25 ok6\n"))

    def test_it_refuses_names_nft_would_read_as_syntax(self) -> None:
        for name in ("port 25", "x;flush ruleset", "", "9lives", "a" * 65):
            with self.subTest(name=name), self.assertRaises(ValueError):
                Names(table=name)
        with self.assertRaises(ValueError):
            Names(set4="same", set6="same")
        with self.assertRaises(ValueError):
            Names(set4="smtp_blocked4")


class KernelTestCase(unittest.TestCase):
    """The same transactions, taken by a real kernel in a throwaway network namespace."""

    lab: netns.Lab
    namespace: str

    @classmethod
    def setUpClass(cls) -> None:
        if reason := netns.missing_capability():
            raise netns.skip_or_fail(reason)
        cls.lab = netns.Lab()
        cls.addClassCleanup(cls.lab.delete_all)
        cls.namespace = cls.lab.add("nft")

    def nft(self, text: str) -> None:
        netns.inside(self.namespace, lambda: run_nft(text))

    def kernel(self) -> tuple[set[str], set[str]]:
        return (
            netns.set_elements(self.namespace, NAMES.table, NAMES.set4),
            netns.set_elements(self.namespace, NAMES.table, NAMES.set6),
        )

    def test_the_kernel_takes_each_transaction_and_refuses_a_bad_one_whole(self) -> None:
        first = blocks("203.0.113.4", "203.0.113.5", "198.51.100.64/28", "2001:db8:a::/64")
        self.nft(replace_table(NAMES, first))
        self.assertEqual(self.kernel(), ({"203.0.113.4/31", "198.51.100.64/28"}, {"2001:db8:a::/64"}))

        second = blocks("203.0.113.5", "198.51.100.64/28", "198.51.100.80/28", "2001:db8:b::25")
        self.nft(update_sets(NAMES, first, second))
        self.assertEqual(self.kernel(), ({"203.0.113.5", "198.51.100.64/27"}, {"2001:db8:b::25"}))

        self.nft(ensure_table(NAMES))
        self.assertEqual(self.kernel(), ({"203.0.113.5", "198.51.100.64/27"}, {"2001:db8:b::25"}))

        # A batch computed from a wrong idea of the set fails as a whole and changes nothing.
        with self.assertRaises(NftError):
            self.nft(update_sets(NAMES, blocks("192.0.2.1"), blocks("192.0.2.2")))
        self.assertEqual(self.kernel(), ({"203.0.113.5", "198.51.100.64/27"}, {"2001:db8:b::25"}))

        self.nft(empty_sets(NAMES))
        self.assertEqual(self.kernel(), (set(), set()))
