"""Provisioning a tenant with 10,000 allocations through PUT /api/v1/tenants/{external_id}.

    .venv/bin/python bench/provisioning.py [--quick] [--blocks 10000] [--others 100000]

Against its own PostgreSQL database (BENCH_DATABASE_URL, default bench_provisioning: it is
dropped and recreated), holding --others active allocations of 1,000 other tenants so that the
overlap checks have rows to search. Through django.test.Client with a provisioning key (the
whole middleware and DRF stack, no network), it times:

- creating a tenant with --blocks allocations;
- the same PUT again (nothing changes);
- a reshape: half the blocks released, as many new ones allocated;
- the baseline: the previous code path, one overlap query and one INSERT per block, run here on
  --baseline-blocks blocks and compared per block.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_provisioning")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import benchdb

# isort: split
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from portal.accounts.models import Allocation, ApiKey, Scope, Tenant
from portal.lib.ipblocks import Network

DOCUMENTATION = ipaddress.ip_network("2001:db8::/32")


def v6_blocks(count: int, *, start: int) -> list[str]:
    """`count` /64s of 2001:db8::/32, from the `start`-th on."""
    base = int(DOCUMENTATION.network_address) >> 64
    return [f"{ipaddress.IPv6Address((base + start + n) << 64)}/64" for n in range(count)]


def other_tenants(total: int) -> None:
    """`total` /29s of 10.0.0.0/8, spread over 1,000 tenants, written in bulk."""
    tenants = Tenant.objects.bulk_create(
        Tenant(external_id=f"other-{n}", name=f"Other {n}", account_opened_on=date(2024, 1, 1))
        for n in range(1000)
    )
    base = int(ipaddress.IPv4Address("10.0.0.0"))
    rows = []
    for n in range(total):
        allocation = Allocation(tenant=tenants[n % len(tenants)])
        allocation.set_network(ipaddress.IPv4Network((base + 8 * n, 29)))
        rows.append(allocation)
    Allocation.objects.bulk_create(rows, batch_size=5000)


def row_by_row(tenant: Tenant, networks: list[Network]) -> None:
    """The baseline: what provisioning did before, one query and one INSERT per block."""
    with transaction.atomic():
        now = timezone.now()
        for network in networks:
            clash = Allocation.objects.active().exclude(tenant=tenant).overlapping(network).first()
            assert clash is None
            allocation = Allocation(tenant=tenant, assigned_at=now)
            allocation.set_network(network)
            allocation.save()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1,000 blocks and 10,000 other allocations")
    parser.add_argument("--blocks", type=int, default=10_000)
    parser.add_argument("--others", type=int, default=100_000)
    parser.add_argument("--baseline-blocks", type=int, default=2_000)
    args = parser.parse_args()
    blocks, others, baseline_blocks = args.blocks, args.others, args.baseline_blocks
    if args.quick:
        blocks, others, baseline_blocks = 1_000, 10_000, 500

    benchdb.recreate()
    call_command("migrate", verbosity=0)
    start = time.perf_counter()
    other_tenants(others)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"fixtures: {others:,} allocations of 1,000 other tenants ({time.perf_counter() - start:.1f} s)")
    print(f"machine: {benchdb.machine()}")

    _, key = ApiKey.issue(name="bench provisioning", scope=Scope.PROVISIONING, tenant=None, created_by=None)
    client = Client(headers={"Authorization": f"Bearer {key}"})

    def put(label: str, allocations: list[str], expected: int) -> float:
        body = json.dumps(
            {"name": "Bench Tenant", "account_opened_on": "2025-01-01", "allocations": allocations}
        )
        started = time.perf_counter()
        response = client.put("/api/v1/tenants/bench-1", body, content_type="application/json")
        elapsed = time.perf_counter() - started
        if response.status_code != expected:
            raise SystemExit(f"{label}: HTTP {response.status_code}: {response.content[:300]!r}")
        print(f"{label:52} {elapsed:7.2f} s  {len(body):,} B body")
        return elapsed

    first = v6_blocks(blocks, start=0)
    created = put(f"PUT, new tenant, {blocks:,} allocations", first, 201)
    put("the same PUT again (no change)", first, 200)
    reshaped = first[blocks // 2 :] + v6_blocks(blocks // 2, start=blocks)
    put(f"PUT, {blocks // 2:,} released and {blocks // 2:,} allocated", reshaped, 200)
    active = Allocation.objects.filter(tenant__external_id="bench-1").active().count()
    assert active == blocks, active

    baseline_tenant = Tenant.objects.create(
        external_id="bench-baseline", name="Baseline", account_opened_on=date(2025, 1, 1)
    )
    networks = [ipaddress.ip_network(b) for b in v6_blocks(baseline_blocks, start=10 * blocks)]
    started = time.perf_counter()
    row_by_row(baseline_tenant, networks)
    baseline = time.perf_counter() - started
    per_block_ms = baseline / baseline_blocks * 1000
    print(
        f"{'baseline: row by row, ' + f'{baseline_blocks:,} allocations':52} {baseline:7.2f} s  "
        f"({per_block_ms:.2f} ms a block, {per_block_ms * blocks / 1000:.1f} s for {blocks:,})"
    )
    print(
        f"PUT of {blocks:,} allocations: {created:.2f} s (goal: under 5 s), "
        f"{per_block_ms * blocks / 1000 / created:.1f}x faster than row by row"
    )


if __name__ == "__main__":
    main()
