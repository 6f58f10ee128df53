from __future__ import annotations

import ipaddress
import random
import unittest

from django.db import connection
from django.test import SimpleTestCase, TransactionTestCase

from portal.lib.intervals import Hit, Transition, block, diff, intersect
from portal.lib.zone_postgres import cidr_blocks, intersect_on_postgres
from portal.lib.zonefile import Dataset, ZoneInterval, ZoneParser, resolve


def ip(text: str) -> int:
    return int(ipaddress.ip_address(text))


def hit(first: str, last: str, *values: str) -> Hit:
    return Hit(ipaddress.ip_address(first).version, ip(first), ip(last), values or ("127.0.0.2",))


def zone(text: str, dataset: Dataset = Dataset.IP4SET) -> list[ZoneInterval]:
    return list(resolve(ZoneParser(dataset), text.splitlines()).intervals())


def random_case(seed: int) -> tuple[str, list[str]]:
    """A zone of single addresses, ranges, CIDRs and exclusions, and allocations, in 10.0.0.0/16."""
    rng = random.Random(seed)
    lines = [":127.0.0.2:Listed $"]
    for _ in range(400):
        base = ip("10.0.0.0") + rng.randrange(1 << 16)
        kind = rng.random()
        address = ipaddress.IPv4Address(base)
        if kind < 0.5:
            lines.append(f"{address}{rng.choice(['', ' :3:', ' :4'])}")
        elif kind < 0.7:
            end = ipaddress.IPv4Address(min(base + rng.randrange(1, 600), ip("10.0.255.255")))
            lines.append(f"{address}-{end}")
        elif kind < 0.85:
            prefix = rng.randrange(22, 31)
            lines.append(f"{ipaddress.ip_network(f'{address}/{prefix}', strict=False)}")
        else:
            lines.append(f"!{address}")
    allocations = set()
    for _ in range(120):
        address = ipaddress.IPv4Address(ip("10.0.0.0") + rng.randrange(1 << 16))
        allocations.add(str(ipaddress.ip_network(f"{address}/{rng.randrange(24, 30)}", strict=False)))
    return "\n".join(lines), sorted(allocations, key=lambda cidr: ipaddress.ip_network(cidr).network_address)


def brute_force(text: str, allocations: list[str]) -> list[Hit]:
    resolved = resolve(ZoneParser(Dataset.IP4SET), text.splitlines())
    listed: list[Hit] = []
    for address in sorted({a for cidr in allocations for a in map(int, ipaddress.ip_network(cidr))}):
        values = tuple(sorted({listing.value for listing in resolved.lookup(4, address)}))
        if values:
            if listed and listed[-1].last + 1 == address and listed[-1].values == values:
                listed[-1] = listed[-1]._replace(last=address)
            else:
                listed.append(Hit(4, address, address, values))
    return listed


class IntersectTestCase(SimpleTestCase):
    def test_it_keeps_the_listed_part_of_each_allocation(self) -> None:
        listed = zone("192.0.2.0/25\n!192.0.2.5\n198.51.100.10-198.51.100.20 :3:\n203.0.113.7\n")
        allocations = [
            block("192.0.2.0/29"),
            block("192.0.2.120/29"),
            block("198.51.100.16/28"),
            block("203.0.113.8/29"),
        ]
        self.assertEqual(
            list(intersect(listed, allocations)),
            [
                hit("192.0.2.0", "192.0.2.4"),
                hit("192.0.2.6", "192.0.2.7"),
                hit("192.0.2.120", "192.0.2.127"),
                hit("198.51.100.16", "198.51.100.20", "127.0.0.3"),
            ],
        )

    def test_adjacent_and_overlapping_allocations_count_each_address_once(self) -> None:
        listed = zone("192.0.2.0/24\n")
        allocations = [block("192.0.2.0/26"), block("192.0.2.0/27"), block("192.0.2.64/26")]
        self.assertEqual(list(intersect(listed, allocations)), [hit("192.0.2.0", "192.0.2.127")])
        self.assertEqual(next(intersect(listed, allocations)).size, 128)

    def test_it_handles_both_families_in_one_pass(self) -> None:
        listed = zone("192.0.2.1\n") + zone("2001:db8:1::/48\n!2001:db8:1::25\n", Dataset.IP6TRIE)
        allocations = [block("192.0.2.0/24"), block("2001:db8:1::/64")]
        self.assertEqual(
            list(intersect(listed, allocations)),
            [
                hit("192.0.2.1", "192.0.2.1"),
                hit("2001:db8:1::", "2001:db8:1::24"),
                hit("2001:db8:1::26", "2001:db8:1::ffff:ffff:ffff:ffff"),
            ],
        )

    def test_it_refuses_unsorted_allocations(self) -> None:
        with self.assertRaises(ValueError):
            list(intersect(zone("192.0.2.1\n"), [block("192.0.2.0/24"), block("10.0.0.0/8")]))

    def test_it_agrees_with_checking_every_address(self) -> None:
        for seed in range(5):
            text, allocations = random_case(seed)
            with self.subTest(seed=seed):
                swept = list(intersect(zone(text), [block(cidr) for cidr in allocations]))
                self.assertEqual(swept, brute_force(text, allocations))
                self.assertTrue(swept)

    def test_hits_list_their_addresses(self) -> None:
        self.assertEqual(
            list(hit("192.0.2.254", "192.0.3.0").addresses()), ["192.0.2.254", "192.0.2.255", "192.0.3.0"]
        )


class DiffTestCase(SimpleTestCase):
    def test_it_reports_listings_delistings_and_changed_codes(self) -> None:
        before = [hit("192.0.2.1", "192.0.2.10"), hit("192.0.2.20", "192.0.2.20", "127.0.0.3")]
        after = [
            hit("192.0.2.5", "192.0.2.12"),
            hit("192.0.2.20", "192.0.2.20", "127.0.0.4"),
            hit("2001:db8::1", "2001:db8::1"),
        ]
        transitions = list(diff(before, after))
        self.assertEqual(
            [
                (
                    str(ipaddress.ip_address(t.first)),
                    str(ipaddress.ip_address(t.last)),
                    t.kind,
                    t.before,
                    t.after,
                )
                for t in transitions
            ],
            [
                ("192.0.2.1", "192.0.2.4", "delisted", ("127.0.0.2",), ()),
                ("192.0.2.11", "192.0.2.12", "listed", (), ("127.0.0.2",)),
                ("192.0.2.20", "192.0.2.20", "changed", ("127.0.0.3",), ("127.0.0.4",)),
                ("2001:db8::1", "2001:db8::1", "listed", (), ("127.0.0.2",)),
            ],
        )

    def test_nothing_changed_means_no_transitions(self) -> None:
        hits = [hit("192.0.2.1", "192.0.2.10")]
        self.assertEqual(list(diff(hits, hits)), [])
        self.assertEqual(list(diff([], [])), [])

    def test_it_agrees_with_comparing_every_address(self) -> None:
        for seed in range(5):
            old_text, allocations = random_case(seed)
            new_text, _ = random_case(seed + 100)
            old, new = brute_force(old_text, allocations), brute_force(new_text, allocations)
            expected: list[Transition] = []
            old_map = {a: h.values for h in old for a in range(h.first, h.last + 1)}
            new_map = {a: h.values for h in new for a in range(h.first, h.last + 1)}
            for address in sorted(old_map.keys() | new_map.keys()):
                was, now = old_map.get(address, ()), new_map.get(address, ())
                if was != now:
                    last = expected[-1] if expected else None
                    if last and last.last + 1 == address and (last.before, last.after) == (was, now):
                        expected[-1] = last._replace(last=address)
                    else:
                        expected.append(Transition(4, address, address, was, now))
            with self.subTest(seed=seed):
                self.assertEqual(list(diff(old, new)), expected)


class CidrBlocksTestCase(SimpleTestCase):
    def test_it_covers_a_range_with_the_fewest_blocks(self) -> None:
        self.assertEqual(
            [f"{ipaddress.IPv4Address(n)}/{p}" for n, p in cidr_blocks(4, ip("192.0.2.3"), ip("192.0.2.17"))],
            ["192.0.2.3/32", "192.0.2.4/30", "192.0.2.8/29", "192.0.2.16/31"],
        )
        self.assertEqual(list(cidr_blocks(4, 0, (1 << 32) - 1)), [(0, 0)])
        self.assertEqual(list(cidr_blocks(6, 0, (1 << 128) - 1)), [(0, 0)])


@unittest.skipUnless(connection.vendor == "postgresql", "needs PostgreSQL (set DATABASE_URL=postgres://…)")
class PostgresIntersectTestCase(TransactionTestCase):
    def allocations_table(self, cidrs: list[str]) -> str:
        with connection.cursor() as cursor:
            cursor.execute("CREATE TEMPORARY TABLE scratch_allocation (cidr cidr NOT NULL)")
            cursor.executemany("INSERT INTO scratch_allocation (cidr) VALUES (%s)", [(c,) for c in cidrs])
        self.addCleanup(self.drop_scratch)
        return "SELECT cidr FROM scratch_allocation"

    def drop_scratch(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS pg_temp.scratch_allocation")

    def test_it_gives_the_same_runs_as_the_sweep(self) -> None:
        for seed in range(3):
            text, allocations = random_case(seed)
            allocations_sql = self.allocations_table(allocations)
            with self.subTest(seed=seed), connection.cursor() as cursor:
                self.assertEqual(
                    intersect_on_postgres(cursor, allocations_sql, zone(text)),
                    list(intersect(zone(text), [block(cidr) for cidr in allocations])),
                )
            self.drop_scratch()

    def test_it_handles_ipv6_and_text_allocations(self) -> None:
        listed = zone("192.0.2.0/24\n") + zone("2001:db8:1::/48\n!2001:db8:1::25\n", Dataset.IP6TRIE)
        sql = "SELECT * FROM (VALUES ('2001:db8:1::/64'), ('192.0.2.128/25')) AS v(block)"
        with connection.cursor() as cursor:
            self.assertEqual(
                intersect_on_postgres(cursor, sql, listed),
                [
                    hit("192.0.2.128", "192.0.2.255"),
                    hit("2001:db8:1::", "2001:db8:1::24"),
                    hit("2001:db8:1::26", "2001:db8:1::ffff:ffff:ffff:ffff"),
                ],
            )
