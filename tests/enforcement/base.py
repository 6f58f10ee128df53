"""What the enforcement tests share: approving requests into exemptions, webhook endpoints that
point at the loopback receiver, and (for PostgreSQL) the cast outside a transaction plus real
`manage.py runworker` processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.test import TransactionTestCase, override_settings
from django.utils import timezone

from portal.accounts.models import Actor, Membership, Tenant
from portal.demo.dnsserver import running
from portal.enforcement.models import Exemption, PeriodicJob, WebhookEndpoint
from portal.workflows.decisions import approve_request
from portal.workflows.periodic import schedule
from tests.base import PortalTestCase, allocate, make_request, make_user
from tests.enforcement.receiver import Receiver
from tests.vetting.zone import DNSBL

ROOT = Path(__file__).resolve().parent.parent.parent

# The receiver listens on 127.0.0.1 over plain http: allow exactly that, as an operator would
# for an internal network.
deliver_to_loopback = override_settings(WEBHOOK_ALLOWED_NETWORKS=["127.0.0.0/8"], WEBHOOK_ALLOW_HTTP=True)


def approve(tenant: Tenant, *cidrs: str, by: User) -> list[Exemption]:
    """File and approve a request for `cidrs`: one durable transaction, as a reviewer's click."""
    return approve_request(req=make_request(tenant, *cidrs), actor=Actor(user=by), note="ok")


def endpoint_for(receiver: Receiver, **fields: Any) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.create(url=receiver.url, **fields)
    receiver.secrets = [endpoint.secret]
    return endpoint


@contextmanager
def dnsbl(zone: dict[str, Any]) -> Iterator[None]:
    """A real DNS server process serving `zone`, as the only DNSBL the monitor asks."""
    with (
        running(zone) as port,
        override_settings(
            DNS_NAMESERVERS=["127.0.0.1"],
            DNS_PORT=port,
            DNS_TIMEOUT=1,
            DNSBL_ZONE=DNSBL,
            DNSBL_EXTRA_ZONES=[],
            SPAMHAUS_DQS_KEY="",
            # Each monitor run is a whole pass over every allocated address, asking again at once.
            DNSBL_MONITOR_SLICE_SECONDS=settings.DNSBL_MONITOR_MINUTES * 60,
            DNSBL_MIN_RECHECK_MINUTES=["0"],
            DNSBL_QUERIES_PER_SECOND=10_000,
            DNSBL_ZONE_DIR="",
            DNSBL_ZONE_FILES=[],
        ),
    ):
        yield


class EnforcementTestCase(PortalTestCase):
    def approve(self, *cidrs: str, tenant: Tenant | None = None) -> list[Exemption]:
        return approve(tenant or self.acme, *cidrs, by=self.ada)


@unittest.skipUnless(connection.vendor == "postgresql", "needs PostgreSQL (set DATABASE_URL=postgres://…)")
class PostgresTestCase(TransactionTestCase):
    """Committed data, so that other connections, threads and processes see it."""

    acme: Tenant
    alice: User
    ada: User
    root: User

    def setUp(self) -> None:
        self.acme = Tenant.objects.create(
            external_id="acme-1",
            name="Acme Ltd",
            account_opened_on=date(2025, 1, 1),
            identity_verified=True,
            abuse_contact="abuse@acme.example",
        )
        allocate(self.acme, "203.0.113.0/24")
        allocate(self.acme, "2001:db8:a::/48")
        self.alice = make_user("alice@acme.example")
        Membership.objects.create(user=self.alice, tenant=self.acme)
        self.ada = make_user("ada@provider.example", "reviewer", "approver")
        self.root = make_user("root@provider.example", "reviewer", "approver", "admin")

    def approve(self, *cidrs: str) -> list[Exemption]:
        return approve(self.acme, *cidrs, by=self.ada)

    def postpone_periodic_jobs(self) -> None:
        """Make no periodic job due, so that workers only deliver (no DNSBL look-ups outside)."""
        later = timezone.now() + timedelta(days=1)
        for name in schedule():
            PeriodicJob.objects.update_or_create(name=name, defaults={"next_run_at": later})


def database_url() -> str:
    db = settings.DATABASES["default"]
    user = quote(str(db.get("USER") or ""))
    password = quote(str(db.get("PASSWORD") or ""))
    credentials = f"{user}:{password}@" if password else f"{user}@" if user else ""
    return f"postgres://{credentials}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


class Worker:
    """`manage.py runworker` in its own process, against the test database."""

    def __init__(self, *, poll: float = 1.0, **env: str) -> None:
        self.log: IO[str] = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed by stop()
        environment = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
            "WEBHOOK_ALLOW_HTTP": "1",
            "WEBHOOK_TIMEOUT": "1",
            "WEBHOOK_CONNECT_TIMEOUT": "1",
            "WORKER_LEASE_SECONDS": "2",
            "LOG_LEVEL": "INFO",
            **env,
        }
        environment.pop("TEST_DATABASE_NAME", None)
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "runworker", "--poll", str(poll)],
            cwd=ROOT,
            env=environment,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    @property
    def name(self) -> str:
        return f"{socket.gethostname()}:{self.process.pid}"

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()


def wait_until(condition: Any, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())
