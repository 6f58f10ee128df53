"""Proof with real packets: TCP port 25 through a Linux gateway follows the portal's decisions.

    tenant ── gateway ── mail          (port 25 and 587 listening on mail)
                 │
               portal                  (this test's live server, its socket in its own namespace)

Four network namespaces, built for this run and deleted after it. The gateway forwards between
the tenant and the mail host and runs the agent — `python -S -m portal.agent`, so the standard
library alone — which follows the portal over the gateway's own link to it. Nothing is added to
the machine's own network namespace.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from portal.enforcement.models import FeedChange
from tests.agent import netns
from tests.agent.base import PortalLiveTestCase, PortalThread

ROOT = Path(__file__).resolve().parents[2]
TENANT4, OTHER4, TENANT6 = "10.250.1.2", "10.250.1.3", "fd00:250:1::2"
MAIL4, MAIL6 = "10.250.2.2", "fd00:250:2::2"
PORTAL4 = "10.250.3.2"
HEALTH = "http://127.0.0.1:9125/healthz"  # inside the gateway
TABLE = "port25_test"
SOON = 5.0  # seconds within which a decision must reach the packets


class MailHost:
    """Answers an SMTP-style banner on ports 25 and 587, IPv4 and IPv6."""

    def __init__(self, namespace: str) -> None:
        self.sockets = netns.inside(namespace, self._listen)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _listen(self) -> list[socket.socket]:
        listeners = []
        for port in (25, 587):
            listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            listener.bind(("::", port))
            listener.listen(16)
            listeners.append(listener)
        return listeners

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            for listener in self.sockets:
                selector.register(listener, selectors.EVENT_READ)
            while not self.stop.is_set():
                for key, _ in selector.select(timeout=0.1):
                    ready = key.fileobj
                    assert isinstance(ready, socket.socket)
                    connection, _ = ready.accept()
                    with connection:
                        connection.sendall(b"220 mail.test ESMTP\r\n")

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        for listener in self.sockets:
            listener.close()


class RealPacketsTestCase(PortalLiveTestCase):
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
            cls.build_network(cls.lab)
        except RuntimeError as exc:
            raise netns.skip_or_fail(f"can't build network namespaces here: {exc}") from None
        cls.mail = MailHost(cls.lab.name("mail"))
        cls.addClassCleanup(cls.mail.close)

        class PortalBehindGateway(PortalThread):
            namespace = cls.lab.name("portal")

        cls.server_thread_class = PortalBehindGateway
        super().setUpClass()

    @staticmethod
    def build_network(lab: netns.Lab) -> None:
        for role in ("tenant", "gateway", "mail", "portal"):
            lab.add(role)
        lab.link(
            "tenant",
            "eth0",
            (f"{TENANT4}/24", f"{OTHER4}/24", f"{TENANT6}/64"),
            "gateway",
            "tenant0",
            ("10.250.1.1/24", "fd00:250:1::1/64"),
        )
        lab.link(
            "mail",
            "eth0",
            (f"{MAIL4}/24", f"{MAIL6}/64"),
            "gateway",
            "mail0",
            ("10.250.2.1/24", "fd00:250:2::1/64"),
        )
        lab.link("portal", "eth0", (f"{PORTAL4}/24",), "gateway", "portal0", ("10.250.3.1/24",))
        for role, v4, v6 in (
            ("tenant", "10.250.1.1", "fd00:250:1::1"),
            ("mail", "10.250.2.1", "fd00:250:2::1"),
        ):
            lab.ip(role, "route", "add", "default", "via", v4)
            lab.ip(role, "-6", "route", "add", "default", "via", v6)
        lab.ip("portal", "route", "add", "default", "via", "10.250.3.1")
        lab.sh("gateway", "sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")

    def setUp(self) -> None:
        super().setUp()
        directory = tempfile.TemporaryDirectory(prefix="eep-agent-e2e-")
        self.addCleanup(directory.cleanup)
        self.work = Path(directory.name)
        self.agent: subprocess.Popen[bytes] | None = None
        self.addCleanup(self.stop_agent)

    # The agent, as an operator runs it ---------------------------------------------------------

    def start_agent(self) -> None:
        log = open(self.work / "agent.log", "ab")  # noqa: SIM115 - the child writes it after we return
        self.addCleanup(log.close)
        environment = {"PATH": os.environ["PATH"], "EEP_AGENT_KEY": self.key, "EEP_AGENT_TABLE": TABLE}
        self.agent = subprocess.Popen(
            [
                "ip", "netns", "exec", self.lab.name("gateway"),
                sys.executable, "-S", "-m", "portal.agent",
                "--portal-url", self.live_server_url,
                "--state-dir", str(self.work / "state"),
                "--poll-seconds", "0.2",
                "--max-backoff-seconds", "0.5",
                "--timeout-seconds", "2",
                "--health-listen", "127.0.0.1:9125",
            ],
            cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def stop_agent(self) -> None:
        if self.agent is None:
            return
        if self.agent.poll() is None:
            self.agent.send_signal(signal.SIGTERM)
            try:
                self.agent.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.agent.kill()
                self.agent.wait()
        self.agent = None

    def agent_log(self) -> str:
        path = self.work / "agent.log"
        return path.read_text() if path.exists() else ""

    def health(self) -> dict[str, Any]:
        def fetch() -> dict[str, Any]:
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            try:
                with opener.open(HEALTH, timeout=2) as response:
                    body: dict[str, Any] = json.load(response)
            except urllib.error.HTTPError as error:
                with error:
                    body = json.load(error)
            except OSError:
                body = {"status": "down"}
            return body

        return netns.inside(self.lab.name("gateway"), fetch)

    # The tenant, trying to send mail --------------------------------------------------------

    def reaches(self, source: str, port: int, timeout: float = 1.0) -> bool:
        destination, family = (MAIL6, socket.AF_INET6) if ":" in source else (MAIL4, socket.AF_INET)

        def attempt() -> bool:
            with socket.socket(family, socket.SOCK_STREAM) as connection:
                connection.settimeout(timeout)
                connection.bind((source, 0))
                try:
                    connection.connect((destination, port))
                    return connection.recv(64).startswith(b"220")
                except OSError:
                    return False

        return netns.inside(self.lab.name("tenant"), attempt)

    def within(self, seconds: float, condition: Callable[[], bool], what: str) -> float:
        started = time.monotonic()
        while not condition():
            if time.monotonic() - started > seconds:
                self.fail(f"not within {seconds} s: {what}\n--- agent log ---\n{self.agent_log()}")
            time.sleep(0.05)
        return time.monotonic() - started

    def kernel_set(self, family: int) -> set[str]:
        return netns.set_elements(self.lab.name("gateway"), TABLE, "exempt4" if family == 4 else "exempt6")

    # The story -----------------------------------------------------------------------------------

    def test_port_25_follows_the_portals_decisions(self) -> None:
        self.start_agent()
        self.within(SOON, lambda: self.health()["status"] == "ok", "the agent's first sync")

        # Before any approval: port 25 is dropped at the gateway, port 587 is not.
        self.assertFalse(self.reaches(TENANT4, 25))
        self.assertFalse(self.reaches(TENANT6, 25))
        self.assertTrue(self.reaches(TENANT4, 587))
        self.assertTrue(self.reaches(TENANT6, 587))

        # A reviewer approves the tenant's address and its IPv6 block.
        address, _ = self.approve(TENANT4, "fd00:250:1::/64")
        self.within(SOON, lambda: self.reaches(TENANT4, 25, timeout=0.5), "port 25 opens after the approval")
        self.within(SOON, lambda: self.reaches(TENANT6, 25, timeout=0.5), "port 25 opens for the IPv6 block")
        self.assertFalse(self.reaches(OTHER4, 25), "only the approved address is exempt")
        self.assertIn(f"applied 2 change(s): added {TENANT4}, fd00:250:1::/64", self.agent_log())

        # A DNSBL listing suspends the address: port 25 closes again; the IPv6 block stays open.
        self.move(address, "exemption.suspended", "Listed on a DNSBL")
        self.within(
            SOON, lambda: not self.reaches(TENANT4, 25, timeout=0.5), "port 25 closes after the suspension"
        )
        self.assertTrue(self.reaches(TENANT6, 25))

        # The portal becomes unreachable: the set in force stays.
        self.lab.ip("gateway", "link", "set", "portal0", "down")
        self.within(
            SOON, lambda: "unreachable" in (self.health().get("last_error") or ""), "the agent notices"
        )
        time.sleep(1)
        self.assertTrue(self.reaches(TENANT6, 25))
        self.assertFalse(self.reaches(TENANT4, 25, timeout=0.5))
        self.assertEqual(self.kernel_set(6), {"fd00:250:1::/64"})

        # The agent restarts to a corrupted cursor file while the portal is still away: it keeps
        # what the kernel enforces, then heals with a snapshot once the portal is back — which
        # meanwhile reinstated the address.
        self.stop_agent()
        (self.work / "state" / "state.json").write_bytes(
            b'{"format": "egress-exemption-agent-state/1", "cur\x00'
        )
        self.move(address, "exemption.reinstated", "Delisted")
        self.start_agent()
        self.within(SOON, lambda: "no saved state to fall back on" in self.agent_log(), "the agent restarts")
        self.assertIn("the state file is corrupt", self.agent_log())
        self.assertTrue(self.reaches(TENANT6, 25))
        self.lab.ip("gateway", "link", "set", "portal0", "up")
        self.within(
            SOON, lambda: self.reaches(TENANT4, 25, timeout=0.5), "the snapshot brings the reinstatement"
        )
        state = json.loads((self.work / "state" / "state.json").read_text())
        with self.portal():
            latest = FeedChange.objects.order_by("-seq").values_list("seq", flat=True)[0]
        self.assertEqual(state["cursor"], latest)
        self.assertEqual(sorted(state["exemptions"].values()), sorted([f"{TENANT4}/32", "fd00:250:1::/64"]))
        self.assertTrue((self.work / "state" / "state.json.corrupt").exists())

        # The portal stops altogether: the set in force stays.
        self.server_thread.terminate()
        self.within(SOON, lambda: "refused" in (self.health().get("last_error") or ""), "the agent notices")
        self.assertTrue(self.reaches(TENANT4, 25))
        self.assertTrue(self.reaches(TENANT6, 25))
        self.assertFalse(self.reaches(OTHER4, 25, timeout=0.5))
        self.assertEqual(self.kernel_set(4), {TENANT4})
