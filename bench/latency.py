"""How long a change takes to reach a webhook receiver, through a real worker process.

    .venv/bin/python bench/latency.py [--quick] [--samples 20]

Starts `manage.py runworker --poll 30` (so that only PostgreSQL's NOTIFY can wake it quickly)
and an HTTP receiver on loopback, on the bench database with its volume fixtures, and measures:

- approval → exemption.activated received: from the commit of `approve_request` to the moment
  the receiver has the signed message;
- abuse → exemption.suspended received: from the moment the abuse desk POSTs the complaint that
  crosses SUSPEND_AFTER_COMPLAINTS (to /api/v1/reputation/events, with a provisioning key) to
  the moment the receiver has the message; the policy reads the address's complaints among the
  fixtures' reputation events.

The baseline is the same with NOTIFY switched off (the bench process's notify_workers is a
no-op) and the worker polling every 2 s (WORKER_POLL_SECONDS' default): what polling alone gives.

The third run is the first while the same worker runs the DNSBL monitor without pause: a slice
of --monitor-addresses look-ups (10,000) every 20 s, paced over those 20 s, against a DNS server
process on loopback that answers NXDOMAIN after 5 ms (a resolver's latency), each answer written
to the listing state. Deliveries have a lane (thread) of their own, so they must not wait for it.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import IO
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import benchdb

# isort: split
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from bench import fixtures
from portal.accounts.models import Actor, Allocation, ApiKey, Scope, Tenant
from portal.demo.dnsserver import running
from portal.enforcement.models import (
    Delivery,
    DeliveryState,
    Exemption,
    PeriodicJob,
    WebhookEndpoint,
    WorkerHeartbeat,
)
from portal.reputation.models import ListingStatus
from portal.unblock.models import RequestedBlock, State, UnblockRequest
from portal.workflows.decisions import approve_request
from tests.enforcement.receiver import Receiver, running_receiver

# Loopback only, plain HTTP: what the receiver needs, in the worker's environment and ours.
WEBHOOK_ENV = {"WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8", "WEBHOOK_ALLOW_HTTP": "1"}
# Addresses no fixture uses, so that no earlier complaint or exemption interferes.
SPACE = ipaddress.IPv4Network("100.64.0.0/16")
TIMEOUT = 60.0


@dataclass
class Series:
    label: str
    seconds: list[float]

    def row(self, target: float | None) -> str:
        ordered = sorted(self.seconds)
        p95, p99 = (ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] for q in (0.95, 0.99))
        verdict = (
            ""
            if target is None
            else ("  meets" if max(ordered) < target else "  MISSES") + f" < {target:g} s"
        )
        return (
            f"{self.label:68} {len(ordered):3} {statistics.median(ordered) * 1000:8.0f} ms "
            f"{p95 * 1000:8.0f} ms {p99 * 1000:8.0f} ms {ordered[-1] * 1000:8.0f} ms{verdict}"
        )


@contextmanager
def worker(poll: float, log: IO[str], env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    """A `manage.py runworker` process of our own, ready when its first heartbeat is written."""
    started = timezone.now()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runworker", "--poll", str(poll)],
        cwd=benchdb.ROOT,
        env={**os.environ, **benchdb.ENV, **WEBHOOK_ENV, "LOG_LEVEL": "INFO", **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        name_suffix = f":{process.pid}"
        deadline = time.monotonic() + TIMEOUT
        while not WorkerHeartbeat.objects.filter(name__endswith=name_suffix, seen_at__gte=started).exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the worker did not start; see {log.name}")
            time.sleep(0.05)
        time.sleep(0.5)  # past its first loop, waiting in LISTEN
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(receiver: Receiver, event: str, exemption_id: str) -> float:
    """perf_counter() when the receiver got `event` about the exemption."""
    seen = 0
    deadline = time.perf_counter() + TIMEOUT
    while time.perf_counter() < deadline:
        receiver.arrived.wait(0.05)
        with receiver.lock:
            receiver.arrived.clear()
            fresh, seen = receiver.received[seen:], len(receiver.received)
        for message in fresh:
            payload = json.loads(message.body)
            if payload["type"] == event and payload["data"]["id"] == exemption_id:
                return time.perf_counter()
    raise SystemExit(f"no {event} for {exemption_id} within {TIMEOUT:g} s")


class Scenario:
    def __init__(self, receiver: Receiver, samples: int) -> None:
        self.receiver = receiver
        self.samples = samples
        self.tenant, _ = Tenant.objects.get_or_create(
            external_id="bench-latency",
            defaults={
                "name": "Latency Bench",
                "account_opened_on": date(2020, 1, 1),
                "identity_verified": True,
            },
        )
        if not self.tenant.allocations.exists():
            allocation = Allocation(tenant=self.tenant, assigned_at=timezone.now() - timedelta(days=365))
            allocation.set_network(SPACE)
            allocation.save()
        self.approver = User.objects.get(username="approver0@staff.bench")
        _, key = ApiKey.issue(name="bench abuse desk", scope=Scope.PROVISIONING, tenant=None, created_by=None)
        self.abuse_desk = Client(headers={"Authorization": f"Bearer {key}"})
        self.approve_ms: list[float] = []
        self.post_ms: list[float] = []

    def next_address(self) -> ipaddress.IPv4Network:
        used = Exemption.objects.filter(tenant=self.tenant).count()
        return ipaddress.IPv4Network((int(SPACE.network_address) + used + 1, 32))

    def approval(self) -> tuple[Exemption, float]:
        now = timezone.now()
        req = UnblockRequest.objects.create(
            tenant=self.tenant,
            state=State.IN_REVIEW,
            use_case="own_mail_server",
            submitted_at=now,
            state_changed_at=now,
        )
        block = RequestedBlock(request=req)
        block.set_network(self.next_address())
        block.save()
        start = time.perf_counter()
        (exemption,) = approve_request(req=req, actor=Actor(user=self.approver), note="latency bench")
        committed = time.perf_counter()  # approve_request returns once its transaction committed
        arrived = wait_for(self.receiver, "exemption.activated", str(exemption.id))
        self.approve_ms.append((committed - start) * 1000)
        return exemption, arrived - committed

    def complaint(self, exemption: Exemption) -> None:
        body = {"address": exemption.cidr, "source": "abuse_report", "kind": "complaint", "summary": "bench"}
        response = self.abuse_desk.post("/api/v1/reputation/events", body, content_type="application/json")
        if response.status_code != 201:
            raise SystemExit(f"reputation event: HTTP {response.status_code} {response.content[:200]!r}")

    def abuse(self, exemption: Exemption) -> float:
        for _ in range(settings.SUSPEND_AFTER_COMPLAINTS - 1):
            self.complaint(exemption)
        start = time.perf_counter()
        self.complaint(exemption)
        self.post_ms.append((time.perf_counter() - start) * 1000)
        return wait_for(self.receiver, "exemption.suspended", str(exemption.id)) - start

    def run(self, label: str, jitter: float) -> tuple[Series, Series]:
        """`jitter`: a random pause of up to that many seconds before each change, so that the
        changes don't fall in step with a polling worker's cycle."""
        approvals, suspensions = [], []
        for _ in range(self.samples):
            # Let the worker finish its loop (emails, periodic jobs) and wait again.
            time.sleep(0.2 + random.uniform(0, jitter))
            exemption, seconds = self.approval()
            approvals.append(seconds)
            time.sleep(0.2 + random.uniform(0, jitter))
            suspensions.append(self.abuse(exemption))
        return (
            Series(f"approval → activated webhook, {label}", approvals),
            Series(f"abuse complaint → suspended webhook, {label}", suspensions),
        )


def prepare() -> None:
    """Keep the worker on the work we measure: no DNSBL sweep of 100,000 addresses, no leftovers."""
    PeriodicJob.objects.update_or_create(
        name="monitor_dnsbl", defaults={"next_run_at": timezone.now() + timedelta(days=1)}
    )
    WebhookEndpoint.objects.update(enabled=False)
    Delivery.objects.filter(state=DeliveryState.PENDING).update(state=DeliveryState.FAILED)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    fixtures.add_arguments(parser)
    parser.add_argument("--samples", type=int, default=20, help="approvals and suspensions per run")
    parser.add_argument("--poll", type=float, default=30.0, help="the worker's poll interval with NOTIFY")
    parser.add_argument("--baseline-poll", type=float, default=2.0, help="the poll-only worker's interval")
    parser.add_argument(
        "--monitor-addresses", type=int, default=10_000, help="DNSBL look-ups per monitor slice (busy run)"
    )
    args = parser.parse_args()
    fixtures.ensure(fixtures.sizes_from(args))
    os.environ.update(WEBHOOK_ENV)
    settings.WEBHOOK_ALLOWED_NETWORKS, settings.WEBHOOK_ALLOW_HTTP = ["127.0.0.0/8"], True
    prepare()

    results: list[tuple[Series, Series]] = []
    with (
        tempfile.NamedTemporaryFile("w", prefix="bench-worker-", suffix=".log", delete=False) as log,
        running_receiver() as receiver,
    ):
        WebhookEndpoint.objects.create(
            url=receiver.url,
            description="bench/latency.py",
            event_types=["exemption.activated", "exemption.suspended"],
        )
        scenario = Scenario(receiver, args.samples)
        runs: list[tuple[str, float, Callable[[], AbstractContextManager[object]]]] = [
            (f"NOTIFY, --poll {args.poll:g}", args.poll, nullcontext),
            (f"poll only, --poll {args.baseline_poll:g}", args.baseline_poll, no_notify),
        ]
        for label, poll, patch in runs:
            with patch(), worker(poll, log):
                print(f"latency: {label}: {args.samples} approvals and suspensions …", flush=True)
                results.append(scenario.run(label, jitter=args.baseline_poll))
        label = f"NOTIFY + DNSBL monitor, --poll {args.poll:g}"
        with monitor_running(args.monitor_addresses) as env:
            started, clock = timezone.now(), time.monotonic()
            with worker(args.poll, log, env):
                print(f"latency: {label}: {args.samples} approvals and suspensions …", flush=True)
                results.append(scenario.run(label, jitter=args.baseline_poll))
            busy_seconds = time.monotonic() - clock
            # Addresses whose listing state a slice wrote while we measured (an address is asked
            # once per slice, oldest first, so this undercounts only if a pass wraps around).
            monitored = ListingStatus.objects.filter(checked_at__gte=started).count()
            last_slice = PeriodicJob.objects.get(name="monitor_dnsbl").last_result
        WebhookEndpoint.objects.filter(url=receiver.url).update(enabled=False)

    print(f"machine: {benchdb.machine()}")
    print(
        f"data: {Exemption.objects.active().count():,} active exemptions, fixtures {benchdb.comment()}; "
        f"SUSPEND_AFTER_COMPLAINTS={settings.SUSPEND_AFTER_COMPLAINTS}; worker log: {log.name}"
    )
    print(f"{'':68} {'n':>3} {'median':>11} {'p95':>11} {'p99':>11} {'max':>11}")
    (approve_notify, abuse_notify), (approve_poll, abuse_poll), (approve_busy, abuse_busy) = results
    print(approve_notify.row(1.0))
    print(approve_busy.row(1.0))
    print(approve_poll.row(None))
    print(abuse_notify.row(2.0))
    print(abuse_busy.row(2.0))
    print(abuse_poll.row(None))
    print(
        f"DNSBL monitor in the same worker during the busy run: {monitored:,} addresses looked up and "
        f"recorded in {busy_seconds:.0f} s; last slice: {last_slice}"
    )
    for fast, slow in ((approve_notify, approve_poll), (abuse_notify, abuse_poll)):
        ratio = statistics.median(slow.seconds) / statistics.median(fast.seconds)
        print(f"NOTIFY vs polling, {fast.label.split(',')[0]}: {ratio:.0f}x faster (median)")
    print(
        f"inside the bench process: approve_request {statistics.median(scenario.approve_ms):.0f} ms, "
        f"the complaint's POST {statistics.median(scenario.post_ms):.0f} ms (medians)"
    )


@contextmanager
def monitor_running(per_slice: int) -> Iterator[dict[str, str]]:
    """The worker environment for a DNSBL monitor that never rests: a slice of `per_slice`
    look-ups every SLICE seconds, paced over them, on a loopback DNS server that answers slowly."""
    slice_seconds = 20
    with running({"_delay_ms": 5}) as port:
        PeriodicJob.objects.filter(name="monitor_dnsbl").update(next_run_at=timezone.now())
        try:
            yield {
                "DNS_NAMESERVERS": "127.0.0.1",
                "DNS_PORT": str(port),
                "DNS_TIMEOUT": "2",
                "DNSBL_ZONE": "zen.bench",
                "DNSBL_EXTRA_ZONES": "",
                "SPAMHAUS_DQS_KEY": "",
                "DNSBL_ZONE_DIR": "",
                "DNSBL_ZONE_FILES": "",
                # Every address is due again at once; each slice takes per_slice of them (the
                # monitored space is larger) and asks them over the slice's 20 s.
                "DNSBL_MIN_RECHECK_MINUTES": "0",
                "DNSBL_MONITOR_MINUTES": "1",
                "DNSBL_MONITOR_SLICE_SECONDS": str(slice_seconds),
                "DNSBL_QUERIES_PER_SECOND": str(per_slice / slice_seconds),
            }
        finally:
            prepare()


@contextmanager
def no_notify() -> Iterator[None]:
    """The bench process commits without NOTIFY, so the worker only finds work when it polls."""
    with (
        mock.patch("portal.enforcement.changes.notify_workers", return_value=None),
        mock.patch("portal.enforcement.webhooks.notify_workers", return_value=None),
    ):
        yield


if __name__ == "__main__":
    main()
