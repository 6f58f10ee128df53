"""Reading the counting sets and turning readings into connections: resets, made-anew elements,
and counts kept across a table that is recreated."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from django.test import SimpleTestCase

from portal.agent.counters import CounterReader, SetReading, deltas, parse_set
from portal.agent.nft import COUNTER_SETS, Names


def nft_json(elements: dict[str, tuple[int, int]], *, timeout: int = 3600, compact: bool = False) -> bytes:
    """What `nft -j list set` prints (nftables 1.0.6): {address: (packets, expires)}."""
    elem = [
        {"elem": {"val": a, "expires": expires, "counter": {"packets": packets, "bytes": 60 * packets}}}
        for a, (packets, expires) in elements.items()
    ]
    entry = {"family": "inet", "name": "smtp_blocked4", "table": "t", "type": "ipv4_addr", "handle": 10}
    entry.update({"size": 65536, "flags": ["timeout"], "timeout": timeout, "elem": elem})
    document = {"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}}, {"set": entry}]}
    return json.dumps(document, separators=(",", ":") if compact else None).encode()


class ParseTestCase(SimpleTestCase):
    def test_it_reads_packets_and_ages_of_ipv4_and_ipv6_elements(self) -> None:
        reading = parse_set(nft_json({"192.0.2.10": (12, 3599), "2001:db8::5": (40, 3000)}))
        self.assertEqual(
            reading,
            SetReading.of({"192.0.2.10": 12, "2001:db8::5": 40}, {"192.0.2.10": 1, "2001:db8::5": 600}),
        )

    def test_another_spacing_or_an_elements_own_timeout_is_parsed_all_the_same(self) -> None:
        document = json.loads(nft_json({"192.0.2.10": (12, 3599)}))
        document["nftables"][1]["set"]["elem"][0]["elem"]["timeout"] = 7200
        document["nftables"][1]["set"]["elem"][0]["elem"]["expires"] = 7000
        self.assertEqual(
            parse_set(json.dumps(document).encode()), SetReading.of({"192.0.2.10": 12}, {"192.0.2.10": 200})
        )

    def test_another_spacing_is_parsed_all_the_same(self) -> None:
        elements = {"192.0.2.10": (12, 3599), "192.0.2.11": (1, 10)}
        self.assertEqual(parse_set(nft_json(elements, compact=True)), parse_set(nft_json(elements)))

    def test_an_empty_set_and_elements_without_counters(self) -> None:
        self.assertEqual(parse_set(nft_json({})), SetReading(timeout=3600))
        document = json.loads(nft_json({"192.0.2.1": (3, 100)}))
        document["nftables"][1]["set"]["elem"].append("192.0.2.2")
        self.assertEqual(parse_set(json.dumps(document).encode()).packets, {"192.0.2.1": 3})


class DeltaTestCase(SimpleTestCase):
    def test_it_counts_what_grew_since_the_last_reading(self) -> None:
        after = SetReading.of({"192.0.2.1": 15, "192.0.2.2": 4, "192.0.2.3": 7})
        before = SetReading.of({"192.0.2.1": 10, "192.0.2.3": 7}).elements
        self.assertEqual(deltas(before, after, 60), {"192.0.2.1": 5, "192.0.2.2": 4})

    def test_a_smaller_value_is_a_reset_and_counts_whole(self) -> None:
        before = SetReading.of({"192.0.2.1": 10}).elements
        self.assertEqual(deltas(before, SetReading.of({"192.0.2.1": 3}), 60), {"192.0.2.1": 3})

    def test_an_element_younger_than_the_last_reading_was_made_anew_and_counts_whole(self) -> None:
        # 10 before; then the element timed out and came back, and has already counted 12.
        before = SetReading.of({"192.0.2.1": 10}, {"192.0.2.1": 300}).elements
        young = SetReading.of({"192.0.2.1": 12}, {"192.0.2.1": 20})
        self.assertEqual(deltas(before, young, 60), {"192.0.2.1": 12})
        old = SetReading.of({"192.0.2.1": 12}, {"192.0.2.1": 600})
        self.assertEqual(deltas(before, old, 60), {"192.0.2.1": 2})


class FakeKernel:
    """The seam: what `nft -j list set` would print for each counting set. Elements are
    {address: (packets, made at)}; nft shows the seconds left of the hour each lives."""

    def __init__(self) -> None:
        self.sets: dict[str, dict[str, tuple[int, int]]] = {name: {} for name in COUNTER_SETS.values()}
        self.time = 0

    def __call__(self, table: str, set_name: str) -> bytes:
        elements = self.sets[set_name].items()
        return nft_json({a: (packets, 3600 - (self.time - made)) for a, (packets, made) in elements})


class ReaderTestCase(SimpleTestCase):
    def setUp(self) -> None:
        self.kernel = FakeKernel()
        self.reader = CounterReader(
            Names(),
            lister=self.kernel,
            clock=lambda: self.kernel.time,
            now=lambda: datetime(2026, 12, 2, 9, 0, tzinfo=UTC),
        )

    def test_it_reports_blocked_and_accepted_per_address_across_families(self) -> None:
        self.kernel.sets["smtp_blocked4"] = {"192.0.2.10": (12, 10)}
        self.kernel.sets["smtp_accepted6"] = {"2001:db8::5": (40, 10)}
        self.kernel.sets["smtp_accepted4"] = {"192.0.2.10": (2, 10)}
        self.kernel.time = 60
        _, _, tally = self.reader.take()
        self.assertEqual(tally, {"192.0.2.10": [12, 2], "2001:db8::5": [0, 40]})
        self.kernel.sets["smtp_blocked4"] = {"192.0.2.10": (15, 10)}
        self.kernel.time = 120
        self.assertEqual(self.reader.take()[2], {"192.0.2.10": [3, 0]})
        self.kernel.time = 180
        self.assertEqual(self.reader.take()[2], {})
        # The hour is up: the element goes and comes back, and counts 20 before the next reading.
        self.kernel.sets["smtp_blocked4"] = {"192.0.2.10": (20, 3620)}
        self.kernel.time = 3640
        self.assertEqual(self.reader.take()[2], {"192.0.2.10": [20, 0]})

    def test_counts_made_before_the_table_is_recreated_are_kept(self) -> None:
        self.kernel.sets["smtp_blocked4"] = {"192.0.2.10": (12, 10)}
        self.kernel.time = 30
        self.reader.before_recreate()  # the agent replaces the table: the kernel starts from 0
        self.kernel.sets["smtp_blocked4"] = {"192.0.2.10": (20, 40)}
        self.kernel.time = 60
        self.assertEqual(self.reader.take()[2], {"192.0.2.10": [32, 0]})
