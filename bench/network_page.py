"""Server time of the network reputation page at the scale of 1,000,000 addresses.

    .venv/bin/python bench/network_page.py [--quick] [--runs 15]

The page reads the daily rollups and a few bounded queries, never the reputation events, so
what grows with the network is the rollups: for 1M addresses (3,907 /24s), 5% of them listed at
any time, 90 days of rows per list, per tenant (5,000 with a listed address), per allocation
prefix (5,000) and per /24, about 1.3 million rows, plus 1M ListingStatus rows (50,000 listed).
They are written straight into a database of this bench's own (`bench_network_page`, dropped and
recreated; `--quick` uses a tenth of the sizes). Printed: SQL queries per page and the median
and 90th percentile of the server time, through django.test.Client as a reviewer.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_network_page")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import benchdb

# isort: split
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

SCALE = 10 if benchdb.QUICK else 1
ADDRESSES = 1_000_000 // SCALE
RANGES = ADDRESSES // 256 + 1
HOLDERS = 5_000 // SCALE
LISTED = ADDRESSES // 20
DAYS = 90
LISTS = ("SBL", "CSS", "XBL", "PBL", "DBL", "abuse")


def address(n: int) -> str:
    n += 10 << 24
    return f"{n >> 24 & 255}.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"


def copy(table: str, columns: str, rows: io.StringIO) -> None:
    rows.seek(0)
    with connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(f"COPY {table} ({columns}) FROM STDIN") as stream:
            while chunk := rows.read(1 << 20):
                stream.write(chunk)


def generate(today: date) -> None:
    benchdb.recreate()
    call_command("migrate", interactive=False, verbosity=0)
    now = timezone.now().isoformat()
    rollups = io.StringIO()
    for n in range(DAYS):
        day = (today - timedelta(days=n)).isoformat()
        for name in LISTS:
            rollups.write(f"{day}\tnetwork\t\t\t{name}\t{LISTED // 4}\t{LISTED // 100}\t{n}\n")
        for h in range(HOLDERS):
            tenant = uuid.UUID(int=h + 1)
            rollups.write(f"{day}\ttenant\t{tenant}\tTenant {h}\tabuse\t{(h * 7 + n) % 40}\t{h % 3}\t0\n")
            rollups.write(f"{day}\tprefix\t10.{h % 256}.{h // 256}.0/24\t\tabuse\t{(h * 3 + n) % 30}\t0\t0\n")
        for r in range(RANGES):
            cidr = f"{address(r * 256)}/24"
            rollups.write(f"{day}\trange\t{cidr}\t\tabuse\t{(r * 11 + n) % 20}\t{r % 2}\t{(r + n) % 4}\n")
    copy(
        "reputation_networkrollup",
        "day, scope, key, label, listname, listed, exempted, complaints",
        rollups,
    )
    days = io.StringIO()
    for n in range(DAYS + 30):
        day = (today - timedelta(days=n)).isoformat()
        counts = f"{ADDRESSES}\t{LISTED // 10}\t{n % 9}\t{n % 4}\t{n % 50}\t{n % 3}"
        days.write(f"{day}\t{counts}\t[60, 120]\t[86400]\t{now}\n")
    copy(
        "reputation_networkday",
        "day, allocated_addresses, exempted_addresses, complaints, complaints_on_exempted, "
        "approved_addresses, listed_within_30_days, listing_to_suspension, suspension_to_delisting, "
        "computed_at",
        days,
    )
    statuses = io.StringIO()
    for n in range(ADDRESSES):
        listed = n % 20 == 0
        code = '["127.0.0.10"]' if n % 60 == 0 else '["127.0.0.3"]' if listed else "[]"
        since = (timezone.now() - timedelta(minutes=n % 100_000)).isoformat()
        statuses.write(f"{address(n)}\tzen.spamhaus.org\t{'t' if listed else 'f'}\t{code}\t{since}\t{now}\n")
    copy("reputation_listingstatus", "address, zone, listed, codes, since, checked_at", statuses)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--reuse", action="store_true", help="keep the generated database")
    args = parser.parse_args()
    today = timezone.now().date()
    if not args.reuse or not benchdb.exists():
        started = time.perf_counter()
        generate(today)
        print(f"generated in {time.perf_counter() - started:.0f} s")
    reviewer, _ = User.objects.get_or_create(username="rita@bench.example", email="rita@bench.example")
    reviewer.groups.add(Group.objects.get_or_create(name="reviewer")[0])
    client = Client()
    client.force_login(reviewer)
    print(benchdb.machine())
    for label, url in [
        ("page", "/reputation/network/"),
        ("page, ranges by address, page 40", "/reputation/network/?sort=range&page=40"),
        ("ranges.csv", "/reputation/network/ranges.csv"),
    ]:
        client.get(url)
        times, queries = [], set()
        for _ in range(args.runs):
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.status_code
            queries.add(len(captured))
        times.sort()
        p90 = times[int(len(times) * 0.9) - 1]
        median = statistics.median(times)
        print(f"{label:40} {sorted(queries)} queries  median {median:7.1f} ms  p90 {p90:7.1f} ms")


if __name__ == "__main__":
    main()
