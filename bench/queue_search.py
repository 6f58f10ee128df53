"""The review queue's free-text search against the plain queue page, at the fixture size given.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_deliveries_search100k \\
        .venv/bin/python bench/queue_search.py --requests 100000 --events 100000 [--runs 15]

Run it at 10k and at 100k requests (each in its own database) and compare: the search's SQL time
should stay flat. Through django.test.Client logged in as a reviewer it times the open queue
(the baseline, what the search is held to), a search for a tenant's name word and one for a
sending-domain fragment; then, on the database alone, the domain search as it was (ILIKE through
the tenant join, a scan of every request) against the search as it is, with the plan's use of
request_domains_trgm. The fixtures come from bench/fixtures.py.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_deliveries_search")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import benchdb

# isort: split
from django.contrib.auth.models import User
from django.db import models
from django.db.models import Q
from django.db.models.functions import Cast
from django.test import Client

from bench import fixtures
from bench.review_pages import measure
from portal.unblock.models import UnblockRequest


def sql_ms(queryset: models.QuerySet[UnblockRequest], runs: int) -> float:
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        list(queryset.all())  # a fresh clone: a QuerySet caches its rows
        timings.append((time.perf_counter() - start) * 1000)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    fixtures.add_arguments(parser)
    parser.add_argument("--runs", type=int, default=15, help="timed fetches per page (median reported)")
    args = parser.parse_args()
    sizes = fixtures.sizes_from(args)
    fixtures.ensure(sizes)

    staff = Client()
    staff.force_login(User.objects.get(username="reviewer0@staff.bench"))
    tenant = UnblockRequest.objects.open().values_list("tenant__name", "sending_domains").first()
    assert tenant is not None
    word = tenant[0].split()[0]
    domain = tenant[1][0].removesuffix(".example")  # "mail3.bench-00260": a fragment

    baseline = measure(staff, "baseline: queue, open, oldest first", "/review/", args.runs)
    pages = [
        measure(staff, f"search a name word “{word}”", f"/review/?q={word}", args.runs),
        measure(staff, f"search a domain “{domain}”", f"/review/?q={domain}", args.runs),
    ]

    page = UnblockRequest.objects.open().order_by("submitted_at", "id")
    before = (
        page.annotate(domains_text=Cast("sending_domains", models.TextField()))
        .filter(
            Q(tenant__name__icontains=domain)
            | Q(tenant__external_id__iexact=domain)
            | Q(domains_text__icontains=domain.lower())
        )
        .select_related("tenant")[:50]
    )
    after = page.search(domain).select_related("tenant")[:50]
    plan = after.explain()

    print(f"machine: {benchdb.machine()}")
    print(
        f"data: {UnblockRequest.objects.count():,} requests, {sizes.tenants:,} tenants; median of {args.runs}"
    )
    print(f"{'page':46} {'rows':>5} {'SQL':>4} {'SQL ms':>7} {'median':>9} {'vs baseline':>11}")
    for m in [baseline, *pages]:
        print(
            f"{m.label:46} {m.rows:5} {m.queries:4} {m.sql_ms:7.1f} {m.median_ms:6.1f} ms"
            f" {m.median_ms / baseline.median_ms:10.2f}x"
        )
    old, new = sql_ms(before, args.runs), sql_ms(after, args.runs)
    print(f"domain search SQL, as it was (ILIKE scan): {old:7.1f} ms")
    print(f"domain search SQL, as it is:               {new:7.1f} ms ({old / new:.0f}x faster)")
    print(f"plan reads request_domains_trgm: {'request_domains_trgm' in plan}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
