"""How long vetting 256 addresses takes against a real DNS server process on loopback.

    .venv/bin/python bench/vetting.py

Runs every DNS-based check (reverse DNS with forward confirmation, the DNSBL zone, SPF, DMARC,
DBL) for a /24, concurrently as the worker does, and the same work one look-up at a time as the
baseline. The server answers each query after a configurable delay (default 20 ms) to stand in
for a recursive resolver's latency; the figures and their ratio go to docs/performance.md.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402

from portal.demo.dnsserver import running  # noqa: E402
from portal.lib.dns import Resolver, reverse_label  # noqa: E402
from portal.workflows.vetting import dns_findings  # noqa: E402


def build_zone(network: ipaddress.IPv4Network, delay_ms: int) -> dict[str, object]:
    zone: dict[str, object] = {"_delay_ms": delay_ms}
    for n, address in enumerate(network):
        host = f"mail{n}.bench.example"
        zone[address.reverse_pointer] = {"PTR": [f"{host}."]}
        zone[host] = {"A": [str(address)]}
        if n % 16 == 0:
            zone[f"{reverse_label(str(address))}.zen.bench"] = {"A": ["127.0.0.3"]}
    zone["bench.example"] = {"TXT": [f"v=spf1 ip4:{network} -all"]}
    zone["_dmarc.bench.example"] = {"TXT": ["v=DMARC1; p=reject"]}
    return zone


def measure(network: ipaddress.IPv4Network, port: int, concurrency: int, rounds: int) -> tuple[float, int]:
    settings.VETTING_CONCURRENCY = concurrency
    timings = []
    count = 0
    for _ in range(rounds):
        # A fresh resolver each round: its cache would otherwise answer everything after round one.
        resolver = Resolver(nameservers=["127.0.0.1"], port=port, timeout=5.0)
        start = time.perf_counter()
        findings = dns_findings(resolver, [network], ["bench.example"])
        timings.append(time.perf_counter() - start)
        count = len(findings)
    return statistics.median(timings), count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay-ms", type=int, default=20, help="server-side latency per query")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    settings.DNSBL_ZONE, settings.DBL_ZONE, settings.DNSBL_EXTRA_ZONES = "zen.bench", "dbl.bench", []
    settings.VETTING_MAX_ADDRESSES_PER_BLOCK = 256
    network = ipaddress.IPv4Network("203.0.113.0/24")
    threads = settings.VETTING_CONCURRENCY
    with running(build_zone(network, args.delay_ms)) as port:
        concurrent, findings = measure(network, port, threads, args.rounds)
        sequential, _ = measure(network, port, 1, 1)
    print(f"addresses: 256, findings: {findings}, server latency: {args.delay_ms} ms per query")
    print(f"concurrent ({threads} threads): {concurrent:.2f} s (median of {args.rounds})")
    print(f"sequential baseline (1 thread):  {sequential:.2f} s")
    print(f"speed-up: {sequential / concurrent:.1f}x")


if __name__ == "__main__":
    main()
