"""Proof with real packets that the telemetry loop closes: the gateway counts port-25 SYNs, the
portal acts on the counts, and what it decides comes back to the gateway as a webhook.

    tenant ── gateway ── mail          (port 25 listening on mail)
                 │
               portal                  (this test's live server, its socket in its own namespace)

The network is the real-packet test's. The gateway runs `python -S -m portal.agent` reporting
every second to the live portal with an enforcement key, and listening for the portal's
webhooks; it polls the change feed only every 30 s, so a change that reaches the packets sooner
came by webhook. The thresholds are lowered so that a handful of SYNs cross them. Without root,
`ip netns` or `nft` the test is skipped with the reason printed (a failure under
REQUIRE_NETNS=1).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from django.test import override_settings

from portal.enforcement.models import DeliveryState, Exemption, ExemptionState, WebhookEndpoint
from portal.enforcement.webhooks import deliver_due_webhooks
from portal.notifications.models import OutboundEmail
from portal.reputation.models import Kind, ReputationEvent, Source
from portal.telemetry.models import Agent
from tests.agent import netns
from tests.agent import test_real_packets as real_packets
from tests.agent.base import PortalLiveTestCase, PortalThread
from tests.agent.test_real_packets import MAIL4, OTHER4, PORTAL4, TENANT4, MailHost
from tests.base import allocate

ROOT = Path(__file__).resolve().parents[2]
TABLE = "port25_loop"
AGENT_NAME = "gw-loop"
WEBHOOK_LISTEN = "10.250.3.1:9126"  # the gateway's side of its link to the portal
SOON = 10.0  # seconds within which a report or a webhook must have done its work
BLOCKED = OTHER4  # holds no exemption
EXEMPTED = TENANT4  # will be approved for 100 messages a day


@override_settings(
    TELEMETRY_BLOCKED_PER_HOUR=5,
    TELEMETRY_VOLUME_FACTOR=1,  # 100 a day / 24: about 4 connections an hour
    TELEMETRY_VOLUME_FLOOR=1,
    TELEMETRY_VOLUME_ACTION="both",
    WEBHOOK_ALLOWED_NETWORKS=["10.250.3.0/24"],
    WEBHOOK_ALLOW_HTTP=True,
    WEBHOOK_CONCURRENCY=1,
)
class TelemetryLoopTestCase(PortalLiveTestCase):
    host = PORTAL4
    lab: ClassVar[netns.Lab]
    mail: ClassVar[MailHost]

    @classmethod
    def setUpClass(cls) -> None:
        if reason := netns.missing_capability():
            raise netns.skip_or_fail(reason)
        cls.lab = netns.Lab()
        cls.addClassCleanup(cls.lab.delete_all)
        try:
            # Imported as a module: pytest would otherwise collect its test here too.
            real_packets.RealPacketsTestCase.build_network(cls.lab)
        except RuntimeError as exc:
            raise netns.skip_or_fail(f"can't build network namespaces here: {exc}") from None
        cls.mail = MailHost(cls.lab.name("mail"))
        cls.addClassCleanup(cls.mail.close)

        class PortalBehindGateway(PortalThread):
            namespace = cls.lab.name("portal")

        cls.server_thread_class = PortalBehindGateway
        super().setUpClass()

    def setUp(self) -> None:
        super().setUp()
        self.work = Path(self.enterContext(tempfile.TemporaryDirectory(prefix="eep-telemetry-loop-")))
        with self.portal():
            self.acme.abuse_contact = "abuse@acme.test"
            self.acme.save(update_fields=["abuse_contact"])
            allocate(self.acme, BLOCKED)
            self.endpoint = WebhookEndpoint.objects.create(url=f"http://{WEBHOOK_LISTEN}/webhook")
        self.agent: subprocess.Popen[bytes] | None = None
        self.addCleanup(self.stop_agent)

    # The agent on the gateway, and the portal's webhook worker -------------------------------------

    def start_agent(self) -> None:
        log = open(self.work / "agent.log", "ab")  # noqa: SIM115 - the child writes it after we return
        self.addCleanup(log.close)
        environment = {
            "PATH": os.environ["PATH"],
            "EEP_AGENT_KEY": self.key,
            "EEP_AGENT_WEBHOOK_SECRET": self.endpoint.secret,
        }
        self.agent = subprocess.Popen(
            [
                "ip", "netns", "exec", self.lab.name("gateway"),
                sys.executable, "-S", "-m", "portal.agent",
                "--portal-url", self.live_server_url,
                "--table", TABLE,
                "--state-dir", str(self.work / "state"),
                "--poll-seconds", "30",
                "--max-backoff-seconds", "30",
                "--timeout-seconds", "2",
                "--telemetry-seconds", "1",
                "--agent-name", AGENT_NAME,
                "--health-listen", "off",
                "--webhook-listen", WEBHOOK_LISTEN,
            ],
            cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def stop_agent(self) -> None:
        if self.agent is None:
            return
        if self.agent.poll() is None:
            self.agent.send_signal(signal.SIGTERM)
            try:
                self.agent.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.agent.kill()
                self.agent.wait()
        self.agent = None

    def agent_log(self) -> str:
        path = self.work / "agent.log"
        return path.read_text() if path.exists() else ""

    def deliver_webhooks(self) -> bool:
        """One round of the webhook worker, sending from the portal's namespace; True when
        nothing is left to send."""
        with self.portal(), netns.entered(self.lab.name("portal")):
            deliver_due_webhooks()
            return not self.endpoint.deliveries.exclude(state=DeliveryState.DELIVERED).exists()

    # The tenant, and what the portal knows --------------------------------------------------------

    def connect(self, source: str, attempts: int) -> int:
        """Open `attempts` port-25 connections from `source`, each sending one SYN (the connect
        gives up before the first retransmission); how many got through."""

        def attempt() -> int:
            through = 0
            for _ in range(attempts):
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as connection:
                    connection.settimeout(0.3)
                    connection.bind((source, 0))
                    try:
                        connection.connect((MAIL4, 25))
                        through += 1
                    except OSError:
                        pass
            return through

        return netns.inside(self.lab.name("tenant"), attempt)

    def agent_reported(self) -> bool:
        with self.portal():
            return Agent.objects.filter(name=AGENT_NAME, last_sequence__gte=1).exists()

    def signals(self, kind: str) -> list[ReputationEvent]:
        with self.portal():
            return list(ReputationEvent.objects.filter(source=Source.TELEMETRY, kind=kind))

    def emails(self) -> list[OutboundEmail]:
        with self.portal():
            return list(OutboundEmail.objects.all())

    def exemption_state(self, exemption: Exemption) -> str:
        with self.portal():
            exemption.refresh_from_db(fields=["state"])
        return exemption.state

    def within(self, seconds: float, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            if time.monotonic() > deadline:
                self.fail(f"not within {seconds} s: {what}\n--- agent log ---\n{self.agent_log()}")
            time.sleep(0.1)

    # The story -------------------------------------------------------------------------------------

    def test_it_warns_the_tenant_of_blocked_attempts_and_suspends_an_address_sending_over_its_approval(
        self,
    ) -> None:
        # The portal counts per hour: all of this must happen within one.
        if (left := 3600 - time.time() % 3600) < 30:
            time.sleep(left + 1)
        self.start_agent()
        self.within(SOON, self.agent_reported, "the agent's first report")

        # A host without an exemption keeps trying to send: every SYN is dropped, and counted.
        self.assertEqual(self.connect(BLOCKED, 8), 0)
        self.within(SOON, lambda: bool(self.signals(Kind.BLOCKED_ATTEMPTS)), "the blocked-attempt signal")
        (signal_,) = self.signals(Kind.BLOCKED_ATTEMPTS)
        self.assertEqual(signal_.cidr, BLOCKED)
        self.assertEqual(signal_.tenant_id, self.acme.pk)
        self.assertEqual(signal_.evidence["agent"], AGENT_NAME)
        self.assertGreater(signal_.evidence["blocked"], 5)
        (email,) = self.emails()
        self.assertIn("abuse@acme.test", email.to)
        self.assertIn(f"Your server at {BLOCKED} tried to send mail directly", email.subject)

        # A reviewer approves another address for 100 messages a day; the webhook opens port 25.
        (exemption,) = self.approve(EXEMPTED)
        self.within(SOON, self.deliver_webhooks, "the activation webhook is delivered")
        self.within(SOON, lambda: self.connect(EXEMPTED, 1) == 1, "port 25 opens for the approved address")

        # It opens far more connections than that in the hour: the report suspends the exemption.
        self.assertEqual(self.connect(EXEMPTED, 8), 8)
        self.within(
            SOON,
            lambda: self.exemption_state(exemption) == ExemptionState.SUSPENDED,
            "the over-volume suspension",
        )
        (over,) = self.signals(Kind.OVER_VOLUME)
        self.assertEqual((over.cidr, over.tenant_id), (EXEMPTED, self.acme.pk))
        self.assertTrue(any("sent far more mail than approved" in e.subject for e in self.emails()))
        with self.portal():
            self.assertTrue(self.endpoint.deliveries.filter(event="exemption.suspended").exists())

        # The suspension webhook reaches the gateway long before its next poll: the SYN is dropped.
        self.within(SOON, self.deliver_webhooks, "the suspension webhook is delivered")
        self.within(
            SOON, lambda: self.connect(EXEMPTED, 1) == 0, "port 25 closes again for the suspended address"
        )
        self.assertEqual(netns.set_elements(self.lab.name("gateway"), TABLE, "exempt4"), set())
        self.assertIn(f"removed {EXEMPTED}", self.agent_log())
