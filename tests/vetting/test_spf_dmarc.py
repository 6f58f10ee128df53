from __future__ import annotations

from portal.vetting import spf
from portal.vetting.checks import dmarc_finding, spf_finding
from tests.vetting.base import DnsTestCase


class SpfTestCase(DnsTestCase):
    def test_it_authorises_through_ip4(self) -> None:
        outcome = spf.evaluate(self.resolver(), "acme.example", "203.0.113.10")
        self.assertEqual(outcome.result, "pass")
        self.assertEqual(outcome.matched, "acme.example: ip4:203.0.113.0/28")

    def test_it_follows_include_to_ip6_and_a(self) -> None:
        self.assertEqual(spf.evaluate(self.resolver(), "acme.example", "2001:db8:a::25").result, "pass")
        outcome = spf.evaluate(self.resolver(), "shop.acme.example", "203.0.113.10")
        self.assertEqual(outcome.result, "pass")
        self.assertEqual(outcome.lookups, 1)

    def test_it_evaluates_mx_and_redirect(self) -> None:
        self.assertEqual(spf.evaluate(self.resolver(), "mxonly.example", "203.0.113.10").result, "pass")
        self.assertEqual(spf.evaluate(self.resolver(), "mxonly.example", "203.0.113.11").result, "fail")
        self.assertEqual(spf.evaluate(self.resolver(), "redirected.example", "203.0.113.10").result, "pass")

    def test_it_fails_an_address_outside_the_policy(self) -> None:
        finding = spf_finding(self.resolver(), "acme.example", "203.0.113.40")
        self.assertEqual(finding.outcome, "fail")
        self.assertIn("result: fail", finding.summary)
        self.assertIn("ip4:203.0.113.40", finding.fix)

    def test_it_stops_at_the_ten_lookup_limit(self) -> None:
        outcome = spf.evaluate(self.resolver(), "loop.example", "203.0.113.10")
        self.assertEqual(outcome.result, "permerror")
        self.assertIn("more than 10 DNS lookups", outcome.reason)
        self.assertEqual(spf_finding(self.resolver(), "loop.example", "203.0.113.10").outcome, "fail")

    def test_it_rejects_two_spf_records(self) -> None:
        self.assertEqual(spf.evaluate(self.resolver(), "twospf.example", "203.0.113.10").result, "permerror")

    def test_it_fails_without_spf_and_errors_on_servfail(self) -> None:
        self.assertEqual(spf_finding(self.resolver(), "nospf.example", "203.0.113.10").outcome, "fail")
        finding = spf_finding(self.resolver(), "broken.example", "203.0.113.10")
        self.assertEqual(finding.outcome, "error")


class DmarcTestCase(DnsTestCase):
    def test_it_passes_an_enforcing_policy(self) -> None:
        finding = dmarc_finding(self.resolver(), "acme.example")
        self.assertEqual((finding.outcome, finding.evidence["policy"]), ("pass", "reject"))

    def test_it_falls_back_to_the_organisational_domain(self) -> None:
        finding = dmarc_finding(self.resolver(), "shop.acme.example")
        self.assertEqual(finding.outcome, "pass")
        self.assertEqual(finding.evidence["found_at"], "_dmarc.acme.example")

    def test_it_warns_on_p_none_and_fails_when_missing(self) -> None:
        self.assertEqual(dmarc_finding(self.resolver(), "weak.example").outcome, "warn")
        self.assertEqual(dmarc_finding(self.resolver(), "nospf.example").outcome, "fail")
