from __future__ import annotations

from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile

from portal.accounts.models import Scope
from portal.audit.models import AuditEvent
from portal.reputation.arf import ArfError, parse_arf
from portal.reputation.models import Kind, ReputationEvent, Source
from tests.base import PortalTestCase

SAMPLES = Path(__file__).parent / "samples"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


class ArfParsingTestCase(PortalTestCase):
    def test_it_parses_the_rfc_5965_example(self) -> None:
        report = parse_arf(sample("rfc5965.eml"))
        self.assertEqual((report.feedback_type, report.source_ip), ("abuse", "203.0.113.9"))
        self.assertEqual(report.reported_domains, ["example.net"])
        self.assertEqual(report.subject, "Earn money")
        assert report.arrival_date is not None
        self.assertEqual(report.arrival_date.utcoffset().total_seconds(), -4 * 3600)  # type: ignore[union-attr]

    def test_it_parses_an_ipv6_report_with_headers_only(self) -> None:
        report = parse_arf(sample("fbl_headers_only.eml"))
        self.assertEqual(report.source_ip, "2001:db8:a::25")
        self.assertEqual(report.user_agent, "MailboxProvider-FBL/2.1")

    def test_it_explains_what_is_wrong_with_bad_reports(self) -> None:
        cases = {
            "not_a_report.eml": "text/plain message",
            "missing_user_agent.eml": "user-agent",
            "bad_source_ip.eml": "not an IP address",
            "wrong_report_type.eml": "feedback-report",
        }
        for name, expected in cases.items():
            with self.subTest(name), self.assertRaisesMessage(ArfError, expected):
                parse_arf(sample(name))


class ArfIngestionTestCase(PortalTestCase):
    def test_the_api_records_a_complaint_attributed_to_the_holder(self) -> None:
        r = self.api(Scope.PROVISIONING).post(
            "/api/v1/reputation/arf", sample("rfc5965.eml"), content_type="message/rfc822"
        )
        self.assertEqual(r.status_code, 201, r.content)
        event = ReputationEvent.objects.get()
        self.assertEqual(
            (event.kind, event.source, event.cidr), (Kind.COMPLAINT, Source.FEEDBACK_LOOP, "203.0.113.9")
        )
        # Acme holds 203.0.113.0/26 since 100 days ago, but the report is from 2005: nobody held it then.
        self.assertIsNone(event.tenant)
        self.assertTrue(AuditEvent.objects.filter(action="reputation.recorded").exists())

    def test_a_malformed_report_is_refused_and_nothing_is_stored(self) -> None:
        r = self.api(Scope.PROVISIONING).post(
            "/api/v1/reputation/arf", sample("bad_source_ip.eml"), content_type="message/rfc822"
        )
        self.assertEqual(r.status_code, 400)
        self.assertIn("not an IP address", r.json()["report"][0])
        self.assertFalse(ReputationEvent.objects.exists())
        self.assertFalse(AuditEvent.objects.filter(action="reputation.recorded").exists())

    def test_customers_cannot_upload_reports(self) -> None:
        r = self.api(Scope.CUSTOMER).post(
            "/api/v1/reputation/arf", sample("rfc5965.eml"), content_type="message/rfc822"
        )
        self.assertEqual(r.status_code, 403)

    def test_staff_upload_in_the_ui(self) -> None:
        self.client.force_login(self.rita)
        upload = SimpleUploadedFile(
            "report.eml", sample("fbl_headers_only.eml"), content_type="message/rfc822"
        )
        r = self.client.post("/reputation/arf/", {"report": upload})
        self.assertRedirects(r, "/reputation/addresses/2001:db8:a::25/")
        event = ReputationEvent.objects.get()
        self.assertEqual(event.tenant, self.acme)

    def test_a_bad_upload_in_the_ui_shows_the_error(self) -> None:
        self.client.force_login(self.rita)
        upload = SimpleUploadedFile("report.eml", sample("not_a_report.eml"))
        r = self.client.post("/reputation/arf/", {"report": upload})
        self.assertContains(r, "multipart/report", status_code=400)
        self.assertFalse(ReputationEvent.objects.exists())
