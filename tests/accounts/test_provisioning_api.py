"""PUT /api/v1/tenants/{external_id}: the provider's systems keep tenants in sync, idempotently."""

from __future__ import annotations

import ipaddress
import re
from datetime import date
from typing import Any

from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from portal.accounts.models import Actor, Allocation, ApiKey, Membership, Scope, Tenant
from portal.audit.models import AuditEvent
from portal.enforcement.models import ExemptionState
from portal.notifications.models import OutboundEmail
from portal.workflows.provisioning import MAX_ALLOCATIONS_PER_CALL, TenantSpec, provision_tenant
from tests.base import PortalTestCase, make_exemption

SYSTEM = Actor.of_system("test")


def initech(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Initech Inc",
        "account_opened_on": "2024-05-01",
        "identity_verified": True,
        "billing_standing": "good",
        "paid_invoices": 7,
        "abuse_contact": "abuse@initech.example",
        "allocations": ["192.0.2.64/26", "2001:db8:1e::/48"],
        "members": ["peter@initech.example"],
    }
    body.update(overrides)
    return body


def acme(**overrides: Any) -> dict[str, Any]:
    """Acme exactly as the cast has it, so that a PUT of it changes nothing."""
    body: dict[str, Any] = {
        "name": "Acme Ltd",
        "account_opened_on": "2025-01-01",
        "identity_verified": True,
        "billing_standing": "good",
        "paid_invoices": 12,
        "abuse_contact": "abuse@acme.example",
        "allocations": ["203.0.113.0/26", "2001:db8:a::/48"],
        "members": ["alice@acme.example"],
    }
    body.update(overrides)
    return body


class ProvisioningApiTestCase(PortalTestCase):
    def setUp(self) -> None:
        self.provisioner = self.api(Scope.PROVISIONING)

    def put(self, external_id: str, body: dict[str, Any], client: APIClient | None = None) -> Any:
        return (client or self.provisioner).put(f"/api/v1/tenants/{external_id}", body, format="json")

    def test_it_creates_a_tenant(self) -> None:
        r = self.put("initech-3", initech())
        self.assertEqual(r.status_code, 201, r.content)
        tenant = Tenant.objects.get(external_id="initech-3")
        self.assertEqual(
            (tenant.name, tenant.account_opened_on, tenant.identity_verified, tenant.paid_invoices),
            ("Initech Inc", date(2024, 5, 1), True, 7),
        )
        self.assertEqual(
            sorted(a.cidr for a in tenant.allocations.active()), ["192.0.2.64/26", "2001:db8:1e::/48"]
        )
        self.assertEqual(r.json()["members"], ["peter@initech.example"])
        self.assertEqual([a["cidr"] for a in r.json()["allocations"]], ["192.0.2.64/26", "2001:db8:1e::/48"])
        event = AuditEvent.objects.for_object(tenant).get()
        self.assertEqual(event.action, "tenant.created")
        self.assertTrue(event.actor_label.startswith("API key test provisioning"))
        self.assertEqual(event.after["allocated"], ["192.0.2.64/26", "2001:db8:1e::/48"])
        self.assertEqual(event.after["members_added"], ["peter@initech.example"])

    def test_it_changes_nothing_when_the_same_put_comes_again(self) -> None:
        self.assertEqual(self.put("initech-3", initech()).status_code, 201)
        counts = (
            AuditEvent.objects.count(),
            Allocation.objects.count(),
            OutboundEmail.objects.count(),
            User.objects.count(),
            Membership.objects.count(),
        )
        r = self.put("initech-3", initech())
        self.assertEqual(r.status_code, 200, r.content)
        self.assertEqual(
            (
                AuditEvent.objects.count(),
                Allocation.objects.count(),
                OutboundEmail.objects.count(),
                User.objects.count(),
                Membership.objects.count(),
            ),
            counts,
        )
        self.assertEqual(Tenant.objects.filter(external_id="initech-3").count(), 1)

    def test_it_changes_nothing_for_a_put_of_the_tenant_as_it_is(self) -> None:
        r = self.put("acme-1", acme())
        self.assertEqual(r.status_code, 200, r.content)
        self.assertEqual(AuditEvent.objects.count(), 0)
        self.assertEqual(OutboundEmail.objects.count(), 0)

    def test_it_updates_attributes(self) -> None:
        r = self.put("acme-1", acme(name="Acme Holdings", billing_standing="past_due", paid_invoices=13))
        self.assertEqual(r.status_code, 200, r.content)
        self.acme.refresh_from_db()
        self.assertEqual(
            (self.acme.name, self.acme.billing_standing, self.acme.paid_invoices),
            ("Acme Holdings", "past_due", 13),
        )
        event = AuditEvent.objects.for_object(self.acme).get()
        self.assertEqual(event.action, "tenant.updated")
        self.assertEqual(event.before, {"name": "Acme Ltd", "billing_standing": "good", "paid_invoices": 12})
        self.assertEqual(
            event.after, {"name": "Acme Holdings", "billing_standing": "past_due", "paid_invoices": 13}
        )

    def test_it_releases_an_allocation_missing_from_the_list(self) -> None:
        r = self.put("acme-1", acme(allocations=["203.0.113.0/26"]))
        self.assertEqual(r.status_code, 200, r.content)
        released = Allocation.objects.get(tenant=self.acme, cidr="2001:db8:a::/48")
        self.assertIsNotNone(released.released_at)
        self.assertEqual(
            sorted(a.cidr for a in Allocation.objects.filter(tenant=self.acme).active()), ["203.0.113.0/26"]
        )
        self.assertEqual(
            AuditEvent.objects.for_object(self.acme).get().after, {"released": ["2001:db8:a::/48"]}
        )
        listed = {a["cidr"]: a["released_at"] for a in r.json()["allocations"]}
        self.assertIsNotNone(listed["2001:db8:a::/48"])
        self.assertIsNone(listed["203.0.113.0/26"])

    def test_it_allocates_a_released_block_again_as_a_new_row(self) -> None:
        r = self.put("acme-1", acme(allocations=["203.0.113.0/26", "2001:db8:a::/48", "192.0.2.0/28"]))
        self.assertEqual(r.status_code, 200, r.content)
        rows = Allocation.objects.filter(tenant=self.acme, cidr="192.0.2.0/28")
        self.assertEqual(sorted(a.is_active for a in rows), [False, True])

    def test_it_refuses_a_block_of_another_tenant_and_writes_nothing(self) -> None:
        r = self.put("acme-1", acme(name="Acme Renamed", allocations=["203.0.113.0/26", "198.51.100.64/28"]))
        self.assertEqual(r.status_code, 400, r.content)
        self.assertEqual(
            r.json(),
            {
                "allocations": [
                    "198.51.100.64/28 overlaps 198.51.100.64/27, which is allocated to tenant globex-2; "
                    "release it there first."
                ]
            },
        )
        self.acme.refresh_from_db()
        self.assertEqual(self.acme.name, "Acme Ltd")
        # Not even the release of 2001:db8:a::/48 that the same PUT asked for.
        self.assertEqual(
            sorted(a.cidr for a in Allocation.objects.filter(tenant=self.acme).active()),
            ["2001:db8:a::/48", "203.0.113.0/26"],
        )
        self.assertEqual(AuditEvent.objects.count(), 0)

    def test_it_refuses_to_create_a_tenant_with_another_tenants_block(self) -> None:
        r = self.put("initech-3", initech(allocations=["198.51.100.0/24"]))
        self.assertEqual(r.status_code, 400)
        self.assertIn("198.51.100.0/24 overlaps 198.51.100.64/27", r.json()["allocations"][0])
        self.assertFalse(Tenant.objects.filter(external_id="initech-3").exists())
        self.assertFalse(User.objects.filter(email="peter@initech.example").exists())
        self.assertEqual(OutboundEmail.objects.count(), 0)

    def test_it_takes_over_a_block_another_tenant_released(self) -> None:
        r = self.put("initech-3", initech(allocations=["192.0.2.0/28"]))
        self.assertEqual(r.status_code, 201, r.content)

    def test_it_refuses_overlapping_entries_in_one_body(self) -> None:
        r = self.put("initech-3", initech(allocations=["10.0.0.0/24", "10.0.0.128/25", "bogus"]))
        self.assertEqual(r.status_code, 400)
        self.assertEqual(
            r.json()["allocations"],
            [
                "10.0.0.128/25 overlaps 10.0.0.0/24, listed earlier; list each block once.",
                "“bogus” is not an IP address or CIDR block. Use a form such as 203.0.113.10, "
                "203.0.113.8/29 or 2001:db8::25.",
            ],
        )
        self.assertFalse(Tenant.objects.filter(external_id="initech-3").exists())

    def test_it_refuses_a_bad_external_id_or_body(self) -> None:
        r = self.put("bad id!", initech())
        self.assertEqual(r.status_code, 400)
        self.assertIn("external_id", r.json())
        r = self.put("initech-3", initech(name="", account_opened_on="yesterday", members=["nope"]))
        self.assertEqual(r.status_code, 400)
        self.assertEqual(set(r.json()), {"name", "account_opened_on", "members"})
        self.assertFalse(Tenant.objects.filter(external_id="initech-3").exists())

    def test_it_invites_a_new_member_with_a_working_set_password_link(self) -> None:
        self.put("initech-3", initech())
        email = OutboundEmail.objects.get()
        self.assertEqual(email.to, ["peter@initech.example"])
        self.assertIn("Initech Inc", email.subject)
        match = re.search(r"http://127\.0\.0\.1:8000(/reset/\S+/)", email.body)
        assert match is not None, email.body
        peter = User.objects.get(email="peter@initech.example")
        self.assertFalse(peter.has_usable_password())

        r = self.client.get(match.group(1), follow=True)
        self.assertContains(r, "Choose a password")
        form_url = r.redirect_chain[-1][0]
        r = self.client.post(
            form_url, {"new_password1": "staple-battery-horse-99", "new_password2": "staple-battery-horse-99"}
        )
        self.assertRedirects(r, "/reset/done/", fetch_redirect_response=False)
        r = self.client.post(
            "/login/", {"username": "peter@initech.example", "password": "staple-battery-horse-99"}
        )
        self.assertRedirects(r, "/", fetch_redirect_response=False)
        self.assertContains(self.client.get("/"), "What needs you")  # the tenant's home
        self.assertContains(self.client.get("/requests/"), "Port-25 unblock requests")
        # The link worked once; it does not work again.
        r = self.client.get(match.group(1), follow=True)
        self.assertNotContains(r, 'name="new_password1"')

    def test_it_adds_an_existing_user_as_a_member_without_a_reset_link(self) -> None:
        r = self.put("acme-1", acme(members=["alice@acme.example", "bob@globex.example"]))
        self.assertEqual(r.status_code, 200, r.content)
        self.assertTrue(Membership.objects.filter(user=self.bob, tenant=self.acme).exists())
        email = OutboundEmail.objects.get()
        self.assertEqual(email.to, ["bob@globex.example"])
        self.assertIn("Sign in with your existing password", email.body)
        self.assertNotIn("/reset/", email.body)
        self.assertTrue(User.objects.get(pk=self.bob.pk).check_password("correct-horse-battery-25"))

    def test_it_removes_a_member_missing_from_the_list(self) -> None:
        r = self.put("acme-1", acme(members=[]))
        self.assertEqual(r.status_code, 200, r.content)
        self.assertFalse(Membership.objects.filter(tenant=self.acme).exists())
        self.assertTrue(User.objects.filter(pk=self.alice.pk).exists())
        self.assertEqual(
            AuditEvent.objects.for_object(self.acme).get().after, {"members_removed": ["alice@acme.example"]}
        )
        self.client.force_login(self.alice)
        self.assertEqual(self.client.get("/requests/").status_code, 404)

    def test_it_matches_members_by_email_whatever_the_case(self) -> None:
        r = self.put("acme-1", acme(members=["Alice@ACME.example"]))
        self.assertEqual(r.status_code, 200, r.content)
        self.assertEqual(AuditEvent.objects.count(), 0)
        self.assertEqual(Membership.objects.filter(tenant=self.acme).get().user, self.alice)

    def test_it_reads_a_tenant(self) -> None:
        r = self.provisioner.get("/api/v1/tenants/acme-1")
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r.json()["members"], ["alice@acme.example"])
        self.assertEqual(self.provisioner.get("/api/v1/tenants/nope").status_code, 404)

    def test_it_needs_a_provisioning_key(self) -> None:
        for scope in (Scope.CUSTOMER, Scope.ENFORCEMENT, Scope.REVIEWER):
            with self.subTest(scope=scope):
                r = self.put("initech-3", initech(), client=self.api(scope))
                self.assertEqual(r.status_code, 403)
                self.assertEqual(r.json(), {"detail": "This operation needs a provisioning API key."})
        self.assertEqual(self.put("initech-3", initech(), client=APIClient()).status_code, 401)
        stranger = APIClient()
        stranger.credentials(HTTP_AUTHORIZATION="Bearer eep_0123456789abThisIsNotARealKeyAtAll123456")
        r = self.put("initech-3", initech(), client=stranger)
        self.assertEqual(r.status_code, 401)
        self.assertEqual(r.json(), {"detail": "Invalid or revoked API key."})
        self.assertEqual(r["WWW-Authenticate"], 'Bearer realm="api"')
        self.assertFalse(Tenant.objects.filter(external_id="initech-3").exists())


def blocks(count: int, *, start: int = 0) -> list[str]:
    """`count` distinct /64s from 2001:db8:b::/64 on, none of which the cast holds."""
    return [f"{ipaddress.ip_address((0x20010DB8_000B_0000 + start + n) << 64)}/64" for n in range(count)]


class LargeProvisioningTestCase(PortalTestCase):
    def setUp(self) -> None:
        self.provisioner = self.api(Scope.PROVISIONING)

    def put(self, external_id: str, body: dict[str, Any]) -> Any:
        return self.provisioner.put(f"/api/v1/tenants/{external_id}", body, format="json")

    def test_it_writes_thousands_of_allocations_in_a_bounded_number_of_queries(self) -> None:
        with CaptureQueriesContext(connection) as first:
            r = self.put("initech-3", initech(allocations=blocks(3000)))
        self.assertEqual(r.status_code, 201, r.content[:300])
        self.assertEqual(Allocation.objects.filter(tenant__external_id="initech-3").active().count(), 3000)
        # Half released, 1,500 new: still a handful of statements, not one per block.
        with CaptureQueriesContext(connection) as second:
            r = self.put("initech-3", initech(allocations=blocks(3000, start=1500)))
        self.assertEqual(r.status_code, 200, r.content[:300])
        rows = Allocation.objects.filter(tenant__external_id="initech-3")
        self.assertEqual(rows.active().count(), 3000)
        self.assertEqual(rows.filter(released_at__isnull=False).count(), 1500)
        self.assertLess(len(first), 40)
        self.assertLess(len(second), 40)

    def test_it_refuses_more_allocations_than_one_call_may_hold(self) -> None:
        r = self.put("initech-3", initech(allocations=blocks(MAX_ALLOCATIONS_PER_CALL + 1)))
        self.assertEqual(r.status_code, 400)
        self.assertEqual(
            r.json()["allocations"],
            [
                "List at most 20,000 allocations; a tenant holds at most that many blocks. "
                "Aggregate adjacent blocks into larger ones."
            ],
        )
        self.assertFalse(Tenant.objects.filter(external_id="initech-3").exists())

    def test_it_names_every_block_of_another_tenant_among_thousands(self) -> None:
        wanted = [*blocks(2000), "198.51.100.0/25", "203.0.113.128/25", "2001:db8:a:ff::/64", "192.0.2.0/28"]
        r = self.put("initech-3", initech(allocations=wanted))
        self.assertEqual(r.status_code, 400)
        self.assertEqual(
            r.json()["allocations"],
            [
                "198.51.100.0/25 overlaps 198.51.100.64/27, which is allocated to tenant globex-2; "
                "release it there first.",
                "2001:db8:a:ff::/64 overlaps 2001:db8:a::/48, which is allocated to tenant acme-1; "
                "release it there first.",
            ],
        )
        self.assertFalse(Tenant.objects.filter(external_id="initech-3").exists())

    def test_it_finds_overlaps_within_one_long_list(self) -> None:
        wanted = [*blocks(2000), "2001:db8:b::/56", "10.0.0.0/8", "10.1.0.0/16"]
        r = self.put("initech-3", initech(allocations=wanted))
        self.assertEqual(r.status_code, 400)
        self.assertEqual(
            r.json()["allocations"],
            [
                "2001:db8:b::/56 overlaps 2001:db8:b::/64, listed earlier; list each block once.",
                "10.1.0.0/16 overlaps 10.0.0.0/8, listed earlier; list each block once.",
            ],
        )


class ProvisioningConsequencesTestCase(PortalTestCase):
    """What a provisioning call does to the exemptions and keys of what it takes away."""

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
        exemption = make_exemption(self.acme, "203.0.113.10")
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


class StrictTypesTestCase(PortalTestCase):
    def test_it_refuses_a_name_flag_or_count_of_the_wrong_json_type(self) -> None:
        provisioner = self.api(Scope.PROVISIONING)
        for field, value in (
            ("name", 0),
            ("identity_verified", 1),
            ("paid_invoices", "7"),
            ("allocations", [0]),
        ):
            with self.subTest(field):
                r = provisioner.put("/api/v1/tenants/initech-3", initech(**{field: value}), format="json")
                self.assertEqual(r.status_code, 400, r.content)
                self.assertIn(field, r.json())
        self.assertFalse(Tenant.objects.filter(external_id="initech-3").exists())
