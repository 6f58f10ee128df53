"""Defects found in a security review, each pinned by the behaviour that fixes it."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.test import override_settings
from django.utils import timezone

from portal.accounts.models import Actor, Allocation, ApiKey, Membership, Scope
from portal.demo.dnsserver import running
from portal.enforcement.models import Exemption, ExemptionState
from portal.lib.dns import Resolver
from portal.review.policy import four_eyes_reasons
from portal.vetting import dnsbl
from portal.workflows.decisions import approve_request
from portal.workflows.exemptions import move
from portal.workflows.periodic import expire_exemptions
from portal.workflows.provisioning import TenantSpec, provision_tenant
from tests.base import PortalTestCase

SYSTEM = Actor.of_system("test")


class FindingsTestCase(PortalTestCase):
    def exemption(self, cidr: str = "203.0.113.10", **fields: object) -> Exemption:
        fields.setdefault("expires_at", timezone.now() + timedelta(days=30))
        exemption = Exemption(tenant=self.acme, **fields)
        exemption.set_network(ipaddress.ip_network(cidr))
        exemption.save()
        return exemption

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

    def test_approval_refuses_an_address_the_tenant_no_longer_holds(self) -> None:
        req = self.make_request(self.acme, "203.0.113.5")
        Allocation.objects.filter(tenant=self.acme, cidr="203.0.113.0/26").update(released_at=timezone.now())
        with self.assertRaisesMessage(ValidationError, "released"):
            approve_request(req=req, actor=SYSTEM)
        req.refresh_from_db()
        self.assertEqual(req.state, "submitted")
        self.assertFalse(Exemption.objects.exists())

    def test_an_unvetted_request_needs_two_approvals(self) -> None:
        req = self.make_request(self.acme, "203.0.113.5")
        self.assertEqual(four_eyes_reasons(req), [])
        req.vetted_at = None
        self.assertEqual(four_eyes_reasons(req), ["the automated checks have not finished"])

    def test_staff_of_the_tenant_cannot_reinstate_its_exemption(self) -> None:
        exemption = self.exemption(state=ExemptionState.SUSPENDED)
        Membership.objects.create(user=self.rita, tenant=self.acme)
        self.client.force_login(self.rita)
        r = self.client.post(
            f"/review/exemptions/{exemption.id}/reinstated/", {"reason": "mine"}, follow=True
        )
        self.assertContains(r, "You are a member of Acme Ltd")
        exemption.refresh_from_db()
        self.assertEqual(exemption.state, ExemptionState.SUSPENDED)

    def spec(self, *allocations: str, members: tuple[str, ...] = ("alice@acme.example",)) -> TenantSpec:
        return TenantSpec(
            external_id=self.acme.external_id,
            name=self.acme.name,
            account_opened_on=self.acme.account_opened_on,
            identity_verified=True,
            paid_invoices=12,
            allocations=[ipaddress.ip_network(a) for a in allocations],
            members=list(members),
        )

    def test_reshaping_an_allocation_keeps_the_exemptions_it_still_covers(self) -> None:
        exemption = self.exemption("203.0.113.10")
        provision_tenant(spec=self.spec("203.0.113.0/25", "2001:db8:a::/48"), actor=SYSTEM)
        exemption.refresh_from_db()
        self.assertEqual(exemption.state, ExemptionState.ACTIVE)
        provision_tenant(spec=self.spec("2001:db8:a::/48"), actor=SYSTEM)
        exemption.refresh_from_db()
        self.assertEqual(exemption.state, ExemptionState.REVOKED)

    def test_a_removed_member_loses_their_api_keys(self) -> None:
        api_key, _ = ApiKey.issue(
            name="alice's", scope=Scope.CUSTOMER, tenant=self.acme, created_by=self.alice
        )
        tenant_key, _ = ApiKey.issue(name="pipeline", scope=Scope.CUSTOMER, tenant=self.acme, created_by=None)
        provision_tenant(spec=self.spec("203.0.113.0/26", "2001:db8:a::/48", members=()), actor=SYSTEM)
        api_key.refresh_from_db()
        tenant_key.refresh_from_db()
        self.assertTrue(api_key.is_revoked)
        self.assertFalse(tenant_key.is_revoked)

    def test_expiry_does_not_undo_a_renewal_that_committed_first(self) -> None:
        exemption = self.exemption(expires_at=timezone.now() - timedelta(minutes=1))
        stale = Exemption.objects.get(pk=exemption.pk)  # what the job listed
        Exemption.objects.filter(pk=exemption.pk).update(expires_at=timezone.now() + timedelta(days=365))
        self.assertFalse(move(stale, "exemption.expired", actor=SYSTEM))
        self.assertEqual(expire_exemptions(), 0)
        exemption.refresh_from_db()
        self.assertEqual(exemption.state, ExemptionState.ACTIVE)

    def test_the_note_form_does_not_redirect_off_site(self) -> None:
        self.client.force_login(self.rita)
        r = self.client.post("/reputation/notes/", {"summary": "", "next": "https://evil.example/"})
        self.assertEqual(r["Location"], "/reputation/")

    def test_evidence_must_be_plain_json(self) -> None:
        client = self.api(Scope.PROVISIONING)
        r = client.post(
            "/api/v1/reputation/events",
            '{"source": "manual", "kind": "note", "address": "203.0.113.5", "evidence": {"a": 1e999}}',
            content_type="application/json",
        )
        self.assertEqual(r.status_code, 400)
        self.assertIn("NaN or Infinity", str(r.json()["evidence"]))
