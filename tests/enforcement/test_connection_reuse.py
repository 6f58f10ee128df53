"""The transport's kept-alive connections (`outbound.Pool`): reused while the receiver keeps them
open, and every new connection checked against the policy again, so DNS can't move a pool to a
private address between two messages."""

from __future__ import annotations

import ipaddress
import socket
from unittest import mock

from django.test import SimpleTestCase

from portal.lib import outbound
from tests.enforcement.receiver import running_receiver

LOOPBACK = outbound.Policy(
    allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),), allow_http=True, total_timeout=2
)


class ConnectionReuseTestCase(SimpleTestCase):
    def test_it_sends_many_messages_on_one_kept_alive_connection(self) -> None:
        with running_receiver(keep_alive=True) as receiver:
            pool = outbound.Pool(receiver.url, LOOPBACK)
            statuses = [pool.post(receiver.url, b"{}", {"webhook-id": f"msg_{n}"}).status for n in range(20)]
            pool.close()

        self.assertEqual(statuses, [200] * 20)
        self.assertEqual(len({r.peer_port for r in receiver.posts()}), 1)

    def test_it_opens_a_new_connection_when_the_receiver_closes_each_one(self) -> None:
        with running_receiver() as receiver:  # HTTP/1.0: closes after every answer
            pool = outbound.Pool(receiver.url, LOOPBACK)
            statuses = [pool.post(receiver.url, b"{}", {}).status for _ in range(3)]

        self.assertEqual(statuses, [200] * 3)
        self.assertEqual(len({r.peer_port for r in receiver.posts()}), 3)

    def test_it_checks_the_address_again_on_every_new_connection(self) -> None:
        with running_receiver() as receiver:
            url = f"http://localhost:{receiver.port}/hooks"
            pool = outbound.Pool(url, LOOPBACK)
            self.assertEqual(pool.post(url, b"{}", {}).status, 200)
            rebound = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", receiver.port))]
            with (
                mock.patch("socket.getaddrinfo", return_value=rebound),
                self.assertRaises(outbound.TransportError) as caught,
            ):
                pool.post(url, b"{}", {})

        self.assertTrue(caught.exception.permanent)
        self.assertIn("10.0.0.1", str(caught.exception))
        self.assertEqual(len(receiver.posts()), 1)
