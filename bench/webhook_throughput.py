"""Webhook deliveries per second: `manage.py runworker` processes against a plain httpx loop.

    .venv/bin/python bench/webhook_throughput.py [--quick] [--messages 10000] [--burst 100000]

Against its own PostgreSQL database (BENCH_DATABASE_URL, default bench_deliveries: it is dropped
and recreated). One receiver process on loopback speaks HTTP/1.1 with keep-alive and verifies
every message with the `standardwebhooks` reference library; everything is sent to it:

- the baseline: one httpx.Client posting signed messages in a loop, one connection;
- one worker, one endpoint (the same single connection as the baseline);
- one worker and two workers, ten endpoints;
- the burst: --burst messages to ten endpoints (a mass revoke of burst/10 exemptions), two workers.

Messages are inserted with one INSERT … SELECT FROM generate_series, then the workers are woken
with NOTIFY; a run ends when no message is pending. Loopback only, bounded by --timeout.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_deliveries")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import benchdb

# isort: split
import httpx
from django.core.management import call_command
from django.db import connection, transaction

from portal.core.wakeup import notify_workers
from portal.enforcement.models import Delivery, DeliveryState, WebhookEndpoint, WorkerHeartbeat
from portal.enforcement.webhooks import sign

ROOT = Path(__file__).resolve().parent.parent
# A made-up key for loopback only.
SECRET = "whsec_" + base64.b64encode(b"bench-webhook-throughput-key-32b").decode()
BODY = json.dumps(
    {
        "type": "exemption.revoked",
        "timestamp": "2026-12-02T10:00:00Z",
        "data": {
            "id": "5f0c6d3e-1b2a-4c5d-8e9f-0a1b2c3d4e5f",
            "tenant": "acme-1",
            "block": "203.0.113.5/32",
            "family": 4,
            "ports": [25],
            "state": "revoked",
            "sequence": 0,
        },
    }
)


def serve(port_file: str) -> None:
    """The receiver process: verify, count, answer 204 on a kept-alive connection."""
    from standardwebhooks.webhooks import Webhook

    verifier = Webhook(SECRET)
    counts = {"ok": 0, "bad": 0}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            try:
                verifier.verify(body, {k.lower(): v for k, v in self.headers.items()})
                outcome = "ok"
            except Exception:  # any refusal counts as bad
                outcome = "bad"
            with lock:
                counts[outcome] += 1
            self.send_response(204 if outcome == "ok" else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            with lock:
                data = json.dumps(counts).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 256
        daemon_threads = True

    server = Server(("127.0.0.1", 0), Handler)
    Path(port_file).write_text(str(server.server_address[1]))
    server.serve_forever()


class Receiver:
    def __init__(self) -> None:
        port_file = ROOT / "var" / f"bench-receiver-{os.getpid()}.port"
        port_file.unlink(missing_ok=True)
        self.process = subprocess.Popen([sys.executable, __file__, "--serve", str(port_file)])
        deadline = time.monotonic() + 20
        while not port_file.exists() or not port_file.read_text():
            if time.monotonic() > deadline:
                raise SystemExit("the receiver did not start")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{port_file.read_text()}"
        port_file.unlink()

    def counts(self) -> dict[str, int]:
        return dict(httpx.get(self.url + "/count").json())

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def httpx_loop(receiver: Receiver, count: int) -> float:
    """The floor: sign and post `count` messages on one kept-alive httpx connection."""
    before = receiver.counts()["ok"]
    started = time.perf_counter()
    with httpx.Client() as client:
        for n in range(count):
            message_id = f"msg_bench{n}"
            timestamp = int(time.time())
            headers = {
                "content-type": "application/json",
                "webhook-id": message_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": sign(SECRET, message_id, timestamp, BODY),
            }
            client.post(receiver.url + "/hooks/loop", content=BODY, headers=headers).raise_for_status()
    elapsed = time.perf_counter() - started
    assert receiver.counts()["ok"] - before == count, "every message verified"
    return count / elapsed


def start_workers(count: int) -> list[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        **benchdb.ENV,
        "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
        "WEBHOOK_ALLOW_HTTP": "1",
        "LOG_LEVEL": "WARNING",
    }
    workers = [
        subprocess.Popen([sys.executable, "manage.py", "runworker", "--poll", "1"], cwd=ROOT, env=env)
        for _ in range(count)
    ]
    deadline = time.monotonic() + 60
    names = [f"{socket.gethostname()}:{w.pid}" for w in workers]
    while WorkerHeartbeat.objects.filter(name__in=names).count() < count:
        if time.monotonic() > deadline:
            raise SystemExit("the workers did not start")
        time.sleep(0.1)
    return workers


def stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.wait(timeout=30)


def endpoints(receiver: Receiver, count: int) -> list[str]:
    WebhookEndpoint.objects.all().delete()
    return [
        str(WebhookEndpoint.objects.create(url=f"{receiver.url}/hooks/{n}", secret=SECRET).pk)
        for n in range(count)
    ]


def drain(receiver: Receiver, *, workers: int, endpoint_count: int, messages: int, timeout: float) -> float:
    """Deliveries per second of `workers` workers draining `messages` to `endpoint_count` endpoints."""
    Delivery.objects.all().delete()
    ids = endpoints(receiver, endpoint_count)
    running = start_workers(workers)
    before = receiver.counts()["ok"]
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO enforcement_delivery (uuid, message_id, endpoint_id, event, body, state,
                    attempts, next_attempt_at, created_at)
                SELECT gen_random_uuid(), 'msg_' || md5(g::text || random()::text),
                    (%s::uuid[])[1 + g %% %s], 'exemption.revoked', %s, 'pending', 0, now(), now()
                FROM generate_series(1, %s) AS g
                """,
                [ids, endpoint_count, BODY, messages],
            )
            notify_workers()
        started = time.perf_counter()
        deadline = time.monotonic() + timeout
        while Delivery.objects.filter(state=DeliveryState.PENDING).exists():
            if time.monotonic() > deadline:
                raise SystemExit(f"not drained within {timeout:g}s")
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
    finally:
        stop(running)
    counts = receiver.counts()
    assert counts["bad"] == 0, "every signature verified"
    delivered = Delivery.objects.filter(state=DeliveryState.DELIVERED).count()
    assert delivered == messages, f"{delivered} of {messages} delivered"
    assert counts["ok"] - before >= messages
    return messages / elapsed


def main() -> None:
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a _quick database")
    parser.add_argument("--messages", type=int, default=10_000, help="messages per throughput run")
    parser.add_argument("--burst", type=int, default=100_000, help="messages in the burst (0: skip)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds any one run may take")
    args = parser.parse_args()
    messages = 1_000 if args.quick else args.messages
    burst = 2_000 if args.quick else args.burst

    benchdb.recreate()
    call_command("migrate", verbosity=0)
    print(benchdb.machine())
    receiver = Receiver()
    try:
        floor = httpx_loop(receiver, messages)
        print(f"plain httpx loop, one connection:      {floor:8.0f}/s")
        one = drain(receiver, workers=1, endpoint_count=1, messages=messages, timeout=args.timeout)
        print(f"1 worker, 1 endpoint:                  {one:8.0f}/s  ({one / floor:.2f}x the loop)")
        ten = drain(receiver, workers=1, endpoint_count=10, messages=messages, timeout=args.timeout)
        print(f"1 worker, 10 endpoints:                {ten:8.0f}/s  ({ten / floor:.2f}x the loop)")
        two = drain(receiver, workers=2, endpoint_count=10, messages=messages, timeout=args.timeout)
        print(f"2 workers, 10 endpoints:               {two:8.0f}/s  ({two / ten:.2f}x one worker)")
        again = httpx_loop(receiver, messages)
        print(f"plain httpx loop again:                {again:8.0f}/s")
        if burst:
            rate = drain(receiver, workers=2, endpoint_count=10, messages=burst, timeout=args.timeout)
            print(f"burst of {burst:,}, 2 workers:        {burst / rate:7.1f} s  ({rate:.0f}/s)")
    finally:
        receiver.stop()
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
