from __future__ import annotations

from django.test import override_settings

from portal.demo.dnsserver import running
from portal.lib.dns import Resolver, reverse_label
from portal.vetting import dnsbl
from tests.vetting.base import DnsTestCase


class DnsblTestCase(DnsTestCase):
    def test_it_passes_an_unlisted_address(self) -> None:
        finding = dnsbl.check_address(self.resolver(), "203.0.113.10", "zen.test")
        self.assertEqual(finding.outcome, "pass")
        self.assertEqual(finding.evidence["status"], "nxdomain")

    def test_it_fails_every_code_of_a_multi_code_answer(self) -> None:
        finding = dnsbl.check_address(self.resolver(), "203.0.113.20", "zen.test")
        self.assertEqual(finding.outcome, "fail")
        self.assertTrue(finding.hard)
        self.assertIn("CSS", finding.summary)
        self.assertIn("SBL", finding.summary)
        self.assertEqual(sorted(c["code"] for c in finding.evidence["codes"]), ["127.0.0.2", "127.0.0.3"])
        self.assertIn("check.spamhaus.org", finding.fix)

    def test_it_shows_pbl_as_information_not_abuse(self) -> None:
        finding = dnsbl.check_address(self.resolver(), "203.0.113.21", "zen.test")
        self.assertEqual(finding.outcome, "info")
        self.assertFalse(finding.hard)
        self.assertEqual(finding.score, 0)
        self.assertIn("PBL", finding.summary)

    def test_it_treats_the_public_resolver_code_as_an_error(self) -> None:
        finding = dnsbl.check_address(self.resolver(), "203.0.113.22", "zen.test")
        self.assertEqual(finding.outcome, "error")
        self.assertIn("public/open resolver", finding.summary)

    def test_it_treats_servfail_as_an_error(self) -> None:
        finding = dnsbl.check_address(self.resolver(), "203.0.113.23", "zen.test")
        self.assertEqual(finding.outcome, "error")
        self.assertIn("SERVFAIL", finding.summary)

    def test_it_treats_a_timeout_as_an_error(self) -> None:
        finding = dnsbl.check_address(self.resolver(), "203.0.113.24", "zen.test")
        self.assertEqual(finding.outcome, "error")
        self.assertIn("timeout", finding.summary)

    def test_it_queries_ipv6_in_nibble_form(self) -> None:
        self.assertEqual(
            reverse_label("2001:db8:a::25"),
            "5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.a.0.0.0.8.b.d.0.1.0.0.2",
        )
        finding = dnsbl.check_address(self.resolver(), "2001:db8:a::25", "zen.test")
        self.assertEqual(finding.outcome, "fail")
        self.assertIn("XBL", finding.summary)

    def test_it_fails_a_domain_on_the_dbl(self) -> None:
        self.assertEqual(dnsbl.check_domain(self.resolver(), "bad.example").outcome, "fail")
        self.assertEqual(dnsbl.check_domain(self.resolver(), "acme.example").outcome, "pass")

    @override_settings(SPAMHAUS_DQS_KEY="k" * 26)
    def test_it_uses_the_dqs_zone_and_hides_the_key(self) -> None:
        self.assertEqual(dnsbl.ip_zones(), ["k" * 26 + ".zen.dq.spamhaus.net"])
        self.assertEqual(dnsbl.display_zone(dnsbl.ip_zones()[0]), "<key>.zen.dq.spamhaus.net")

    def test_a_dqs_key_never_appears_in_dnsbl_errors(self) -> None:
        key = "k" * 26
        with running({"*.dq.spamhaus.net": "NOTIMP"}) as port, override_settings(SPAMHAUS_DQS_KEY=key):
            resolver = Resolver(nameservers=["127.0.0.1"], port=port, timeout=0.5)
            for finding in (
                dnsbl.check_address(resolver, "203.0.113.10", dnsbl.ip_zones()[0]),
                dnsbl.check_domain(resolver, "acme.example"),
            ):
                self.assertEqual(finding.outcome, "error")
                self.assertNotIn(key, finding.summary + str(finding.evidence))
