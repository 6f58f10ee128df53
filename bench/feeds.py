"""Serving the pull feeds with 100,000 active exemptions.

    .venv/bin/python bench/feeds.py [--quick] [--runs 9]

Through django.test.Client with an enforcement key (the whole middleware and DRF stack, no
network), against the bench database on PostgreSQL:

- the text feed and the JSON feed, cold (the first request after a change of the feed: the body
  is built, once per process and ETag) and warm (the built body is served again), plain and
  gzipped, and the 304 answer to If-None-Match;
- the baseline: a naive DRF ModelSerializer list view of the same rows, defined here (with
  select_related, so that it is the serializer's cost and not an N+1 that is measured);
- the floor: PostgreSQL's own COPY of the text feed's column through psycopg.

Each figure is the median of --runs requests (fewer for the slow baseline).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import benchdb

# isort: split
from django.db import connection
from django.http import HttpResponse
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import path
from rest_framework import generics, serializers

from bench import fixtures
from portal import urls as portal_urls
from portal.accounts.api_auth import EnforcementScope
from portal.accounts.models import ApiKey, Scope, Tenant
from portal.enforcement.models import Exemption, FeedArtifact

FEED_SQL = "SELECT cidr FROM enforcement_exemption WHERE state = 'active' ORDER BY family, first"


class NaiveExemptionSerializer(serializers.ModelSerializer[Exemption]):
    tenant = serializers.SlugRelatedField[Tenant](slug_field="external_id", read_only=True)

    class Meta:
        model = Exemption
        fields = ["id", "tenant", "cidr", "family", "state", "expires_at", "request"]


class NaiveExemptionList(generics.ListAPIView[Exemption]):
    """What one writes first: a generic list view of the active set, no pagination."""

    queryset = Exemption.objects.active().select_related("tenant").order_by("family", "first")
    serializer_class = NaiveExemptionSerializer
    permission_classes = [EnforcementScope]
    pagination_class = None


urlpatterns = [path("bench/naive-exemptions", NaiveExemptionList.as_view()), *portal_urls.urlpatterns]


def timed(runs: int, fetch: Callable[[], object], before: Callable[[], object] = lambda: None) -> float:
    """Median milliseconds of `fetch` over `runs` calls, `before` run untimed before each."""
    timings = []
    for _ in range(runs):
        before()
        start = time.perf_counter()
        fetch()
        timings.append((time.perf_counter() - start) * 1000)
    return statistics.median(timings)


def count_queries(fetch: Callable[[], object]) -> int:
    with CaptureQueriesContext(connection) as queries:
        fetch()
    return len(queries)


def copy_floor() -> bytes:
    chunks: list[bytes] = []
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY ({FEED_SQL}) TO STDOUT") as copy:
        chunks.extend(bytes(data) for data in copy)
    return b"".join(chunks)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    fixtures.add_arguments(parser)
    parser.add_argument("--runs", type=int, default=9, help="timed requests per figure (median reported)")
    parser.add_argument("--baseline-runs", type=int, default=3, help="timed requests of the naive DRF view")
    args = parser.parse_args()
    sizes = fixtures.sizes_from(args)
    fixtures.ensure(sizes)
    runs = args.runs

    _, key = ApiKey.issue(name="bench feeds", scope=Scope.ENFORCEMENT, tenant=None, created_by=None)
    client = Client(headers={"Authorization": f"Bearer {key}"})
    gzip = {"Accept-Encoding": "gzip"}

    def get(url: str, headers: dict[str, str] | None = None, status: int = 200) -> HttpResponse:
        response = client.get(url, headers=headers or {})
        if response.status_code != status:
            raise SystemExit(f"{url}: HTTP {response.status_code}, expected {status}")
        if response.streaming:
            # A file from the artifact store, or a body streamed from the database before the
            # version is built: read whole, as a firewall would.
            body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
            return HttpResponse(body, status=response.status_code, headers=dict(response.items()))
        assert isinstance(response, HttpResponse)
        return response

    def cold() -> None:
        # No artifact: the body is streamed from the database (the web never builds one).
        FeedArtifact.objects.all().delete()

    active = Exemption.objects.active().count()
    rows: list[tuple[str, float, str]] = []  # label, median ms, detail
    with override_settings(ROOT_URLCONF=__name__):
        floor_body = copy_floor()
        floor = timed(runs, copy_floor)
        rows.append(("floor: COPY of the same rows (psycopg)", floor, f"{len(floor_body):,} bytes"))

        txt = "/api/v1/feeds/exemptions.txt"
        body = get(txt).content
        if body != floor_body:
            raise SystemExit("the text feed differs from COPY's output")
        warm_queries = count_queries(lambda: get(txt))
        etag = get(txt)["ETag"]
        rows.append(
            ("text feed, cold (body built)", timed(runs, lambda: get(txt), cold), f"{len(body):,} bytes")
        )
        rows.append(
            ("text feed, warm (body cached)", timed(runs, lambda: get(txt)), f"{warm_queries} SQL queries")
        )
        gz = get(txt, gzip)
        rows.append(
            ("text feed, gzip, cold", timed(runs, lambda: get(txt, gzip), cold), f"{len(gz.content):,} bytes")
        )
        rows.append(("text feed, gzip, warm", timed(runs, lambda: get(txt, gzip)), ""))
        not_modified = count_queries(lambda: get(txt, {"If-None-Match": etag}, 304))
        rows.append(
            (
                "text feed, 304 (If-None-Match)",
                timed(runs, lambda: get(txt, {"If-None-Match": etag}, 304)),
                f"{not_modified} SQL queries",
            )
        )

        js = "/api/v1/feeds/exemptions.json"
        body = get(js).content
        etag = get(js)["ETag"]
        rows.append(
            ("JSON feed, cold (body built)", timed(runs, lambda: get(js), cold), f"{len(body):,} bytes")
        )
        rows.append(("JSON feed, warm (body cached)", timed(runs, lambda: get(js)), ""))
        gz = get(js, gzip)
        rows.append(
            ("JSON feed, gzip, cold", timed(runs, lambda: get(js, gzip), cold), f"{len(gz.content):,} bytes")
        )
        rows.append(("JSON feed, gzip, warm", timed(runs, lambda: get(js, gzip)), ""))
        rows.append(
            ("JSON feed, 304 (If-None-Match)", timed(runs, lambda: get(js, {"If-None-Match": etag}, 304)), "")
        )

        naive_url = "/bench/naive-exemptions"
        naive_body = get(naive_url).content
        naive = timed(args.baseline_runs, lambda: get(naive_url))
        rows.append(("baseline: naive DRF ModelSerializer list", naive, f"{len(naive_body):,} bytes"))

    print(f"machine: {benchdb.machine()}")
    print(
        f"data: {active:,} active exemptions; "
        f"median of {runs} requests ({args.baseline_runs} for the baseline)"
    )
    print(f"{'':42} {'median':>10} {'naive DRF ÷ this':>17} {'this ÷ COPY':>12}  detail")
    for label, ms, detail in rows:
        print(f"{label:42} {ms:7.1f} ms {naive / ms:16.1f}x {ms / floor:11.2f}x  {detail}")


if __name__ == "__main__":
    main()
