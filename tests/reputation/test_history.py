from __future__ import annotations

import ipaddress
from datetime import timedelta

from django.utils import timezone

from portal.accounts.models import Allocation, Scope
from portal.reputation.models import Kind, ReputationEvent, Source
from portal.reputation.recording import new_event
from portal.unblock.models import UnblockRequest
from portal.vetting.checks import history_findings
from portal.workflows.reputation import record_listing
from tests.base import PortalTestCase, allocate


class AttributionTestCase(PortalTestCase):
    def reassign_globex_block_to_acme(self) -> None:
        """Globex held 198.51.100.64/27 until 10 days ago; Acme holds it since."""
        old = Allocation.objects.get(tenant=self.globex)
        old.released_at = timezone.now() - timedelta(days=10)
        old.save()
        new = allocate(self.acme, "198.51.100.64/27")
        new.assigned_at = timezone.now() - timedelta(days=10)
        new.save()

    def complaint(self, address: str, days_ago: int) -> ReputationEvent:
        event = new_event(
            network=ipaddress.ip_network(address),
            source=Source.ABUSE_REPORT,
            kind=Kind.COMPLAINT,
            observed_at=timezone.now() - timedelta(days=days_ago),
            abuse=True,
            summary="Spam complaint",
        )
        event.save()
        return event

    def test_events_belong_to_whoever_held_the_address_then(self) -> None:
        self.reassign_globex_block_to_acme()
        before = self.complaint("198.51.100.70", days_ago=30)
        after = self.complaint("198.51.100.70", days_ago=2)
        self.assertEqual(before.tenant, self.globex)
        self.assertEqual(after.tenant, self.acme)

    def test_the_new_holder_is_not_blamed_for_the_previous_holder(self) -> None:
        self.reassign_globex_block_to_acme()
        for days in (20, 25, 30):
            self.complaint("198.51.100.70", days_ago=days)
        req = self.make_request(self.acme, "198.51.100.70")
        findings = {
            f.check: f for f in history_findings(req, [ipaddress.ip_network("198.51.100.70")], revoked=0)
        }
        self.assertEqual(findings["tenant_history"].score, 0)
        address = findings["address_history"]
        self.assertIn("0 abuse events under this tenant, 3 under previous holders", address.summary)
        self.assertTrue(all(e["previous_holder"] for e in address.evidence["events"]))

    def test_the_address_page_marks_previous_holders(self) -> None:
        self.reassign_globex_block_to_acme()
        self.complaint("198.51.100.70", days_ago=30)
        self.complaint("198.51.100.70", days_ago=2)
        self.client.force_login(self.rita)
        r = self.client.get("/reputation/addresses/198.51.100.70/")
        self.assertContains(r, "previous holder", count=1)
        self.assertContains(r, "Globex GmbH")
        self.assertContains(r, "https://check.spamhaus.org/results/?query=198.51.100.70")

    def test_the_timeline_filters_by_source_and_kind_with_htmx(self) -> None:
        self.complaint("203.0.113.9", days_ago=1)
        record_listing(
            address="203.0.113.9",
            zone="zen.test",
            observed_at=timezone.now(),
            codes=[{"code": "127.0.0.3", "list": "CSS", "meaning": "CSS", "abuse": True}],
        )
        self.client.force_login(self.rita)
        r = self.client.get("/reputation/addresses/203.0.113.9/?source=dnsbl", headers={"HX-Request": "true"})
        body = r.content.decode()
        self.assertTrue(body.lstrip().startswith('<section id="timeline"'))
        self.assertIn("Listed on CSS", body)
        self.assertNotIn("Spam complaint", body)

    def test_the_tenant_page_lists_requests_and_events(self) -> None:
        req = self.make_request(self.acme)
        self.complaint("203.0.113.9", days_ago=1)
        self.client.force_login(self.rita)
        r = self.client.get(f"/reputation/tenants/{self.acme.pk}/")
        self.assertContains(r, req.reference)
        self.assertContains(r, "Spam complaint")
        self.assertContains(r, "1 complaints")

    def test_customers_cannot_see_history_pages(self) -> None:
        self.client.force_login(self.alice)
        self.assertEqual(self.client.get("/reputation/addresses/203.0.113.9/").status_code, 404)
        self.assertEqual(self.client.get(f"/reputation/tenants/{self.acme.pk}/").status_code, 404)
        self.assertEqual(self.client.get("/reputation/").status_code, 404)


class ListingTransitionsTestCase(PortalTestCase):
    def test_it_records_changes_not_every_poll(self) -> None:
        css = [{"code": "127.0.0.3", "list": "CSS", "meaning": "CSS", "abuse": True}]
        now = timezone.now()
        self.assertIsNotNone(
            record_listing(address="203.0.113.9", zone="zen.test", codes=css, observed_at=now)
        )
        self.assertIsNone(record_listing(address="203.0.113.9", zone="zen.test", codes=css, observed_at=now))
        delisted = record_listing(address="203.0.113.9", zone="zen.test", codes=[], observed_at=now)
        assert delisted is not None
        self.assertEqual(delisted.kind, Kind.DELISTED)
        self.assertEqual(ReputationEvent.objects.count(), 2)

    def test_a_first_clean_check_records_nothing(self) -> None:
        self.assertIsNone(
            record_listing(address="203.0.113.9", zone="zen.test", codes=[], observed_at=timezone.now())
        )
        self.assertFalse(ReputationEvent.objects.exists())


class EventApiTestCase(PortalTestCase):
    def test_the_abuse_desk_records_an_event(self) -> None:
        r = self.api(Scope.PROVISIONING).post(
            "/api/v1/reputation/events",
            {
                "address": "203.0.113.9",
                "source": "abuse_report",
                "kind": "complaint",
                "summary": "Phishing run",
            },
            format="json",
        )
        self.assertEqual(r.status_code, 201, r.content)
        self.assertEqual(r.json()["tenant"], "acme-1")
        self.assertTrue(r.json()["abuse"])

    def test_evidence_must_be_plain_json(self) -> None:
        client = self.api(Scope.PROVISIONING)
        r = client.post(
            "/api/v1/reputation/events",
            '{"source": "manual", "kind": "note", "address": "203.0.113.5", "evidence": {"a": 1e999}}',
            content_type="application/json",
        )
        self.assertEqual(r.status_code, 400)
        self.assertIn("NaN or Infinity", str(r.json()["evidence"]))

    def test_it_needs_an_address_or_a_tenant_and_valid_values(self) -> None:
        client = self.api(Scope.PROVISIONING)
        r = client.post("/api/v1/reputation/events", {"source": "manual", "kind": "note"}, format="json")
        self.assertEqual(r.status_code, 400)
        self.assertIn("Give an address", str(r.json()))
        r = client.post(
            "/api/v1/reputation/events",
            {"address": "203.0.113.9/29", "source": "dnsbl", "kind": "listed"},
            format="json",
        )
        self.assertEqual(r.status_code, 400)
        self.assertIn("host bits", r.json()["address"][0])
        r = client.post(
            "/api/v1/reputation/events",
            {"tenant": "nope", "source": "sms", "kind": "note"},
            format="json",
        )
        self.assertEqual(set(r.json()), {"tenant", "source"})
        self.assertFalse(ReputationEvent.objects.exists())
        self.assertFalse(UnblockRequest.objects.exists())


class NoteFormTestCase(PortalTestCase):
    def test_the_note_form_does_not_redirect_off_site(self) -> None:
        self.client.force_login(self.rita)
        r = self.client.post("/reputation/notes/", {"summary": "", "next": "https://evil.example/"})
        self.assertEqual(r["Location"], "/reputation/")
