from __future__ import annotations

from portal.vetting.checks import is_generic_hostname, rdns_finding
from tests.vetting.base import DnsTestCase


class ReverseDnsTestCase(DnsTestCase):
    def test_it_passes_a_forward_confirmed_ptr(self) -> None:
        finding = rdns_finding(self.resolver(), "203.0.113.10")
        self.assertEqual(finding.outcome, "pass")
        self.assertIn("mail.acme.example", finding.summary)
        self.assertEqual(finding.evidence["ptr"]["answers"], ["mail.acme.example"])

    def test_it_fails_when_the_ptr_name_points_elsewhere(self) -> None:
        finding = rdns_finding(self.resolver(), "203.0.113.11")
        self.assertEqual(finding.outcome, "fail")
        self.assertIn("198.51.100.1", finding.summary)
        self.assertIn("A/AAAA record host.other.example", finding.fix)

    def test_it_fails_without_a_ptr(self) -> None:
        finding = rdns_finding(self.resolver(), "203.0.113.12")
        self.assertEqual(finding.outcome, "fail")
        self.assertEqual(finding.summary, "No PTR record")

    def test_it_warns_on_a_generic_hostname(self) -> None:
        finding = rdns_finding(self.resolver(), "203.0.113.13")
        self.assertEqual(finding.outcome, "warn")

    def test_it_reports_servfail_as_an_error_not_a_missing_ptr(self) -> None:
        finding = rdns_finding(self.resolver(), "203.0.113.14")
        self.assertEqual(finding.outcome, "error")
        self.assertIn("SERVFAIL", finding.summary)

    def test_it_confirms_ipv6_through_aaaa(self) -> None:
        self.assertEqual(rdns_finding(self.resolver(), "2001:db8:a::25").outcome, "pass")

    def test_generic_names(self) -> None:
        self.assertTrue(is_generic_hostname("pool-203-0-113-9.isp.example", "203.0.113.9"))
        self.assertTrue(is_generic_hostname("9.113.0.203.customers.example", "203.0.113.9"))
        self.assertTrue(is_generic_hostname("dhcp-77.isp.example", "203.0.113.9"))
        self.assertFalse(is_generic_hostname("mail.acme.example", "203.0.113.9"))
        self.assertFalse(is_generic_hostname("smtp2.poolside.example", "203.0.113.9"))
