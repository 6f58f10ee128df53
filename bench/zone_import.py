"""End to end: `manage.py import_dnsbl_zone` with a 2,000,000-entry zone against 1,000,000 allocated
addresses in the database, on PostgreSQL (sweep, and inet/cidr + GiST) and on SQLite (sweep).

    .venv/bin/python bench/zone_import.py [--entries 2000000] [--addresses 1000000] [--quick]

Generates the zone and allocations as bench/zone_intersection.py does, loads the allocations into
a database of its own (PostgreSQL: `bench_zoneimport`, dropped and recreated; SQLite: a temporary
file), with each intersection method (DNSBL_ZONE_INTERSECTION), then runs the management command
as a child process, twice: the first import (every listing is new: statuses and events written)
and a re-import of the same file (nothing changed). Each run reports wall time and the child's
peak RSS. The baseline is the DNS path's pass over the same addresses at DNSBL_QUERIES_PER_SECOND
(computed, since it is paced, not CPU-bound).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.zone_intersection import allocations, write_zone  # noqa: E402
from portal.lib.intervals import Block  # noqa: E402

PYTHON = sys.executable
PG_URL = os.environ.get("BENCH_ZONE_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_zoneimport")


def run(env: dict[str, str], *command: str) -> tuple[float, float, str]:
    """Run a child; its wall time, peak RSS (MB) and output."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [PYTHON, *command], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    output = process.stdout.read() if process.stdout else ""
    if status:
        raise SystemExit(f"{' '.join(command)} failed:\n{output}")
    return elapsed, usage.ru_maxrss / 1024, output.strip()


def load(env: dict[str, str], blocks: list[Block]) -> None:
    """Migrate and insert one tenant holding `blocks`, in a child with Django set up."""
    run(env, "manage.py", "migrate", "-v", "0")
    script = (
        "import ipaddress, sys\n"
        "from portal.accounts.models import Allocation, Tenant\n"
        "from portal.lib.ipblocks import bounds\n"
        "tenant = Tenant.objects.create(external_id='bench', name='Bench', account_opened_on='2025-01-01')\n"
        "rows = []\n"
        "for line in sys.stdin:\n"
        "    network = ipaddress.ip_network(line.strip())\n"
        "    a = Allocation(tenant=tenant)\n"
        "    a.set_network(network)\n"
        "    rows.append(a)\n"
        "Allocation.objects.bulk_create(rows, batch_size=5000)\n"
    )
    cidrs = "".join(f"{_address(b.first)}/{33 - (b.last - b.first + 1).bit_length()}\n" for b in blocks)
    subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", script], cwd=ROOT, env=env, input=cidrs, text=True, check=True
    )


def _address(number: int) -> str:
    return ".".join(str(number >> shift & 255) for shift in (24, 16, 8, 0))


def recreate_postgres(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    if not name.startswith("bench"):
        raise SystemExit(f"The bench database name must start with 'bench' (it gets dropped): {name!r}")
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=2_000_000)
    parser.add_argument("--addresses", type=int, default=1_000_000)
    parser.add_argument("--qps", type=float, default=20.0, help="the DNS path's DNSBL_QUERIES_PER_SECOND")
    parser.add_argument("--quick", action="store_true", help="200,000 entries, 100,000 addresses")
    parser.add_argument("--only", help='runs whose name starts with this, e.g. "postgresql, sweep"')
    parser.add_argument("--seed", type=int, default=25)
    args = parser.parse_args()
    if args.quick:
        args.entries, args.addresses = 200_000, 100_000
    rng = random.Random(args.seed)
    blocks = allocations(rng, args.addresses)
    allocated = sum(b.last - b.first + 1 for b in blocks)

    with tempfile.TemporaryDirectory() as directory:
        zone = Path(directory) / "zen.bench.ip4set"
        write_zone(zone, rng, args.entries, (blocks[0].first, blocks[-1].last))
        print(
            f"zone: {args.entries:,} entries ({zone.stat().st_size / 1e6:.0f} MB); allocations: "
            f"{len(blocks):,} blocks, {allocated:,} addresses; {os.cpu_count()} cores, "
            f"load average {os.getloadavg()[0]:.2f}"
        )
        runs = {
            "postgresql, sweep": (PG_URL, "sweep"),
            "postgresql, GiST": (PG_URL, "postgresql"),
            "sqlite, sweep": (f"sqlite:///{directory}/bench.sqlite3", "sweep"),
        }
        for name, (url, method) in runs.items():
            if args.only and not name.startswith(args.only):
                continue
            if url.startswith("postgres"):
                recreate_postgres(url)
            env = {**os.environ, "DATABASE_URL": url, "DEBUG": "0", "SECRET_KEY": "bench-" + "x" * 50}
            env.update({"ALLOWED_HOSTS": "localhost", "LOG_LEVEL": "WARNING"})
            env["DNSBL_ZONE_INTERSECTION"] = method
            load(env, blocks)
            command = ("manage.py", "import_dnsbl_zone", "--zone", "zen.bench", str(zone))
            for label in ("first import", "re-import, unchanged"):
                seconds, rss, output = run(env, *command)
                print(f"{name}, {label}: {seconds:.1f} s, peak RSS {rss:.0f} MB — {output.splitlines()[-1]}")
    hours = allocated / args.qps / 3600
    print(f"DNS path, one pass over {allocated:,} addresses at {args.qps:g} qps: {hours:.1f} h (computed)")


if __name__ == "__main__":
    main()
