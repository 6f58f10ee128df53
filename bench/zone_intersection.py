"""Importing a 2,000,000-entry DNSBL zone file against 1,000,000 allocated addresses.

    .venv/bin/python bench/zone_intersection.py [--entries 2000000] [--addresses 1000000]

Generates an ip4set zone (single addresses, ranges, CIDRs and exclusions, in no particular order;
0.5 % in the provider's space, the rest elsewhere) and allocations of /24 to /29 blocks, then times:

- parse + resolve: reading the file into sorted, non-overlapping runs per listing;
- sweep: the merge-sweep intersection with the allocations (`portal.lib.intervals.intersect`);
- PostgreSQL (when DATABASE_URL is postgres://…): COPY into a temporary table, GiST join;

and prints the peak RSS after each step. The baseline is computed, not run: the DNS path asks one
query per allocated address, paced at --qps.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import random
import resource
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from portal.lib.intervals import Block, intersect
from portal.lib.zonefile import Dataset, ZoneInterval, ZoneParser, resolve


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def allocations(rng: random.Random, addresses: int) -> list[Block]:
    """Blocks of /24 to /29 inside 100.64.0.0/10, summing to at least `addresses`."""
    blocks: list[Block] = []
    total = 0
    cursor = int(ipaddress.IPv4Address("100.64.0.0"))
    while total < addresses:
        prefix = rng.choice([24, 25, 26, 27, 28, 29])
        size = 1 << (32 - prefix)
        cursor = (cursor + size - 1) // size * size  # aligned
        blocks.append(Block(4, cursor, cursor + size - 1))
        total += size
        cursor += size + rng.choice([0, 0, 0, size])  # mostly contiguous, some gaps
    return blocks


def write_zone(path: Path, rng: random.Random, entries: int, space: tuple[int, int]) -> None:
    inside_first, inside_last = space
    with path.open("w") as out:
        out.write("$TTL 2100\n:127.0.0.2:Listed, see https://example.test/query/ip/$\n")
        for n in range(entries):
            if rng.random() < 0.005:  # most of a feed is other networks
                base = rng.randrange(inside_first, inside_last)
            else:
                base = rng.randrange(
                    int(ipaddress.IPv4Address("1.0.0.0")), int(ipaddress.IPv4Address("223.0.0.0"))
                )
            kind = rng.random()
            address = ipaddress.IPv4Address(base)
            if kind < 0.80:
                out.write(f"{address}{' :127.0.0.3:' if n % 7 == 0 else ''}\n")
            elif kind < 0.92:
                out.write(f"{address}-{ipaddress.IPv4Address(base + rng.randrange(1, 64))}\n")
            elif kind < 0.99:
                out.write(f"{ipaddress.ip_network(f'{address}/{rng.randrange(24, 30)}', strict=False)}\n")
            else:
                out.write(f"!{address}\n")


def postgres(url: str, blocks: list[Block], zone_runs: Iterable[ZoneInterval]) -> tuple[float, int]:
    import psycopg

    from portal.lib.zone_postgres import intersect_on_postgres

    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE bench_allocation (cidr cidr NOT NULL)")
        with cursor.copy("COPY bench_allocation (cidr) FROM STDIN") as copy:
            for item in blocks:
                size = item.last - item.first + 1
                copy.write(f"{ipaddress.IPv4Address(item.first)}/{33 - size.bit_length()}\n")
        cursor.execute("CREATE INDEX ON bench_allocation USING gist (cidr inet_ops)")
        cursor.execute("ANALYZE bench_allocation")
        start = time.perf_counter()
        hits = intersect_on_postgres(cursor, "SELECT cidr FROM bench_allocation", zone_runs)
        return time.perf_counter() - start, len(hits)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=2_000_000)
    parser.add_argument("--addresses", type=int, default=1_000_000)
    parser.add_argument("--qps", type=float, default=50.0, help="the DNS path's query rate (baseline)")
    parser.add_argument("--seed", type=int, default=25)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    blocks = allocations(rng, args.addresses)
    allocated = sum(b.last - b.first + 1 for b in blocks)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "zone.ip4set"
        started = time.perf_counter()
        write_zone(path, rng, args.entries, (blocks[0].first, blocks[-1].last))
        size_mb = path.stat().st_size / 1e6
        generated_s = time.perf_counter() - started
        print(f"zone: {args.entries:,} entries, {size_mb:.0f} MB, generated in {generated_s:.1f} s")
        print(f"allocations: {len(blocks):,} blocks (/24../29), {allocated:,} addresses")
        print(f"peak RSS before import: {peak_rss_mb():.0f} MB")

        start = time.perf_counter()
        zone_parser = ZoneParser(Dataset.IP4SET)
        with path.open() as lines:
            zone = resolve(zone_parser, lines)
        parse_s = time.perf_counter() - start
        print(
            f"parse + resolve: {parse_s:.1f} s ({zone.count():,} runs per listing, "
            f"{zone_parser.error_count} bad lines), peak RSS {peak_rss_mb():.0f} MB"
        )

        start = time.perf_counter()
        hits = list(intersect(zone.intervals(), blocks))
        sweep_s = time.perf_counter() - start
        listed = sum(hit.size for hit in hits)
        print(
            f"sweep intersection: {sweep_s:.1f} s, {len(hits):,} runs, {listed:,} listed addresses, "
            f"peak RSS {peak_rss_mb():.0f} MB"
        )
        print(f"zone-file path total: {parse_s + sweep_s:.1f} s (goal: under 30 s and 300 MB)")

        url = os.environ.get("DATABASE_URL", "")
        if url.startswith(("postgres://", "postgresql://")):
            pg_s, pg_runs = postgres(url, blocks, zone.intervals())
            same = "same runs as the sweep" if pg_runs == len(hits) else f"{pg_runs:,} runs: DIFFERS"
            print(
                f"PostgreSQL path (COPY + GiST join): {pg_s:.1f} s, {same}, peak RSS {peak_rss_mb():.0f} MB"
            )
        else:
            print("PostgreSQL path: skipped (DATABASE_URL is not postgres://…)")

    dns_s = allocated / args.qps
    print(
        f"baseline, DNS path (computed): {allocated:,} queries at {args.qps:g} qps = {dns_s / 3600:.1f} h "
        f"per pass; zone file is {dns_s / (parse_s + sweep_s):,.0f}x faster"
    )


if __name__ == "__main__":
    main()
