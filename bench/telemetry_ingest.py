"""Ingesting one telemetry report of 100,000 addresses on PostgreSQL.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_telemetry \\
        .venv/bin/python bench/telemetry_ingest.py [--addresses 100000] [--runs 5]

Uses its own database (default bench_telemetry, recreated and migrated each run), so that it
never touches the big fixtures. Posts gzip reports through django.test.Client with an
enforcement key (the whole middleware, DRF and workflow stack): the first report of an hour
inserts every row, the later ones add to existing rows (ON CONFLICT … DO UPDATE). 60 addresses
cross the blocked-attempts threshold in the first report (events, emails). Baselines in the same
run: PostgreSQL COPY and psycopg executemany of the same 100,000 rows into a plain table.
The target is under 2 s per report.
"""

from __future__ import annotations

import argparse
import gzip
import ipaddress
import json
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_telemetry")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datetime import date

from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from bench import benchdb
from portal.accounts.models import Allocation, ApiKey, Scope, Tenant
from portal.enforcement.models import Exemption
from portal.reputation.models import ReputationEvent
from portal.telemetry.ingest import hour_of
from portal.telemetry.models import SmtpHour


def address(i: int) -> str:
    return (
        f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
        if i % 10
        else str(ipaddress.IPv6Address(0x20010DB8 << 96 | i))
    )


def seed(addresses: int) -> None:
    tenants = Tenant.objects.bulk_create(
        Tenant(
            external_id=f"t{i}",
            name=f"Tenant {i}",
            account_opened_on=date(2025, 1, 1),
            abuse_contact=f"abuse@t{i}.example",
        )
        for i in range(3)
    )
    assigned = timezone.now() - timedelta(days=30)
    allocations = []
    for tenant, cidr in zip(tenants, ("10.0.0.0/16", "10.1.0.0/16", "2001:db8::/32"), strict=True):
        allocation = Allocation(tenant=tenant, assigned_at=assigned)
        allocation.set_network(ipaddress.ip_network(cidr))
        allocations.append(allocation)
    Allocation.objects.bulk_create(allocations)
    exemptions = []
    for i in range(1, addresses, 100):  # 1,000 exempted addresses
        exemption = Exemption(tenant=tenants[0 if i < 65536 else 1])
        exemption.set_network(ipaddress.ip_network(address(i)))
        exemptions.append(exemption)
    Exemption.objects.bulk_create(exemptions)
    Exemption.objects.update(created_at=assigned, state_changed_at=assigned)


def body(addresses: int, sequence: int, start: object) -> bytes:
    counts = []
    for i in range(addresses):
        if i % 10 == 7:
            entry = {"address": address(i), "observed": i % 5 + 1}
        elif i % 100 == 1:
            entry = {"address": address(i), "accepted": i % 9 + 1}
        else:
            crossing = sequence == 1 and i % 1667 == 0  # 60 addresses over the threshold
            # A bot that keeps trying is rare: most addresses try a few times an hour.
            entry = {"address": address(i), "blocked": 150 if crossing else i % 7 + 1}
        counts.append(entry)
    document = {
        "agent": "gw-bench-1",
        "version": "1.2.0",
        "sequence": sequence,
        "source": "nftables",
        "start": start,
        "end": start,
        "estimated": False,
        "counts": counts,
    }
    return gzip.compress(json.dumps(document, default=str).encode(), compresslevel=6)


def baselines(addresses: int) -> tuple[float, float]:
    rows = [
        (address(i), 4 if i % 10 else 6, f"{i:032x}", timezone.now(), i % 20, 0) for i in range(addresses)
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE scratch (cidr varchar(43), family smallint, first varchar(32), "
            "hour timestamptz, blocked bigint, accepted bigint)"
        )
        started = time.perf_counter()
        with cursor.connection.cursor().copy("COPY scratch FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        copy_s = time.perf_counter() - started
        cursor.execute("TRUNCATE scratch")
        started = time.perf_counter()
        cursor.connection.cursor().executemany("INSERT INTO scratch VALUES (%s, %s, %s, %s, %s, %s)", rows)
        many_s = time.perf_counter() - started
        cursor.execute("DROP TABLE scratch")
    return copy_s, many_s


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--addresses", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    benchdb.recreate()
    call_command("migrate", verbosity=0)
    seed(args.addresses)
    _, key = ApiKey.issue(name="bench agent", scope=Scope.ENFORCEMENT, tenant=None, created_by=None)
    client = Client(headers={"Authorization": f"Bearer {key}"})
    start = hour_of(timezone.now()) - timedelta(hours=1) + timedelta(minutes=5)
    print(benchdb.machine())
    times = []
    for sequence in range(1, args.runs + 1):
        payload = body(args.addresses, sequence, start.isoformat())
        started = time.perf_counter()
        if args.profile and sequence == 1:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.enable()
        response = client.post(
            "/api/v1/telemetry/smtp",
            payload,
            content_type="application/json",
            headers={"Content-Encoding": "gzip"},
        )
        took = time.perf_counter() - started
        if args.profile and sequence == 1:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        assert response.status_code == 202, response.content[:500]
        times.append(took)
        what = "inserts" if sequence == 1 else "updates"
        print(
            f"report {sequence} ({what}): {took:.2f} s, {len(payload) / 1e6:.1f} MB gzip, "
            f"{response.json()['signals']} signals"
        )
    rows = SmtpHour.objects.count()
    events = ReputationEvent.objects.count()
    copy_s, many_s = baselines(args.addresses)
    print(f"\nrows {rows:,}, reputation events {events}")
    later = statistics.median(times[1:] or times)
    print(f"first report (all inserts): {times[0]:.2f} s; later reports (updates), median {later:.2f} s")
    print(f"baseline, same rows into a plain table: COPY {copy_s:.2f} s, executemany {many_s:.2f} s")
    print("target: under 2 s per report:", "met" if max(times) < 2 else "NOT met")


if __name__ == "__main__":
    main()
