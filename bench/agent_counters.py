"""Reading the agent's counting sets: parse `nft -j list set` output for 100,000 elements and
compute the deltas since the previous reading.

    .venv/bin/python bench/agent_counters.py [--elements 100000] [--runs 7]

The JSON is generated in the shape nftables 1.0.6 prints (no kernel needed). The target is
under 100 ms for parse + delta of 100,000 elements. Also shown: json.loads of the same text,
which the reader falls back to when nft's output has another shape.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from portal.agent.counters import Element, _parse_set_json, deltas, parse_set


def nft_output(elements: int, *, grow: int, every: int = 3) -> bytes:
    items = []
    for i in range(elements):
        address = f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" if i % 4 else f"2001:db8::{i:x}"
        packets = i % 1000 + 1 + (grow if i % every == 0 else 0)
        counter = {"packets": packets, "bytes": 60 * packets}
        items.append({"elem": {"val": address, "expires": 3599 - i % 3000, "counter": counter}})
    entry: dict[str, object] = {"family": "inet", "name": "smtp_blocked4", "table": "egress_port25"}
    entry.update(
        {
            "type": "ipv4_addr",
            "handle": 10,
            "size": 131072,
            "flags": ["timeout"],
            "timeout": 3600,
            "elem": items,
        }
    )
    return json.dumps({"nftables": [{"metainfo": {"version": "1.0.6"}}, {"set": entry}]}).encode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--elements", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    before = nft_output(args.elements, grow=0)
    previous = parse_set(before).elements
    for every, what in ((100, "a quiet minute: 1% of the addresses counted more"), (3, "a busy one: 33%")):
        after = nft_output(args.elements, grow=5, every=every)
        print(f"\n{what}")
        measure(args, previous, after)


def measure(args: argparse.Namespace, previous: dict[str, Element], after: bytes) -> None:
    parse_times, delta_times, fallback_times = [], [], []
    changed = 0
    for _ in range(args.runs):
        started = time.perf_counter()
        reading = parse_set(after)
        parsed = time.perf_counter()
        changed = len(deltas(previous, reading, 60.0))
        delta_times.append(time.perf_counter() - parsed)
        parse_times.append(parsed - started)
        started = time.perf_counter()
        _parse_set_json(after)
        fallback_times.append(time.perf_counter() - started)
    total = [p + d for p, d in zip(parse_times, delta_times, strict=True)]
    print(f"{args.elements:,} elements, {len(after) / 1e6:.1f} MB of nft -j output, {changed:,} changed")
    print(f"parse (fast path)  median {statistics.median(parse_times) * 1000:7.1f} ms")
    print(f"delta              median {statistics.median(delta_times) * 1000:7.1f} ms")
    print(f"parse + delta      median {statistics.median(total) * 1000:7.1f} ms   (target < 100 ms)")
    print(f"parse (json.loads) median {statistics.median(fallback_times) * 1000:7.1f} ms   (fallback)")


if __name__ == "__main__":
    main()
