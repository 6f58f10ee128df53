"""A real portal on a live server for the agent to follow, and an agent whose nftables
transactions are recorded instead of run (the one seam: `nft`).

The server handles one request at a time, and the test takes the same lock around its own
database writes: on SQLite the server shares the test's one connection, and the agent may poll
while the test approves.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any, ClassVar

from django.core.servers.basehttp import WSGIServer
from django.db.backends.base.base import BaseDatabaseWrapper
from django.test import LiveServerTestCase
from django.test.testcases import LiveServerThread, QuietWSGIRequestHandler

from portal.accounts.models import Actor, ApiKey, Scope, Tenant
from portal.agent.config import Config
from portal.agent.nft import NftError
from portal.agent.sync import Agent
from portal.enforcement.models import Exemption
from portal.workflows import exemptions as actions
from portal.workflows.decisions import approve_request
from tests.agent import netns
from tests.base import allocate, make_request

PORTAL_LOCK = threading.Lock()
REVIEWER = Actor.of_system("test reviewer")


class SerializedRequestHandler(QuietWSGIRequestHandler):
    def handle(self) -> None:
        with PORTAL_LOCK:
            super().handle()


class PortalThread(LiveServerThread):
    # Set to listen inside a network namespace (the real-packet test); None: here.
    namespace: ClassVar[str | None] = None

    def _create_server(
        self, connections_override: dict[str, BaseDatabaseWrapper] | None = None
    ) -> WSGIServer:
        # Only the listening socket goes into the namespace: the thread returns before it opens
        # any database connection.
        with netns.entered(self.namespace) if self.namespace else nullcontext():
            return WSGIServer((self.host, self.port), SerializedRequestHandler, allow_reuse_address=False)


class RecordingNft:
    """Stands in for `nft -f -`: keeps each transaction, and fails the next ones when told."""

    def __init__(self) -> None:
        self.transactions: list[str] = []
        self.failures: list[str] = []

    def __call__(self, text: str) -> None:
        if self.failures:
            raise NftError(self.failures.pop(0))
        self.transactions.append(text)

    @property
    def last(self) -> str:
        return self.transactions[-1]

    def take(self) -> list[str]:
        taken, self.transactions = self.transactions, []
        return taken


class PortalLiveTestCase(LiveServerTestCase):
    server_thread_class = PortalThread
    acme: Tenant
    key: str
    state_dir: Path

    def setUp(self) -> None:
        super().setUp()
        with PORTAL_LOCK:
            self.acme = Tenant.objects.create(
                external_id="acme-1",
                name="Acme Ltd",
                account_opened_on=date(2025, 1, 1),
                identity_verified=True,
            )
            allocate(self.acme, "203.0.113.0/26")
            allocate(self.acme, "2001:db8:a::/48")
            self.api_key, self.key = ApiKey.issue(
                name="gateway agent", scope=Scope.ENFORCEMENT, tenant=None, created_by=None
            )
        directory = tempfile.TemporaryDirectory(prefix="eep-agent-")
        self.addCleanup(directory.cleanup)
        self.state_dir = Path(directory.name)

    @contextmanager
    def portal(self) -> Iterator[None]:
        """Around the test's own writes, so that they never interleave with a request."""
        with PORTAL_LOCK:
            yield

    def approve(self, *cidrs: str) -> list[Exemption]:
        with self.portal():
            # The network namespaces use private addresses, outside Acme's allocations.
            req = make_request(self.acme, *cidrs, allocate_missing=True)
            return approve_request(req=req, actor=REVIEWER, note="ok")

    def move(self, exemption: Exemption, event: str, reason: str = "") -> None:
        with self.portal():
            actions.change(exemption, event, actor=REVIEWER, reason=reason)

    def config(self, **overrides: Any) -> Config:
        config = Config(
            portal_url=self.live_server_url,
            key=self.key,
            state_dir=self.state_dir,
            poll_seconds=0.1,
            max_backoff_seconds=0.2,
            timeout_seconds=5,
            health_listen=None,
        )
        return replace(config, **overrides)

    def started_agent(self, **overrides: Any) -> tuple[Agent, RecordingNft]:
        nft = RecordingNft()
        agent = Agent(self.config(**overrides), nft=nft)
        agent.start()
        return agent, nft
