from __future__ import annotations

from contextlib import ExitStack
from typing import ClassVar

from django.test import override_settings

from portal.demo.dnsserver import running
from portal.lib.dns import Resolver
from tests.base import PortalTestCase
from tests.vetting.zone import DBL, DNSBL, ZONE


class DnsTestCase(PortalTestCase):
    """Runs a real DNS server process on loopback serving tests/vetting/zone.py."""

    dns_port: ClassVar[int]
    _stack: ClassVar[ExitStack]

    @classmethod
    def setUpClass(cls) -> None:
        cls._stack = ExitStack()
        cls.dns_port = cls._stack.enter_context(running(ZONE))
        cls._stack.enter_context(
            override_settings(
                DNS_NAMESERVERS=["127.0.0.1"],
                DNS_PORT=cls.dns_port,
                DNS_TIMEOUT=0.5,
                DNSBL_ZONE=DNSBL,
                DBL_ZONE=DBL,
                DNSBL_EXTRA_ZONES=[],
                SPAMHAUS_DQS_KEY="",
            )
        )
        super().setUpClass()

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()
        cls._stack.close()

    def resolver(self) -> Resolver:
        return Resolver.from_settings()
