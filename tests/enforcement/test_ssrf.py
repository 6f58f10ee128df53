"""The outbound transport (portal/lib/outbound.py) and the endpoint form and API that share its
checks: no request to a non-public address unless its network is allow-listed, http only to
allow-listed networks, no redirects followed, timeouts that hold, and the connection made to the
address that was checked."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.test import SimpleTestCase, override_settings

from portal.accounts.models import Scope
from portal.enforcement.models import Attempt, Delivery, DeliveryState, WebhookEndpoint
from portal.enforcement.webhooks import deliver_due_webhooks
from portal.lib import outbound
from tests.enforcement.base import EnforcementTestCase, deliver_to_loopback, endpoint_for
from tests.enforcement.receiver import running_receiver

NON_PUBLIC = [
    "https://127.0.0.1/hooks",
    "https://127.8.9.10/hooks",
    "https://localhost/hooks",
    "https://[::1]/hooks",
    "https://0.0.0.0/hooks",
    "https://10.0.0.1/hooks",
    "https://172.16.0.1/hooks",
    "https://172.31.255.254/hooks",
    "https://192.168.1.1/hooks",
    "https://100.64.0.1/hooks",  # carrier-grade NAT
    "https://169.254.169.254/latest/meta-data/",  # cloud metadata (AWS, GCP, Azure)
    "https://[fd00:ec2::254]/latest/meta-data/",  # AWS metadata over IPv6
    "https://[fe80::1]/hooks",
    "https://[::ffff:127.0.0.1]/hooks",  # IPv4-mapped IPv6
    "https://[::ffff:169.254.169.254]/hooks",
    "https://[::ffff:a00:1]/hooks",  # ::ffff:10.0.0.1, written in hex
    "https://2130706433/hooks",  # 127.0.0.1 as one decimal number
    "https://0177.0.0.1/hooks",  # octal
    "https://0x7f.0.0.1/hooks",  # hexadecimal
    "https://127.1/hooks",  # short form
    "https://224.0.0.1/hooks",  # multicast
    "https://240.0.0.1/hooks",  # reserved
]


def policy(*networks: str, allow_http: bool = False, timeout: float = 2.0) -> outbound.Policy:
    return outbound.Policy(
        allowed_networks=tuple(ipaddress.ip_network(n) for n in networks),
        allow_http=allow_http,
        connect_timeout=timeout,
        total_timeout=timeout,
    )


@contextmanager
def trickling_server(*, header_bytes: bool) -> Iterator[int]:
    """Answers byte by byte, each within a socket timeout, never finishing: a slow loris."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            head = (
                b"HTTP/1.1 200 OK\r\n"
                if header_bytes
                else b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"
            )
            conn.sendall(head)
            while not stop.wait(0.2):
                try:
                    conn.sendall(b"X-Slow: y\r\n" if header_bytes else b"y")
                except OSError:
                    return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()


class TransportTestCase(SimpleTestCase):
    def test_it_refuses_every_non_public_address(self) -> None:
        for url in NON_PUBLIC:
            with self.subTest(url), self.assertRaises(outbound.TransportError) as caught:
                outbound.post(url, b"{}", {}, policy())
            self.assertTrue(caught.exception.permanent, url)
            self.assertIn("non-public address", str(caught.exception))

    def test_it_checks_the_address_a_numeric_host_really_means(self) -> None:
        for url in ("https://2130706433/", "https://0177.0.0.1/", "https://0x7f.0.0.1/"):
            with self.subTest(url), self.assertRaises(outbound.TransportError) as caught:
                outbound.post(url, b"{}", {}, policy())
            self.assertIn("resolves to 127.0.0.1", str(caught.exception))

    def test_it_accepts_a_public_address(self) -> None:
        scheme, host, port, _ = outbound.check_url("https://8.8.8.8/hooks", policy())
        self.assertEqual(outbound.resolve(host, port, scheme, policy()), ipaddress.ip_address("8.8.8.8"))

    def test_it_admits_only_the_allow_listed_networks(self) -> None:
        allowed = policy("10.0.0.0/8", "fd00:ec2::/32")
        self.assertEqual(
            outbound.resolve("10.1.2.3", 443, "https", allowed), ipaddress.ip_address("10.1.2.3")
        )
        self.assertEqual(
            outbound.resolve("fd00:ec2::254", 443, "https", allowed), ipaddress.ip_address("fd00:ec2::254")
        )
        for host in ("192.168.1.1", "169.254.169.254", "127.0.0.1"):
            with self.subTest(host), self.assertRaises(outbound.TransportError):
                outbound.resolve(host, 443, "https", allowed)

    def test_it_refuses_plain_http_unless_allowed_for_an_allow_listed_network(self) -> None:
        refusals = [
            ("http://8.8.8.8/", policy()),
            ("http://8.8.8.8/", policy(allow_http=True)),  # public networks never get http
            ("http://10.1.2.3/", policy("10.0.0.0/8")),  # allow-listed, but http not allowed
        ]
        for url, refusing in refusals:
            scheme, host, port, _ = outbound.check_url(url, refusing)
            with self.subTest(url), self.assertRaises(outbound.TransportError) as caught:
                outbound.resolve(host, port, scheme, refusing)
            self.assertIn("http://", str(caught.exception))
        admitting = policy("10.0.0.0/8", allow_http=True)
        self.assertEqual(
            outbound.resolve("10.1.2.3", 80, "http", admitting), ipaddress.ip_address("10.1.2.3")
        )

    def test_it_refuses_other_schemes_and_credentials_in_the_url(self) -> None:
        for url in ("ftp://8.8.8.8/", "file:///etc/passwd", "gopher://8.8.8.8/", "https://user:pw@8.8.8.8/"):
            with self.subTest(url), self.assertRaises(outbound.TransportError) as caught:
                outbound.check_url(url, policy())
            self.assertTrue(caught.exception.permanent)

    def test_it_does_not_follow_a_redirect(self) -> None:
        with running_receiver() as receiver:
            receiver.script = [(302, {"Location": f"http://127.0.0.1:{receiver.port}/elsewhere"})]
            response = outbound.post(receiver.url, b"{}", {}, policy("127.0.0.0/8", allow_http=True))
        self.assertEqual(response.status, 302)
        self.assertEqual([(r.method, r.path) for r in receiver.received], [("POST", "/hooks")])

    def test_it_connects_to_the_checked_address_and_sends_the_name_as_host(self) -> None:
        with running_receiver() as receiver:
            url = f"http://localhost:{receiver.port}/hooks"
            response = outbound.post(url, b"{}", {}, policy("127.0.0.0/8", allow_http=True))
        self.assertEqual(response.status, 200)
        (request,) = receiver.received
        self.assertEqual(request.headers["host"], f"localhost:{receiver.port}")
        self.assertEqual(request.peer, "127.0.0.1")

    def test_it_gives_up_on_a_receiver_that_answers_too_slowly(self) -> None:
        with running_receiver() as receiver:
            receiver.delay = 3
            started = time.monotonic()
            with self.assertRaises(outbound.TransportError) as caught:
                outbound.post(receiver.url, b"{}", {}, policy("127.0.0.0/8", allow_http=True, timeout=1))
        self.assertLess(time.monotonic() - started, 2.5)
        self.assertIn("timeout", str(caught.exception))
        self.assertFalse(caught.exception.permanent)

    def test_it_gives_up_on_a_receiver_that_trickles_its_answer(self) -> None:
        for header_bytes in (True, False):
            with self.subTest(header_bytes=header_bytes), trickling_server(header_bytes=header_bytes) as port:
                started = time.monotonic()
                with self.assertRaises(outbound.TransportError) as caught:
                    outbound.post(
                        f"http://127.0.0.1:{port}/",
                        b"{}",
                        {},
                        policy("127.0.0.0/8", allow_http=True, timeout=1),
                    )
                self.assertLess(time.monotonic() - started, 2.5)
                self.assertIn("timeout", str(caught.exception))


class EndpointValidationTestCase(EnforcementTestCase):
    def test_the_api_refuses_an_endpoint_on_a_non_public_address(self) -> None:
        client = self.api(Scope.PROVISIONING)
        for url in (
            "https://169.254.169.254/",
            "https://[fd00:ec2::254]/",
            "https://2130706433/",
            "http://8.8.8.8/",
        ):
            with self.subTest(url):
                response = client.post("/api/v1/webhooks/endpoints", {"url": url}, format="json")
                self.assertEqual(response.status_code, 400, response.content)
                self.assertIn("url", response.json())
        self.assertFalse(WebhookEndpoint.objects.exists())

    @override_settings(WEBHOOK_ALLOWED_NETWORKS=["127.0.0.0/8"], WEBHOOK_ALLOW_HTTP=True)
    def test_the_api_accepts_an_allow_listed_network(self) -> None:
        response = self.api(Scope.PROVISIONING).post(
            "/api/v1/webhooks/endpoints", {"url": "http://127.0.0.1:8025/hooks"}, format="json"
        )
        self.assertEqual(response.status_code, 201)
        self.assertTrue(response.json()["secret"].startswith("whsec_"))

    def test_the_page_refuses_an_endpoint_on_a_non_public_address(self) -> None:
        self.client.force_login(self.root)
        response = self.client.post("/review/webhooks/", {"url": "https://169.254.169.254/", "enabled": "on"})
        self.assertContains(response, "resolves to 169.254.169.254, a non-public address", status_code=400)
        # Django's URL validation already refuses the octal form.
        response = self.client.post("/review/webhooks/", {"url": "https://0177.0.0.1/hooks", "enabled": "on"})
        self.assertContains(response, "Enter a valid URL", status_code=400)
        self.assertFalse(WebhookEndpoint.objects.exists())


@deliver_to_loopback
class SafeDeliveryTestCase(EnforcementTestCase):
    def test_a_redirect_is_a_failed_attempt_and_its_location_is_not_fetched(self) -> None:
        receiver = self.enterContext(running_receiver())
        receiver.script = [(302, {"Location": f"http://127.0.0.1:{receiver.port}/elsewhere"})]
        endpoint_for(receiver)
        self.approve("203.0.113.5")
        deliver_due_webhooks()

        delivery = Delivery.objects.get()
        self.assertEqual((delivery.state, delivery.last_status), (DeliveryState.PENDING, 302))
        self.assertEqual([(r.method, r.path) for r in receiver.received], [("POST", "/hooks")])

    @override_settings(WEBHOOK_TIMEOUT=1)
    def test_a_receiver_slower_than_the_timeout_is_a_failed_attempt(self) -> None:
        receiver = self.enterContext(running_receiver())
        receiver.delay = 3
        endpoint_for(receiver)
        self.approve("203.0.113.5")
        started = time.monotonic()
        deliver_due_webhooks()

        self.assertLess(time.monotonic() - started, 2.5)
        attempt = Attempt.objects.get()
        self.assertIsNone(attempt.status_code)
        self.assertIn("timeout", attempt.error)
        self.assertEqual(Delivery.objects.get().state, DeliveryState.PENDING)
