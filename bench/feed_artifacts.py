"""Feed snapshots built once by the worker and served from the artifact store, against the floors.

    .venv/bin/python bench/feed_artifacts.py [--sizes 10000,100000,1000000] [--seconds 5]

For each size, in a database of its own (bench_feeds_<size>, generated with generate_series,
reused when it exists):

- build: the worker's job (every format, gzip beside each) in a fresh process: time and peak RSS;
  the JSON body alone; the floor is PostgreSQL's COPY of the same rows through psycopg;
- serve: gunicorn with 4 sync workers running the portal, and beside it gunicorn with 4 sync
  workers running WhiteNoise over a copy of the same text file; wrk (loopback only, fixed
  duration) against both, in turns: 304s at 16 connections, full bodies at 64, p99 at 64; the
  web processes' RSS after the run.

Everything listens on 127.0.0.1 and stops by itself; figures are ratios to the baseline of the
same run, with the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
BASE_URL = "postgres://postgres@127.0.0.1:5432"
TENANTS = 100


def setup(size: int) -> None:
    """Point Django at this size's database (created and filled if missing)."""
    os.environ["BENCH_DATABASE_URL"] = f"{BASE_URL}/bench_feeds_{size}"
    sys.path.insert(0, str(ROOT))
    from bench import benchdb

    label = f"feed_artifacts {size}"
    if benchdb.exists() and benchdb.comment() == label:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        return
    generate(size, benchdb)
    benchdb.set_comment(label)


def generate(size: int, benchdb: Any) -> None:
    from django.core.management import call_command
    from django.db import connection

    started = time.perf_counter()
    benchdb.recreate()
    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO accounts_tenant (id, external_id, name, account_opened_on, identity_verified,"
            " billing_standing, paid_invoices, abuse_contact, created_at, updated_at)"
            " SELECT gen_random_uuid(), 'tenant-' || n, 'Tenant ' || n, date '2024-01-01', true,"
            " 'good', 12, '', now(), now() FROM generate_series(1, %s) n",
            [TENANTS],
        )
        # One in ten IPv6; nine in ten with an expiry; all active.
        cursor.execute(
            "WITH t AS (SELECT id, row_number() OVER (ORDER BY external_id) - 1 AS k FROM accounts_tenant)"
            " INSERT INTO enforcement_exemption (id, cidr, family, first, last, tenant_id, request_id,"
            " state, expires_at, created_at, state_changed_at, state_reason, reinstatement_note)"
            " SELECT gen_random_uuid(),"
            "  CASE WHEN n %% 10 = 0 THEN host(inet '2001:db8::' + n) ELSE host(inet '10.0.0.0' + n) END,"
            "  CASE WHEN n %% 10 = 0 THEN 6 ELSE 4 END,"
            "  CASE WHEN n %% 10 = 0 THEN '20010db80000000000000000' || lpad(to_hex(n), 8, '0')"
            "   ELSE lpad(to_hex(167772160 + n), 8, '0') END,"
            "  CASE WHEN n %% 10 = 0 THEN '20010db80000000000000000' || lpad(to_hex(n), 8, '0')"
            "   ELSE lpad(to_hex(167772160 + n), 8, '0') END,"
            "  t.id, NULL, 'active',"
            "  CASE WHEN n %% 10 = 3 THEN NULL ELSE now() + (n %% 365) * interval '1 day' END,"
            "  now(), now(), '', ''"
            " FROM generate_series(1, %s) n JOIN t ON t.k = n %% %s",
            [size, TENANTS],
        )
        cursor.execute(
            "INSERT INTO enforcement_feedchange (seq, exemption_id, op, event, cidr, family,"
            " tenant_external_id, at) SELECT 1, e.id, 'add', 'exemption.activated', e.cidr, e.family,"
            " 'tenant-1', now() FROM enforcement_exemption e LIMIT 1"
        )
        cursor.execute("VACUUM ANALYZE")
    print(f"  fixtures: {size:,} exemptions generated in {time.perf_counter() - started:.1f} s", flush=True)


def measure_build(size: int) -> dict[str, float]:
    """In this (fresh) process: COPY floors, the JSON body alone, then the worker's whole job."""
    import resource

    from django.db import connection

    from portal.enforcement import artifacts
    from portal.enforcement.models import FeedArtifact

    FeedArtifact.objects.all().delete()
    active = (
        "FROM enforcement_exemption e JOIN accounts_tenant t ON t.id = e.tenant_id"
        " WHERE e.state = 'active' ORDER BY e.family, e.first"
    )

    def copy_seconds(sql: str) -> float:
        started = time.perf_counter()
        with connection.cursor() as cursor, cursor.cursor.copy(f"COPY ({sql}) TO STDOUT") as copy:
            for _ in copy:
                pass
        return time.perf_counter() - started

    figures: dict[str, float] = {}
    figures["copy_txt"] = min(copy_seconds(f"SELECT e.cidr {active}") for _ in range(3))
    figures["copy_json"] = min(
        copy_seconds(f"SELECT e.id, t.external_id, e.cidr, e.family, e.expires_at, e.request_id {active}")
        for _ in range(3)
    )

    def render(kind: str) -> float:
        started = time.perf_counter()
        with artifacts.snapshot() as (seq, _):
            for _ in artifacts.chunks(kind, None, seq):
                pass
        return time.perf_counter() - started

    figures["render_txt"] = min(render("txt") for _ in range(3))
    figures["render_json"] = min(render("json") for _ in range(3))
    started = time.perf_counter()
    figures["built"] = artifacts.build_current()
    figures["build_all"] = time.perf_counter() - started
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    txt = artifacts.current("txt-all", artifacts.version_of(*artifacts.feed_state()))
    assert txt is not None
    figures["txt_bytes"] = txt.size
    return figures


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(args: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"gunicorn did not start: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def workers_rss_mb(proc: subprocess.Popen[bytes]) -> float:
    """The largest RSS among the gunicorn workers (children of the arbiter)."""
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    sizes = []
    for pid in children:
        status = Path(f"/proc/{pid}/status").read_text()
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        if match:
            sizes.append(int(match.group(1)) / 1024)
    return max(sizes, default=0.0)


def wrk(url: str, connections: int, seconds: int, headers: list[str]) -> dict[str, float]:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    for header in headers:
        command += ["-H", header]
    out = subprocess.run([*command, url], capture_output=True, text=True, timeout=seconds + 30).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rate,
        "p99_ms": float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan"),
        "non_2xx_3xx": float(errors.group(1)) if errors else 0.0,
    }


def measure_serving(size: int, seconds: int) -> dict[str, Any]:
    from django.conf import settings

    from portal.accounts.models import ApiKey, Scope
    from portal.enforcement import artifacts

    _, key = ApiKey.issue(name="bench firewall", scope=Scope.ENFORCEMENT, tenant=None, created_by=None)
    version = artifacts.version_of(*artifacts.feed_state())
    built = artifacts.current("txt-all", version)
    assert built is not None, "build the artifacts first"
    static_root = Path(tempfile.mkdtemp(prefix="bench-whitenoise-"))
    try:
        with (
            artifacts.feed_storage().open(built.name, "rb") as source,
            open(static_root / "exemptions.txt", "wb") as f,
        ):
            shutil.copyfileobj(source, f)
        env = {**os.environ, "FEED_STORAGE_DIR": str(settings.FEED_STORAGE_DIR), "WEB_CONCURRENCY": "4"}
        portal_port, static_port = free_port(), free_port()
        common = ["--workers", "4", "--worker-class", "sync", "--log-level", "warning"]
        portal = start(
            [GUNICORN, "portal.wsgi:application", "--bind", f"127.0.0.1:{portal_port}", *common],
            env,
            portal_port,
        )
        static = start(
            [GUNICORN, "bench.static_wsgi:application", "--bind", f"127.0.0.1:{static_port}", *common],
            {**env, "BENCH_STATIC_ROOT": str(static_root)},
            static_port,
        )
        try:
            feed_url = f"http://127.0.0.1:{portal_port}/api/v1/feeds/exemptions.txt"
            static_url = f"http://127.0.0.1:{static_port}/exemptions.txt"
            auth = f"Authorization: Bearer {key}"
            etag = f'"txt-all-{version}"'
            import urllib.request

            request = urllib.request.Request(static_url)
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback http, built here
                static_etag = response.headers["ETag"]
            with urllib.request.urlopen(
                urllib.request.Request(feed_url, headers={"Authorization": f"Bearer {key}"}), timeout=30
            ) as response:
                assert response.headers["ETag"] == etag, response.headers["ETag"]
            # Each gunicorn worker imports the URL conf and opens its connection on its first
            # request: not what is measured.
            wrk(feed_url, 16, 2, [auth, f"If-None-Match: {etag}"])
            wrk(static_url, 16, 2, [])
            results: dict[str, Any] = {}
            for name, connections, feed_headers, static_headers in (
                ("304 at 16", 16, [auth, f"If-None-Match: {etag}"], [f"If-None-Match: {static_etag}"]),
                ("full at 64", 64, [auth], []),
            ):
                feed = wrk(feed_url, connections, seconds, feed_headers)
                base = wrk(static_url, connections, seconds, static_headers)
                results[name] = {"feed": feed, "whitenoise": base}
                print(
                    f"  {name}: feed {feed['rps']:,.0f} req/s p99 {feed['p99_ms']:.1f} ms;"
                    f" WhiteNoise {base['rps']:,.0f} req/s p99 {base['p99_ms']:.1f} ms;"
                    f" ratio {feed['rps'] / base['rps']:.2f}x, p99 {feed['p99_ms'] / base['p99_ms']:.2f}x"
                    f" (errors {feed['non_2xx_3xx']:.0f}/{base['non_2xx_3xx']:.0f})",
                    flush=True,
                )
            results["web_rss_mb"] = workers_rss_mb(portal)
            results["whitenoise_rss_mb"] = workers_rss_mb(static)
            print(
                f"  web process RSS after the run: portal {results['web_rss_mb']:.0f} MB,"
                f" WhiteNoise {results['whitenoise_rss_mb']:.0f} MB",
                flush=True,
            )
            return results
        finally:
            stop(portal)
            stop(static)
    finally:
        shutil.rmtree(static_root, ignore_errors=True)


def child(size: int, what: str, seconds: int) -> None:
    setup(size)
    result = measure_build(size) if what == "build" else measure_serving(size, seconds)
    print("RESULT " + json.dumps(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--seconds", type=int, default=5, help="duration of each wrk run")
    parser.add_argument("--child", nargs=2, metavar=("SIZE", "WHAT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(int(args.child[0]), args.child[1], args.seconds)
        return
    if shutil.which("wrk") is None:
        raise SystemExit("needs wrk: apt-get install -y wrk")
    storage = tempfile.mkdtemp(prefix="bench-feeds-")
    env = {**os.environ, "FEED_STORAGE_DIR": storage}
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            print(f"{size:,} exemptions (load average {os.getloadavg()[0]:.2f})", flush=True)
            for what in ("build", "serve"):
                # A fresh process each: peak RSS is the build's own, and nothing is warm.
                out = subprocess.run(
                    [PYTHON, __file__, "--child", str(size), what, "--seconds", str(args.seconds)],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=3600,
                )
                sys.stdout.write(
                    "".join(line + "\n" for line in out.stdout.splitlines() if not line.startswith("RESULT"))
                )
                if out.returncode:
                    raise SystemExit(out.stderr[-3000:])
                if what == "build":
                    b = json.loads(out.stdout.split("RESULT ", 1)[1])
                    print(
                        f"  build: all {int(b['built'])} formats + gzip {b['build_all']:.2f} s, peak RSS"
                        f" {b['peak_rss_mb']:.0f} MB; JSON body {b['render_json']:.2f} s vs COPY"
                        f" {b['copy_json']:.2f} s ({b['render_json'] / b['copy_json']:.2f}x); text body"
                        f" {b['render_txt']:.2f} s vs COPY {b['copy_txt']:.2f} s"
                        f" ({b['render_txt'] / b['copy_txt']:.2f}x); text file {b['txt_bytes'] / 1e6:.2f} MB",
                        flush=True,
                    )
        print(f"load average at the end {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(storage, ignore_errors=True)


if __name__ == "__main__":
    main()
