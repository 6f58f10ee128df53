"""Server time of the reviewer's pages with 100,000 requests and 1,000,000 reputation events.

    .venv/bin/python bench/review_pages.py [--quick] [--runs 25]

Requests go through django.test.Client (the whole middleware stack, sessions, templates; no
network) logged in as a reviewer, against the bench database on PostgreSQL. Each page is fetched
once to warm up, then --runs times. Printed per page: the rows shown, the number of SQL queries
(the same on every run, or the script stops), the median of their summed time as Django records
it (each query rounded to the millisecond), the median and 90th percentile of the server time,
and its ratio to a baseline page of the same run: the customer's request list (about 50
requests of one tenant). /healthz is printed as the floor. The fixtures come from
bench/fixtures.py (generated first if the database lacks them).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import benchdb

# isort: split
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Count
from django.db.models.functions import Coalesce
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bench import fixtures
from portal.enforcement.models import WorkerHeartbeat
from portal.lib.keyset import encode_cursor
from portal.review.views import SORT_KEYS
from portal.unblock.models import RequestedBlock, UnblockRequest


@dataclass
class Measured:
    label: str
    url: str
    rows: int
    queries: int
    sql_ms: float
    median_ms: float
    p90_ms: float


def measure(
    client: Client, label: str, url: str, runs: int, headers: dict[str, str] | None = None
) -> Measured:
    headers = headers or {}
    response = client.get(url, headers=headers)  # warm-up: connection, template cache
    if response.status_code != 200:
        raise SystemExit(f"{url}: HTTP {response.status_code}")
    rows = response.content.count(b'name="ids"')  # the queue's rows (check boxes)
    timings, sql, counts = [], [], set()
    for _ in range(runs):
        with CaptureQueriesContext(connection) as queries:
            start = time.perf_counter()
            client.get(url, headers=headers)
            timings.append((time.perf_counter() - start) * 1000)
            # Read them inside: the next request's request_started signal empties the query log.
            sql.append(sum(float(q["time"]) for q in queries.captured_queries) * 1000)
            counts.add(len(queries))
    if len(counts) != 1:
        raise SystemExit(f"{url}: the number of queries varies between runs: {sorted(counts)}")
    timings.sort()
    p90 = timings[min(len(timings) - 1, int(len(timings) * 0.9))]
    count, sql_ms = counts.pop(), statistics.median(sql)
    return Measured(label, url, rows, count, sql_ms, statistics.median(timings), p90)


def deep_cursor(sort: str, fraction: float) -> str:
    """The cursor of the row `fraction` of the way through the open queue in `sort` order."""
    keys = SORT_KEYS[sort]
    queryset = (
        UnblockRequest.objects.open()
        .annotate(risk=Coalesce("risk_score", -1))
        .order_by(*[f"-{k.field}" if k.descending else k.field for k in keys])
    )
    offset = int(queryset.count() * fraction)
    return encode_cursor(queryset[offset], keys)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    fixtures.add_arguments(parser)
    parser.add_argument("--runs", type=int, default=25, help="timed fetches per page (median reported)")
    args = parser.parse_args()
    sizes = fixtures.sizes_from(args)
    fixtures.ensure(sizes)

    # A fresh heartbeat, so that /healthz answers 200 as it does with a worker running.
    WorkerHeartbeat.objects.update_or_create(name="bench", defaults={"seen_at": timezone.now()})
    reviewer = User.objects.get(username="reviewer0@staff.bench")
    staff = Client()
    staff.force_login(reviewer)
    # The customer of the tenant whose request count is closest to the queue's page size.
    counts = UnblockRequest.objects.order_by().values_list("tenant_id").annotate(n=Count("id"))
    tenant_id, n = min(counts, key=lambda row: abs(row[1] - 50))
    customer = User.objects.get(memberships__tenant_id=tenant_id)
    customer_client = Client()
    customer_client.force_login(customer)

    some_tenant = UnblockRequest.objects.open().values_list("tenant__external_id", "tenant__name").first()
    assert some_tenant is not None
    address = RequestedBlock.objects.filter(request__state="in_review", family=4).values_list(
        "cidr", flat=True
    )[0]
    # An open request with four blocks, one of them a CIDR block, of the tenant highest in the
    # address space: the worst case for "reputation events overlapping each address".
    busy = (
        UnblockRequest.objects.open()
        .filter(pk__in=RequestedBlock.objects.filter(cidr__contains="/").values("request_id"))
        .annotate(n=Count("blocks"))
        .filter(n=4)
        .order_by("-tenant__external_id")
        .values_list("id", flat=True)
        .first()
    )
    assert isinstance(busy, uuid.UUID)
    word = some_tenant[1].split()[0]
    table = {"HX-Request": "true", "HX-Target": "queue-table"}

    runs = args.runs
    results = [
        measure(staff, "queue: open, oldest first", "/review/", runs),
        measure(
            staff,
            "queue: in review, high risk, by risk",
            "/review/?state=in_review&band=high&sort=risk",
            runs,
        ),
        measure(staff, "queue: unassigned and overdue", "/review/?assignee=unassigned&overdue=on", runs),
        measure(staff, "queue: failing SPF, newest first", "/review/?failing=spf&sort=newest", runs),
        measure(staff, "queue: mine", "/review/?assignee=mine", runs),
        measure(staff, "queue: one tenant", f"/review/?tenant={some_tenant[0]}", runs),
        measure(staff, f"queue: search “{word}”", f"/review/?q={word}", runs),
        measure(staff, "queue: search an address", f"/review/?q={address}", runs),
        measure(staff, "queue: page at 50% (keyset)", f"/review/?after={deep_cursor('oldest', 0.5)}", runs),
        measure(
            staff, "queue: page at 90%, by risk", f"/review/?sort=risk&after={deep_cursor('risk', 0.9)}", runs
        ),
        measure(staff, "queue: htmx table refresh", "/review/", runs, table),
        measure(staff, "request page (4 blocks)", f"/review/requests/{busy}/", runs),
    ]
    baseline = measure(customer_client, f"baseline: customer list ({n} requests)", "/requests/", runs)
    floor = measure(staff, "floor: /healthz", "/healthz", runs)

    open_count = UnblockRequest.objects.open().count()
    print(f"machine: {benchdb.machine()}")
    print(
        f"data: {UnblockRequest.objects.count():,} requests ({open_count:,} open), "
        f"{sizes.events:,} reputation events, {sizes.tenants:,} tenants; median of {runs} runs"
    )
    print(f"{'page':42} {'rows':>5} {'SQL':>4} {'SQL ms':>7} {'median':>9} {'p90':>9} {'vs baseline':>11}")
    for m in [*results, baseline, floor]:
        print(
            f"{m.label:42} {m.rows:5} {m.queries:4} {m.sql_ms:7.1f} {m.median_ms:6.1f} ms {m.p90_ms:6.1f} ms"
            f" {m.median_ms / baseline.median_ms:10.2f}x"
        )
    queue = [m for m in results if m.label.startswith("queue")]
    print(
        f"queue pages: {min(m.queries for m in queue)}-{max(m.queries for m in queue)} SQL queries "
        "whatever the number of rows; "
        f"slowest median {max(m.median_ms for m in queue):.1f} ms "
        f"({max(m.median_ms for m in queue) / baseline.median_ms:.1f}x the baseline)"
    )


if __name__ == "__main__":
    main()
